"""Speaker-disjoint cross-validation folds over the train split, shared by every cross-fitted stage.

The in-domain phone recogniser (cross-fitted features) and the scorer (model selection, out-of-fold
calibration) use the same assignment, so an utterance is held out by the same fold everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CrossFitFold:
    """One fold: a model is fitted on fit_ids and predicts held_out_ids (other speakers)."""

    fold: int
    fit_ids: tuple[str, ...]
    held_out_ids: tuple[str, ...]


def fold_of_speaker(speakers, n_folds: int = 5) -> dict[str, int]:
    """Speakers dealt round-robin in sorted order: deterministic, and each fold within one speaker of the others.
    Raises ValueError when there are fewer speakers than folds."""
    ordered = sorted(set(speakers))
    if len(ordered) < n_folds:
        raise ValueError(f"{len(ordered)} speakers cannot fill {n_folds} folds")
    return {s: i % n_folds for i, s in enumerate(ordered)}


def speaker_folds(utt_speakers: dict[str, str], n_folds: int = 5) -> list[CrossFitFold]:
    """Speaker-disjoint folds over the given utterances (utterance id -> speaker), ids sorted within each."""
    fold_of = fold_of_speaker(utt_speakers.values(), n_folds)
    ids = sorted(utt_speakers)
    return [CrossFitFold(k, tuple(u for u in ids if fold_of[utt_speakers[u]] != k),
                         tuple(u for u in ids if fold_of[utt_speakers[u]] == k)) for k in range(n_folds)]
