"""Scorer inputs: one ScorerExample per utterance, a train-fitted FeatureScaler, and padded ScorerBatches."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ..corpus import SENTENCE_ASPECTS, WORD_ASPECTS, Utterance
from ..features.frontend import ALL_GROUPS, PhoneFeatures
from ..phoneset import PHONE_INDEX, WORD_POSITIONS, CanonicalPhone
from .augmentation import is_augmented

N_STRESS = 4  # 0 = no stress mark (consonants), 1..3 = stress 0/1/2
POSITION_INDEX = {p: i for i, p in enumerate(WORD_POSITIONS)}
PHONE_SCALE, WORD_SCALE, SENTENCE_SCALE = 2.0, 10.0, 10.0  # label ranges: phones 0-2, words and sentences 0-10


@dataclass(frozen=True)
class ScorerExample:
    """One utterance: per-phone features and symbols, and its labels (NaN where absent)."""

    utt_id: str
    features: np.ndarray  # (n, d) float32: the chosen groups side by side
    feature_names: tuple[str, ...]  # d names, "group.name"
    phone_ids: np.ndarray  # (n,) int64, index into PHONES
    stress: np.ndarray  # (n,) int64, see N_STRESS
    positions: np.ndarray  # (n,) int64, index into WORD_POSITIONS
    word_ids: np.ndarray  # (n,) int64, word index of each phone
    phone_labels: np.ndarray  # (n,) float32, 0-2
    word_labels: np.ndarray  # (n_words, 3) float32, 0-10: accuracy, stress, total
    sentence_labels: np.ndarray  # (5,) float32, 0-10: SENTENCE_ASPECTS order
    utterance_features: np.ndarray  # (m,) float32; m = 0 without a handcrafted pool

    @property
    def n_phones(self) -> int:
        return len(self.phone_ids)

    @property
    def n_words(self) -> int:
        return len(self.word_labels)


@dataclass
class ScorerBatch:
    """Padded tensors of a list of examples. Padding: features 0, ids 0, word_ids -1, labels NaN."""

    features: torch.Tensor  # (B, P, d)
    phone_ids: torch.Tensor  # (B, P) long
    stress: torch.Tensor  # (B, P) long
    positions: torch.Tensor  # (B, P) long
    word_ids: torch.Tensor  # (B, P) long
    phone_mask: torch.Tensor  # (B, P) bool, True = real phone
    word_mask: torch.Tensor  # (B, W) bool, True = real word
    utterance_features: torch.Tensor  # (B, m)
    phone_labels: torch.Tensor  # (B, P)
    word_labels: torch.Tensor  # (B, W, 3)
    sentence_labels: torch.Tensor  # (B, 5)
    utt_ids: list[str]
    synthetic: torch.Tensor | None = None  # (B,) bool, True = an augmented item (its targets are made up)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """The keyword arguments of HierarchicalScorer.forward."""
        return dict(features=self.features, phone_ids=self.phone_ids, stress=self.stress, positions=self.positions,
                    word_ids=self.word_ids, phone_mask=self.phone_mask, word_mask=self.word_mask,
                    utterance_features=self.utterance_features)


def chosen_groups(available: Iterable[str], groups: Sequence[str] | None) -> tuple[str, ...]:
    """The groups to use, in the fixed ALL_GROUPS order; all available ones when groups is None."""
    available = set(available)
    wanted = set(available if groups is None else groups)
    missing = wanted - available
    if missing:
        raise ValueError(f"feature group(s) {sorted(missing)} are not in the store (it has {sorted(available)})")
    return tuple(g for g in ALL_GROUPS if g in wanted)


def build_examples(store: Iterable[tuple[str, PhoneFeatures]], utterances: Iterable[Utterance],
                   groups: Sequence[str] | None = None,
                   utterance_columns: Sequence[int] | None = None) -> list[ScorerExample]:
    """Examples for the utterances present in both the store and `utterances` (labels), in store order.

    utterance_columns picks columns of the handcrafted pool (e.g. a Lasso selection); None keeps all of them,
    an empty sequence none.
    """
    labels = {u.utt_id: u for u in utterances}
    return [_example(utt_id, features, labels[utt_id], groups, utterance_columns)
            for utt_id, features in store if utt_id in labels]


def unlabelled_example(utt_id: str, pf: PhoneFeatures, groups: Sequence[str] | None = None,
                       utterance_columns: Sequence[int] | None = None) -> ScorerExample:
    """An example for inference on new audio: every label NaN."""
    return _example(utt_id, pf, None, groups, utterance_columns)


def _example(utt_id: str, pf: PhoneFeatures, utt: Utterance | None, groups: Sequence[str] | None,
             utterance_columns: Sequence[int] | None) -> ScorerExample:
    matrix = pf.phone_matrix(chosen_groups(pf.blocks, groups))
    phones = pf.phones
    if utt is None:
        return _with_labels(utt_id, pf, matrix, utterance_columns, np.full(len(phones), np.nan, np.float32),
                            np.full((phones[-1].word_index + 1, 3), np.nan, np.float32),
                            np.full(len(SENTENCE_ASPECTS), np.nan, np.float32))
    if [p.base for p in phones] != [p.base for p in utt.canonical_phones]:
        raise ValueError(f"{utt_id}: the feature store's phones differ from the corpus labels' phones")
    word_labels = np.array([[_nan(getattr(w, a)) for a in WORD_ASPECTS] for w in utt.words], np.float32).reshape(-1, 3)
    sentence_labels = np.array([_nan(getattr(utt.sentence, a)) for a in SENTENCE_ASPECTS], np.float32)
    return _with_labels(utt_id, pf, matrix, utterance_columns, _phone_labels(utt, len(phones)), word_labels,
                        sentence_labels)


def _with_labels(utt_id: str, pf: PhoneFeatures, matrix, utterance_columns: Sequence[int] | None,
                 phone_labels: np.ndarray, word_labels: np.ndarray, sentence_labels: np.ndarray) -> ScorerExample:
    phones = pf.phones
    return ScorerExample(
        utt_id=utt_id, features=matrix.values.astype(np.float32), feature_names=matrix.names,
        phone_ids=np.array([PHONE_INDEX[p.base] for p in phones], np.int64),
        stress=np.array([_stress_index(p) for p in phones], np.int64),
        positions=np.array([POSITION_INDEX[p.position] for p in phones], np.int64),
        word_ids=np.array([p.word_index for p in phones], np.int64),
        phone_labels=phone_labels, word_labels=word_labels, sentence_labels=sentence_labels,
        utterance_features=_pool(pf, utterance_columns),
    )


def _stress_index(phone: CanonicalPhone) -> int:
    return 0 if phone.stress is None else phone.stress + 1


def _phone_labels(utt: Utterance, n: int) -> np.ndarray:
    per_word = [w.phone_accuracy if w.phone_accuracy is not None else (None,) * len(w.phones) for w in utt.words]
    labels = np.array([_nan(a) for word in per_word for a in word], np.float32)
    if len(labels) != n:
        raise ValueError(f"{utt.utt_id}: {len(labels)} labelled phones but {n} feature rows")
    return labels


def _pool(pf: PhoneFeatures, columns: Sequence[int] | None) -> np.ndarray:
    if pf.utterance is None:
        if columns:
            raise ValueError("utterance_columns given but the store has no utterance pool")
        return np.zeros(0, np.float32)
    values = pf.utterance.values[0]
    return (values if columns is None else values[np.asarray(columns, np.int64)]).astype(np.float32)


def _nan(value: float | None) -> float:
    return np.nan if value is None else float(value)


class FeatureScaler:
    """Per-column standardisation of phone features and utterance features, fitted on train.

    Non-finite values become 0 after scaling (the column mean); constant columns keep std 1. With `clip`, scaled
    values are clipped to [-clip, clip]: a column that is nearly constant on train (e.g. the share of silence
    inside phones) otherwise turns an unusual recording into z-scores in the hundreds, which the network has
    only seen on non-speech items.
    """

    def __init__(self, phone_mean: np.ndarray, phone_std: np.ndarray, utt_mean: np.ndarray, utt_std: np.ndarray,
                 clip: float | None = None):
        self.phone_mean, self.phone_std = phone_mean.astype(np.float32), phone_std.astype(np.float32)
        self.utt_mean, self.utt_std = utt_mean.astype(np.float32), utt_std.astype(np.float32)
        if clip is not None and not clip > 0:
            raise ValueError(f"clip must be positive or None, not {clip}")
        self.clip = clip

    @classmethod
    def fit(cls, examples: Sequence[ScorerExample], clip: float | None = None) -> "FeatureScaler":
        phones = np.concatenate([e.features for e in examples]).astype(np.float64)
        pools = np.stack([e.utterance_features for e in examples]).astype(np.float64)
        return cls(*_moments(phones), *_moments(pools), clip=clip)

    def transform(self, examples: Iterable[ScorerExample]) -> list[ScorerExample]:
        return [replace(e, features=_standardise(e.features, self.phone_mean, self.phone_std, self.clip),
                        utterance_features=_standardise(e.utterance_features, self.utt_mean, self.utt_std, self.clip))
                for e in examples]

    def save(self, path: str | Path) -> None:
        clip = np.float32(np.nan if self.clip is None else self.clip)
        with open(path, "wb") as fh:
            np.savez(fh, phone_mean=self.phone_mean, phone_std=self.phone_std, utt_mean=self.utt_mean,
                     utt_std=self.utt_std, clip=clip)

    @classmethod
    def load(cls, path: str | Path) -> "FeatureScaler":
        """Files written before `clip` existed load without clipping."""
        with np.load(path) as data:
            clip = float(data["clip"]) if "clip" in data.files and np.isfinite(data["clip"]) else None
            return cls(data["phone_mean"], data["phone_std"], data["utt_mean"], data["utt_std"], clip)


def _moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = np.where(np.isfinite(values), values, np.nan)
    if finite.shape[0] == 0:
        return np.zeros(finite.shape[1]), np.ones(finite.shape[1])
    with warnings.catch_warnings():  # all-NaN columns warn; they get mean 0, std 1 below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(finite, axis=0), np.nanstd(finite, axis=0)
    mean = np.nan_to_num(mean)
    std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
    return mean, std


def _standardise(values: np.ndarray, mean: np.ndarray, std: np.ndarray, clip: float | None = None) -> np.ndarray:
    scaled = (values - mean) / std
    scaled = np.where(np.isfinite(scaled), scaled, 0.0)
    return (scaled if clip is None else np.clip(scaled, -clip, clip)).astype(np.float32)


def collate(examples: Sequence[ScorerExample]) -> ScorerBatch:
    """Pad a list of examples to the longest phone and word sequence; masks mark the real entries."""
    b, p, w = len(examples), max(e.n_phones for e in examples), max(e.n_words for e in examples)
    d, m = examples[0].features.shape[1], len(examples[0].utterance_features)
    features = np.zeros((b, p, d), np.float32)
    ids, stress, positions = (np.zeros((b, p), np.int64) for _ in range(3))
    word_ids = np.full((b, p), -1, np.int64)
    phone_mask, word_mask = np.zeros((b, p), bool), np.zeros((b, w), bool)
    phone_labels, word_labels = np.full((b, p), np.nan, np.float32), np.full((b, w, 3), np.nan, np.float32)
    for i, e in enumerate(examples):
        n, nw = e.n_phones, e.n_words
        features[i, :n], ids[i, :n], stress[i, :n], positions[i, :n] = e.features, e.phone_ids, e.stress, e.positions
        word_ids[i, :n], phone_mask[i, :n], word_mask[i, :nw] = e.word_ids, True, True
        phone_labels[i, :n], word_labels[i, :nw] = e.phone_labels, e.word_labels
    return ScorerBatch(
        features=torch.from_numpy(features), phone_ids=torch.from_numpy(ids), stress=torch.from_numpy(stress),
        positions=torch.from_numpy(positions), word_ids=torch.from_numpy(word_ids),
        phone_mask=torch.from_numpy(phone_mask), word_mask=torch.from_numpy(word_mask),
        utterance_features=torch.from_numpy(np.stack([e.utterance_features for e in examples]).reshape(b, m).astype(np.float32)),
        phone_labels=torch.from_numpy(phone_labels), word_labels=torch.from_numpy(word_labels),
        sentence_labels=torch.from_numpy(np.stack([e.sentence_labels for e in examples]).astype(np.float32)),
        utt_ids=[e.utt_id for e in examples],
        synthetic=torch.tensor([is_augmented(e.utt_id) for e in examples], dtype=torch.bool),
    )
