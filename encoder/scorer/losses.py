"""Multi-task scoring loss: masked MSE at every level, phone classes reweighted, plus rank-aware terms.

Every term is computed on labels divided by their range (phones /2, words and sentences /10), so tasks are
comparable; a task with no labels in the batch contributes exactly 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .data import PHONE_SCALE, SENTENCE_SCALE, WORD_SCALE, ScorerBatch, ScorerExample
from .model import ScorerOutput


@dataclass
class LossConfig:
    phone_weight: float = 1.0
    word_weight: float = 1.0
    sentence_weight: float = 1.0
    sentence_aspect_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)  # SENTENCE_ASPECTS order
    pcc_weight: float = 0.5  # 1 - batch Pearson, per word and sentence aspect
    rank_weight: float = 0.0  # pairwise soft ranking, per word and sentence aspect
    rank_margin: float = 0.05  # label gaps (on the 0-1 scale) below this are ties, left out of ranking
    phone_class_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # rounded phone label 0/1/2
    # Augmented items' targets sit far below real ones, so in a batch correlation they would reward telling
    # augmented from real rather than ranking real readings; by default the pcc and rank terms skip them.
    correlation_on_augmented: bool = False


@dataclass
class LossParts:
    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


def phone_class_weights(examples: Sequence[ScorerExample], power: float = 0.5, cap: float = 10.0
                        ) -> tuple[float, float, float]:
    """Inverse frequency ** power of the rounded phone label classes, normalised to mean 1 over phones, capped.

    power 1 balances the classes fully; the default 0.5 (about 5x for the ~3-4% mispronounced phones of
    speechocean762) lifts them without drowning the 93% of correct ones.
    """
    labels = np.concatenate([e.phone_labels for e in examples])
    classes = np.clip(np.rint(labels[np.isfinite(labels)]), 0, 2).astype(int)
    counts = np.bincount(classes, minlength=3).astype(np.float64)
    if counts.sum() == 0:
        return (1.0, 1.0, 1.0)
    weights = np.where(counts > 0, (counts.sum() / (3 * np.maximum(counts, 1))) ** power, 1.0)
    weights = np.minimum(weights / (weights @ counts / counts.sum()), cap)
    return tuple(float(w) for w in weights)


def scoring_loss(output: ScorerOutput, batch: ScorerBatch, config: LossConfig) -> LossParts:
    phone_pred, phone_true = output.phone / PHONE_SCALE, batch.phone_labels / PHONE_SCALE
    word_pred, word_true = output.word / WORD_SCALE, batch.word_labels / WORD_SCALE
    sent_pred, sent_true = output.sentence / SENTENCE_SCALE, batch.sentence_labels / SENTENCE_SCALE

    class_weights = torch.tensor(config.phone_class_weights, dtype=phone_pred.dtype)
    phone_class = torch.nan_to_num(batch.phone_labels).round().clamp(0, 2).long()
    parts = {"phone_mse": masked_mse(phone_pred, phone_true, class_weights[phone_class])}

    word_pred, word_true = word_pred.reshape(-1, 3), word_true.reshape(-1, 3)  # every word of the batch, per aspect
    aspect_weights = torch.tensor(config.sentence_aspect_weights, dtype=sent_pred.dtype)
    parts["word_mse"] = masked_mse(word_pred, word_true)
    parts["sentence_mse"] = masked_mse(sent_pred, sent_true, aspect_weights.expand_as(sent_pred))
    word_true, sent_true = _correlation_targets(batch, config)
    if config.pcc_weight:
        parts["word_pcc"] = _per_column(pearson_loss, word_pred, word_true)
        parts["sentence_pcc"] = _per_column(pearson_loss, sent_pred, sent_true, aspect_weights)
    if config.rank_weight:
        rank = lambda p, t: pairwise_rank_loss(p, t, config.rank_margin)  # noqa: E731
        parts["word_rank"] = _per_column(rank, word_pred, word_true)
        parts["sentence_rank"] = _per_column(rank, sent_pred, sent_true, aspect_weights)

    total = (config.phone_weight * parts["phone_mse"] + config.word_weight * parts["word_mse"]
             + config.sentence_weight * parts["sentence_mse"])
    for level, weight in (("word", config.word_weight), ("sentence", config.sentence_weight)):
        total = total + weight * (config.pcc_weight * parts.get(f"{level}_pcc", 0.0)
                                  + config.rank_weight * parts.get(f"{level}_rank", 0.0))
    return LossParts(total, {k: v.detach() for k, v in parts.items()})


def _correlation_targets(batch: ScorerBatch, config: LossConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Word targets (B*W, 3) and sentence targets (B, 5) on the 0-1 scale for the pcc and rank terms; the
    augmented items' rows are NaN (left out) unless config.correlation_on_augmented."""
    words, sentences = batch.word_labels, batch.sentence_labels
    if not config.correlation_on_augmented and batch.synthetic is not None:
        words = torch.where(batch.synthetic[:, None, None], torch.nan, words)
        sentences = torch.where(batch.synthetic[:, None], torch.nan, sentences)
    return (words / WORD_SCALE).reshape(-1, 3), sentences / SENTENCE_SCALE


def masked_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean squared error over the entries whose target is not NaN (0 when there are none)."""
    valid = ~torch.isnan(target)
    weight = valid.to(pred.dtype) if weight is None else weight * valid
    squared = (pred - torch.nan_to_num(target)) ** 2
    return (squared * weight).sum() / weight.sum().clamp_min(1e-8)


def pearson_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - Pearson correlation over the non-NaN entries of 1-D tensors; 0 with fewer than 3 or a constant target."""
    valid = ~torch.isnan(target)
    n = valid.sum()
    if n < 3:
        return pred.sum() * 0.0
    p, t = pred[valid], target[valid]
    p, t = p - p.mean(), t - t.mean()
    if t.pow(2).sum() < 1e-10:
        return pred.sum() * 0.0
    r = (p * t).sum() / (p.pow(2).sum().sqrt() * t.pow(2).sum().sqrt() + 1e-8)
    return 1.0 - r


def pairwise_rank_loss(pred: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """Soft ranking: mean softplus(-(p_i - p_j) * sign(t_i - t_j)) over pairs whose labels differ by > margin."""
    valid = ~torch.isnan(target)
    p, t = pred[valid], target[valid]
    t_gap, p_gap = t[:, None] - t[None, :], p[:, None] - p[None, :]
    ordered = t_gap > margin
    if not ordered.any():
        return pred.sum() * 0.0
    return torch.nn.functional.softplus(-p_gap[ordered] * 10.0).mean()  # x10: predictions are on a 0-1 scale


def _per_column(loss, pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """The weighted mean of a 1-D loss over columns (aspects) that have labels."""
    values, used = [], []
    for j in range(pred.shape[1]):
        if (~torch.isnan(target[:, j])).any():
            values.append(loss(pred[:, j], target[:, j]))
            used.append(1.0 if weights is None else float(weights[j]))
    if not values:
        return pred.sum() * 0.0
    w = torch.tensor(used, dtype=pred.dtype)
    return (torch.stack(values) * w).sum() / w.sum().clamp_min(1e-8)
