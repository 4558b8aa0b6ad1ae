"""Fusion: one response from scores, diagnosis and rationale; the CLI and (later) the service."""
