"""Word error types in the vocabulary learners know from commercial tools, from the scores and the timing.

Only the types this evidence supports are produced: Omission (the word's phones scored as missing),
Mispronunciation (a phone below the threshold or a low word accuracy) and UnexpectedBreak (a long
silence before a word inside the sentence). Insertion needs a free recognition of the whole utterance
and is not produced yet.
"""
from __future__ import annotations

WORD_ERROR_TYPES = ("None", "Omission", "Mispronunciation", "UnexpectedBreak")
OMISSION_MEAN_PHONE_SCORE = 0.5  # phones of an omitted word score near 0 ("missing")
MISPRONOUNCED_WORD_ACCURACY = 6.0
UNEXPECTED_BREAK_S = 0.5


def word_error_type(phone_scores: list[float], phone_threshold: float, word_accuracy: float,
                    pause_before_s: float) -> str:
    """pause_before_s: silence between the previous word's end and this word's start (0 for the first word)."""
    if phone_scores and sum(phone_scores) / len(phone_scores) < OMISSION_MEAN_PHONE_SCORE:
        return "Omission"
    if word_accuracy < MISPRONOUNCED_WORD_ACCURACY or any(s < phone_threshold for s in phone_scores):
        return "Mispronunciation"
    if pause_before_s > UNEXPECTED_BREAK_S:
        return "UnexpectedBreak"
    return "None"
