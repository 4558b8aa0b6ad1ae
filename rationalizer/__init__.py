"""Rationalizer: an audio LLM that explains the encoder scores (not built yet; see issue 4)."""
