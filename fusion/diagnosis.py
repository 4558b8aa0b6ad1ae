"""Word error types in the vocabulary learners know from commercial tools, from the scores, the timing and the
reading verification (encoder.verification).

- Omission: the verification heard nothing where the word should be (or, without verification, the word's
  phones scored as missing).
- Mispronunciation: another word was heard in its place, a phone is below the threshold, or the word's
  accuracy is low.
- UnexpectedBreak: a long silence before a word where the text has no punctuation.
- MissingBreak: no pause at all after a sentence-final punctuation mark inside the text.
- Reversal: the word and its neighbour were read in swapped order (both carry it; a miscue in reading research's
  sense, like Omission and Insertion); their scores are kept, since both were read.
- Monotone: the pitch of the whole reading stayed within a narrow range (`monotone`); set on every word that has
  no other error, as Azure Pronunciation Assessment does.
Inserted and repeated words are not words of the text: the response lists them apart (`insertions`).

`apply_verification` makes the scores follow the verification: a word that was not read scores 0 (its phones
too), completeness is the share of words attempted (not omitted), and the other sentence scores are scaled by
the share read as written, so a recording of another text, another language or half the text cannot keep the
scores of a full reading.
"""
from __future__ import annotations

from collections.abc import Sequence

WORD_ERROR_TYPES = ("None", "Omission", "Mispronunciation", "UnexpectedBreak", "MissingBreak", "Monotone", "Reversal")
INSERTION_KINDS = ("Insertion", "Repetition")
OMISSION_MEAN_PHONE_SCORE = 0.5  # phones of an omitted word score near 0 ("missing")
MISPRONOUNCED_WORD_ACCURACY = 6.0
UNEXPECTED_BREAK_S = 0.5
MISSING_BREAK_S = 0.05  # less silence than this after a full stop inside the text is no break
BREAK_PUNCTUATION = frozenset(",;:.!?")  # a pause after these is expected, never unexpected
SENTENCE_END = frozenset(".!?;")
# F0 range (5-95 percentile, semitones) under which a reading is monotone: 2% of train readings fall below it;
# PSOLA-flattened train readings fall below it in 99.5%, readings with their excursions cut to a quarter in 76%
# (speaker-disjoint CV; `python recipes/local/monotone_threshold.py ... --out docs/monotone.json`)
MONOTONE_RANGE_ST = 2.93
MONOTONE_MIN_VOICED_S = 0.5  # less voiced speech than this: no judgement
MONOTONE_MIN_WORDS = 3  # nor on a text this short


def word_error_type(phone_scores: list[float], phone_threshold: float, word_accuracy: float,
                    pause_before_s: float, punctuation_before: str = "", expect_break_before: bool = False) -> str:
    """pause_before_s: silence between the previous word's end and this word's start (0 for the first word);
    punctuation_before: the punctuation that followed the previous word in the text ("" if none);
    expect_break_before: whether a missing pause there is an error (a sentence end inside the text)."""
    if phone_scores and sum(phone_scores) / len(phone_scores) < OMISSION_MEAN_PHONE_SCORE:
        return "Omission"
    if word_accuracy < MISPRONOUNCED_WORD_ACCURACY or any(s < phone_threshold for s in phone_scores):
        return "Mispronunciation"
    breaks_allowed = any(c in BREAK_PUNCTUATION for c in punctuation_before)
    if pause_before_s > UNEXPECTED_BREAK_S and not breaks_allowed:
        return "UnexpectedBreak"
    if expect_break_before and pause_before_s < MISSING_BREAK_S:
        return "MissingBreak"
    return "None"


def monotone(f0_range_st: float, voiced_s: float, n_words: int) -> bool:
    """Whether a reading's pitch stayed flat: its F0 range (5-95 percentile over the voiced frames, semitones) under
    MONOTONE_RANGE_ST, judged only on texts of MONOTONE_MIN_WORDS words and MONOTONE_MIN_VOICED_S s of voicing."""
    return n_words >= MONOTONE_MIN_WORDS and voiced_s >= MONOTONE_MIN_VOICED_S and f0_range_st < MONOTONE_RANGE_ST


def expects_break(punctuation: str) -> bool:
    return any(c in SENTENCE_END for c in punctuation)


def verified_error_type(status: str, scored_error: str, reversed_order: bool = False) -> str:
    """The word's error type once the verification is known: unread words are Omission or Mispronunciation,
    words read in swapped order Reversal."""
    if reversed_order:
        return "Reversal"
    if status == "omitted":
        return "Omission"
    if status == "substituted":
        return "Mispronunciation"
    return "Mispronunciation" if scored_error == "Omission" else scored_error


def gated_sentence(sentence: dict[str, float], share_read: float,
                   share_attempted: float | None = None) -> dict[str, float]:
    """Sentence scores (0-10) after the verification: the scores scaled by the share of words read as written;
    completeness = 10 x the share of words attempted (read, or read as another word), as Azure Pronunciation
    Assessment counts it (only omissions lower it; a misread word is a Mispronunciation) and as speechocean762's
    annotators scored it (the share of the words pronounced); share_attempted None: the share read."""
    gated = {aspect: round(score * share_read, 2) for aspect, score in sentence.items()}
    gated["completeness"] = round(10.0 * (share_read if share_attempted is None else share_attempted), 2)
    return gated


def share_attempted(statuses: Sequence[str], share_read: float, matches_text: bool) -> float:
    """The share of the text's words that were attempted: not omitted (status "read" or "substituted"). A recording
    that does not match its text (another text, another language, no words heard) attempted none of it beyond
    what was read as written, so its share read is returned."""
    if not matches_text or not statuses:
        return share_read
    return sum(s != "omitted" for s in statuses) / len(statuses)


def punctuation_or_blank(punctuation: Sequence[str] | None, n_words: int) -> list[str]:
    return list(punctuation) if punctuation is not None and len(punctuation) == n_words else [""] * n_words
