"""Rationalizer: an audio LLM that explains the encoder scores. Built so far: the Bounded DPO trainer."""
