"""Does the scorer listen? Measures on altered items (encoder/scorer/augmentation.py) beside their sources.

The scores of an item and of the recording it reads (its source, scored against its own text) are compared:
- substitution: the replaced phone scores < 1.0; the word's other phones, well read (label >= 1.5), stay
  >= 1.5; with two or more replaced phones the sentence total drops by at least 1.5;
- omission: the word that was never read gets a word accuracy below 4 (the "poor" band);
- mismatch (another text): sentence total <= 3;
- nonspeech: sentence total <= 1.
Each rate comes with its count. Targets of issue "Scorer v2": 0.8 for the first three rates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from scipy.stats import norm

from ..corpus import Utterance
from .augmentation import NONSPEECH_SPEAKER, source_id

PHONE_WRONG_BELOW, PHONE_RIGHT_FROM = 1.0, 1.5
SEVERAL, SENTENCE_DROP = 2, 1.5
WORD_POOR_BELOW, MISMATCH_AT_MOST, NONSPEECH_AT_MOST = 4.0, 3.0, 1.0


@dataclass(frozen=True)
class Scores:
    """What the checks read of one scored utterance (calibrated)."""

    phone: np.ndarray  # (n,) 0-2
    word_accuracy: np.ndarray  # (n_words,) 0-10
    sentence_total: float


def listening_report(items: Mapping[str, Utterance], sources: Mapping[str, Utterance],
                     scores: Mapping[str, Scores]) -> dict:
    """Rates over the items that have scores (and, where needed, scored sources); see the module doc.
    items and sources: utterance records by id; scores: by id, for items and sources alike."""
    checks: dict[str, list[bool]] = {k: [] for k in ("substituted_below_1", "word_neighbours_at_least_1_5",
                                                       "several_substitutions_total_drop_1_5",
                                                       "omitted_word_below_4", "mismatch_total_at_most_3",
                                                       "nonspeech_total_at_most_1")}
    drops: list[float] = []
    for utt_id, item in items.items():
        if utt_id not in scores:
            continue
        kind = utt_id.split("~", 1)[1] if "~" in utt_id else ""
        source = sources.get(source_id(utt_id))
        if item.speaker == NONSPEECH_SPEAKER:
            checks["nonspeech_total_at_most_1"].append(scores[utt_id].sentence_total <= NONSPEECH_AT_MOST)
        elif kind == "mismatch":
            checks["mismatch_total_at_most_3"].append(scores[utt_id].sentence_total <= MISMATCH_AT_MOST)
        elif kind == "omission" and source is not None:
            checks["omitted_word_below_4"].append(_omitted_word_below(item, source, scores[utt_id]))
        elif kind == "substitution" and source is not None:
            _substitution_checks(item, source, scores[utt_id], checks)
            if source.utt_id in scores and _n_replaced(item, source) >= SEVERAL:
                drop = scores[source.utt_id].sentence_total - scores[utt_id].sentence_total
                drops.append(drop)
                checks["several_substitutions_total_drop_1_5"].append(drop >= SENTENCE_DROP)
    report = {k: {"rate": round(float(np.mean(v)), 4) if v else None, "n": len(v)} for k, v in checks.items()}
    report["several_substitutions_mean_total_drop"] = round(float(np.mean(drops)), 3) if drops else None
    return report


def spread_report(totals: np.ndarray, resolution: float = 0.01) -> dict:
    """How many distinct values n sentence totals take at `resolution` and exactly, beside what a continuous
    output with the same spread would reach: the expected distinct count of n draws from a normal with the
    totals' standard deviation, rounded to `resolution` (a birthday bound; outputs with sd 1.5 on the 0-10
    scale reach about 330 of 500 at 0.01). Calibration plateaus show as exact ties."""
    totals = np.asarray(totals, dtype=float)
    sd = float(np.std(totals))
    edges = np.arange(-10 * sd - resolution, 10 * sd + resolution, resolution)
    bins = np.diff(norm.cdf(edges / sd)) if sd > 0 else np.array([1.0])
    return {"n": len(totals), "sd": round(sd, 3), f"distinct_at_{resolution}": _distinct(totals, resolution),
            "distinct_exact": len(np.unique(totals)),
            f"expected_distinct_at_{resolution}_continuous": round(float(np.sum(1 - (1 - bins) ** len(totals))), 1)}


def _distinct(values: np.ndarray, resolution: float) -> int:
    return len(np.unique(np.round(values / resolution)))


def _replaced(item: Utterance, source: Utterance) -> list[int]:
    a, b = item.canonical_phones, source.canonical_phones
    return [i for i, (x, y) in enumerate(zip(a, b)) if x.base != y.base]


def _n_replaced(item: Utterance, source: Utterance) -> int:
    return len(_replaced(item, source))


def _substitution_checks(item: Utterance, source: Utterance, scores: Scores, checks: dict) -> None:
    replaced = set(_replaced(item, source))
    labels, phones = source.phone_accuracy or [], item.canonical_phones
    for i in replaced:
        checks["substituted_below_1"].append(bool(scores.phone[i] < PHONE_WRONG_BELOW))
        for j, p in enumerate(phones):
            if p.word_index == phones[i].word_index and j not in replaced and labels and labels[j] >= PHONE_RIGHT_FROM:
                checks["word_neighbours_at_least_1_5"].append(bool(scores.phone[j] >= PHONE_RIGHT_FROM))


def _omitted_word_below(item: Utterance, source: Utterance, scores: Scores) -> bool:
    read = [w.text for w in source.words]
    for w, word in enumerate(item.words):  # the first position where the texts part
        if w >= len(read) or word.text != read[w]:
            return bool(scores.word_accuracy[w] < WORD_POOR_BELOW)
    return False
