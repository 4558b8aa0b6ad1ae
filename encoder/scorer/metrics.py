"""Evaluation metrics for pronunciation scores: PCC/SCC/MSE per aspect and mispronunciation detection (MDD).

Aspect names used across the scorer: ``phone`` (or ``phone_accuracy``), ``word_accuracy``, ``word_stress``,
``word_total`` and ``sentence_<aspect>`` for the five sentence aspects of speechocean762.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support

from ..corpus import SENTENCE_ASPECTS, WORD_ASPECTS

PHONE_ASPECT = "phone"
PHONE_ASPECT_NAMES = (PHONE_ASPECT, "phone_accuracy")  # "phone_accuracy" is the key train.py uses
WORD_ASPECT_NAMES = tuple(f"word_{a}" for a in WORD_ASPECTS)
SENTENCE_ASPECT_NAMES = tuple(f"sentence_{a}" for a in SENTENCE_ASPECTS)
ASPECTS = (*PHONE_ASPECT_NAMES, *WORD_ASPECT_NAMES, *SENTENCE_ASPECT_NAMES)

# Phone labels are means of 5 experts' 0/1/2 marks (e.g. 0.4), so "label 0" means "below 0.5":
# a phone whose mean mark rounds to 0 is the mispronounced (positive) class.
MISPRONOUNCED_BELOW = 0.5

Metrics = dict[str, float | int | None]


def label_range(aspect: str) -> tuple[float, float]:
    """The label scale of an aspect: phone accuracy is 0-2, every word and sentence aspect is 0-10."""
    return (0.0, 2.0) if aspect in PHONE_ASPECT_NAMES else (0.0, 10.0)


def paired_finite(pred: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flattened pairs with absent (NaN) labels and non-finite predictions dropped."""
    keep = finite_pairs(pred, label)
    return np.asarray(pred, dtype=np.float64).ravel()[keep], np.asarray(label, dtype=np.float64).ravel()[keep]


def finite_pairs(pred: np.ndarray, label: np.ndarray) -> np.ndarray:
    """Over the flattened arrays, True where both the prediction and the label are finite (what paired_finite
    keeps). Raises ValueError when their lengths differ."""
    pred = np.asarray(pred, dtype=np.float64).ravel()
    label = np.asarray(label, dtype=np.float64).ravel()
    if pred.shape != label.shape:
        raise ValueError(f"predictions and labels differ in length: {pred.shape[0]} vs {label.shape[0]}")
    return np.isfinite(label) & np.isfinite(pred)


def _is_constant(values: np.ndarray) -> bool:
    return bool(np.ptp(values) == 0.0)


def regression_metrics(pred: np.ndarray, label: np.ndarray) -> Metrics:
    """PCC, SCC and MSE of predictions against labels; NaN labels are dropped first.

    PCC/SCC are None where undefined (fewer than 3 pairs, or either side constant); MSE is None without pairs.
    """
    pred, label = paired_finite(pred, label)
    n = int(pred.size)
    correlations_defined = n >= 3 and not _is_constant(pred) and not _is_constant(label)
    return {
        "pcc": float(pearsonr(pred, label).statistic) if correlations_defined else None,
        "scc": float(spearmanr(pred, label).statistic) if correlations_defined else None,
        "mse": float(np.mean((pred - label) ** 2)) if n else None,
        "n": n,
    }


def mispronounced(phone_labels: np.ndarray) -> np.ndarray:
    """True where a phone label marks a mispronunciation (mean expert mark below 0.5)."""
    return np.asarray(phone_labels, dtype=np.float64) < MISPRONOUNCED_BELOW


def mispronunciation_detection(phone_scores: np.ndarray, phone_labels: np.ndarray, threshold: float) -> Metrics:
    """Precision/recall/F1 of flagging phones whose score is below `threshold` as mispronounced.

    The true positive class is label < 0.5 (see MISPRONOUNCED_BELOW); NaN labels are dropped.
    Precision or recall with an empty denominator is reported as 0.
    """
    scores, labels = paired_finite(phone_scores, phone_labels)
    truth = mispronounced(labels)
    flagged = scores < threshold
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, flagged, average="binary", pos_label=True, zero_division=0.0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "n_positive": int(truth.sum()), "threshold": float(threshold)}


def choose_threshold(phone_scores: np.ndarray, phone_labels: np.ndarray) -> float:
    """The threshold (flag when score < threshold) maximising F1 on the data given; meant for dev.

    Uses precision_recall_curve on negated scores (higher = more likely mispronounced). The curve's cut
    "-score >= t" flags scores <= -t; the returned threshold is the midpoint between that score and the next
    larger score, so the strict rule "score < threshold" flags exactly the same phones.
    """
    scores, labels = paired_finite(phone_scores, phone_labels)
    truth = mispronounced(labels)
    if not truth.any() or truth.all():
        raise ValueError("choose_threshold needs both mispronounced (label < 0.5) and correct phones")
    precision, recall, cuts = precision_recall_curve(truth, -scores)
    f1 = _f1(precision[:-1], recall[:-1])  # the last point (P=1, R=0) has no cut
    highest_flagged = -cuts[int(np.argmax(f1))]
    return _midpoint_above(highest_flagged, scores)


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    total = precision + recall
    return np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)


def _midpoint_above(value: float, scores: np.ndarray) -> float:
    """Midpoint between `value` and the smallest score above it (the next float up where none is above)."""
    above = scores[scores > value]
    if above.size == 0:
        return float(np.nextafter(value, np.inf))
    return float((value + above.min()) / 2.0)


def aspect_table(preds: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                 mdd_threshold: float | None = None) -> dict[str, Metrics]:
    """regression_metrics per aspect present in both mappings, known aspects first (ASPECTS order).

    Aspects whose labels are absent or all NaN (e.g. word aspects on the test split) are skipped.
    With `mdd_threshold`, a ``phone_mdd`` entry adds mispronunciation detection at that threshold
    (on ``phone``, or ``phone_accuracy`` where that is the key used).
    """
    shared = [a for a in ASPECTS if a in preds and a in labels]
    shared += sorted(a for a in preds if a in labels and a not in ASPECTS)
    table = {aspect: regression_metrics(preds[aspect], labels[aspect])
             for aspect in shared if _has_labels(labels[aspect])}
    phone_key = next((a for a in PHONE_ASPECT_NAMES if a in table), None)
    if mdd_threshold is not None and phone_key is not None:
        table["phone_mdd"] = mispronunciation_detection(preds[phone_key], labels[phone_key], mdd_threshold)
    return table


def _has_labels(label: np.ndarray | None) -> bool:
    if label is None:
        return False
    values = np.asarray(label, dtype=np.float64)
    return bool(np.isfinite(values).any())
