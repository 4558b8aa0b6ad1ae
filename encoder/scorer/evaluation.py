"""Evaluate a trained scorer on a corpus split: metrics per aspect and predictions in the corpus's own schema."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..corpus import SENTENCE_ASPECTS, WORD_ASPECTS, Utterance
from ..features.store import FeatureStore
from .data import build_examples
from .metrics import aspect_table, mispronunciation_detection
from .pipeline import ScoredUtterance, Scorer, label_dict, prediction_dict


@dataclass
class Evaluation:
    metrics: dict  # {"calibrated": {aspect: {pcc, scc, mse, n}}, "raw": ..., "mdd": {...}, "n_utterances": n}
    predictions: dict  # utt_id -> scores.json-style entry


def evaluate_split(scorer: Scorer, store: FeatureStore, utterances: list[Utterance]) -> Evaluation:
    by_id = {u.utt_id: u for u in utterances}
    examples = scorer.scaler.transform(build_examples(store, utterances, scorer.groups, scorer.utterance_columns))
    scored = scorer.score_examples(examples)
    labels = label_dict(examples)
    calibrated = prediction_dict_calibrated(scored)
    metrics = {
        "n_utterances": len(scored),
        "calibrated": aspect_table(calibrated, labels),
        "raw": aspect_table(prediction_dict([s.raw for s in scored]), labels),
        "mdd": mispronunciation_detection(calibrated["phone"], labels["phone"], scorer.mdd_threshold),
    }
    return Evaluation(metrics, {s.utt_id: corpus_entry(s, by_id[s.utt_id]) for s in scored})


def prediction_dict_calibrated(scored: list[ScoredUtterance]) -> dict[str, np.ndarray]:
    return {"phone": np.concatenate([s.phone for s in scored]),
            **{f"word_{a}": np.concatenate([s.word[a] for s in scored]) for a in WORD_ASPECTS},
            **{f"sentence_{a}": np.array([s.sentence[a] for s in scored]) for a in SENTENCE_ASPECTS}}


def corpus_entry(scored: ScoredUtterance, utt: Utterance) -> dict:
    """One utterance's predictions in speechocean762's scores.json schema."""
    words, at = [], 0
    for j, word in enumerate(utt.words):
        n = len(word.phones)
        words.append({"text": word.text, "phones": list(word.phones),
                      "phones-accuracy": [round(float(x), 3) for x in scored.phone[at:at + n]],
                      **{a: round(float(scored.word[a][j]), 3) for a in WORD_ASPECTS}})
        at += n
    return {"text": utt.text, **{a: round(scored.sentence[a], 3) for a in SENTENCE_ASPECTS}, "words": words}
