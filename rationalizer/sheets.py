"""Score sheets from speechocean762 labels, optionally noised so training targets match scorer-fed inference.

Where the corpus lacks word aspects (the test split: only phone accuracies and sentence scores), a word's
accuracy and total are derived as 5 x the mean of its phone accuracies (0-2 -> 0-10) and its stress is taken
as 10; the word's error type comes from a copy of fusion's rule without timing (Omission, Mispronunciation or
None; UnexpectedBreak needs pauses the labels do not have). The rule is copied, not imported, because fusion
imports the rationalizer.
"""
from __future__ import annotations

import random

from .records import SENTENCE_ASPECTS, PhoneScore, ScoreSheet, WordScore

OMISSION_MEAN_PHONE_SCORE = 0.5  # as fusion.diagnosis
MISPRONOUNCED_WORD_ACCURACY = 6.0  # as fusion.diagnosis
LOW_PHONE_SCORE = 1.0  # as fusion.assessor


def sheet_from_labels(utterance, noise_std: float = 0.0, rng: random.Random | None = None,
                      heard: dict[tuple[int, int], str] | None = None) -> ScoreSheet:
    """A ScoreSheet from an encoder.corpus.Utterance's labels.

    noise_std: Gaussian noise on 0-10 scores (phones get noise_std / 5 on their 0-2 scale), clipped to range;
    error types are derived after the noise, as they would be from scorer outputs.
    heard: optional {(word index, phone index): ARPAbet} of what a recogniser heard (labels have none).
    Raises ValueError if a sentence aspect or a word's phone accuracies are missing.
    """
    rng = rng or random.Random(0)
    noisy = _noiser(noise_std, rng)
    sentence = {}
    for aspect in SENTENCE_ASPECTS:
        value = getattr(utterance.sentence, aspect)
        if value is None:
            raise ValueError(f"{utterance.utt_id}: sentence {aspect} label is missing")
        sentence[aspect] = noisy(value, 10.0)
    words = tuple(_word_score(utterance.utt_id, i, w, noisy, heard or {}) for i, w in enumerate(utterance.words))
    return ScoreSheet(utterance.text, sentence, words)


def word_error_type(phone_scores: list[float], word_accuracy: float) -> str:
    """fusion.diagnosis.word_error_type without the pause evidence."""
    if phone_scores and sum(phone_scores) / len(phone_scores) < OMISSION_MEAN_PHONE_SCORE:
        return "Omission"
    if word_accuracy < MISPRONOUNCED_WORD_ACCURACY or any(s < LOW_PHONE_SCORE for s in phone_scores):
        return "Mispronunciation"
    return "None"


def _noiser(noise_std: float, rng: random.Random):
    def noisy(value: float, top: float) -> float:
        if noise_std <= 0:
            return float(value)
        return min(top, max(0.0, value + rng.gauss(0.0, noise_std * top / 10.0)))
    return noisy


def _word_score(utt_id: str, index: int, word, noisy, heard: dict) -> WordScore:
    if word.phone_accuracy is None:
        raise ValueError(f"{utt_id}: word {word.text!r} has no phone accuracies")
    phones = tuple(PhoneScore(sym, noisy(acc, 2.0), heard.get((index, j)))
                   for j, (sym, acc) in enumerate(zip(word.phones, word.phone_accuracy)))
    derived = 5.0 * sum(word.phone_accuracy) / len(word.phone_accuracy) if word.phone_accuracy else 10.0
    accuracy = noisy(word.accuracy if word.accuracy is not None else derived, 10.0)
    stress = noisy(word.stress if word.stress is not None else 10.0, 10.0)
    total = noisy(word.total if word.total is not None else derived, 10.0)
    error = word_error_type([p.accuracy for p in phones], accuracy)
    return WordScore(word.text, accuracy, stress, total, phones, error)
