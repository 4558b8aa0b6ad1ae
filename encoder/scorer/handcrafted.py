"""Lasso-based selection of the handcrafted utterance-pool features that predict the sentence scores.

Selection rule (deterministic): X is standardised and constant columns are dropped; for each target the
rows with a label are kept, the label is standardised, and scikit-learn's `lasso_path` is walked from
alpha_max (nothing selected) down to `eps * alpha_max`. A column's *entry level* for a target is the largest
alpha / alpha_max at which its coefficient is non-zero (0 if it never enters). Walking one path until
n_features columns are non-zero is the same as keeping the n_features earliest entries; with several targets
the entry levels are averaged with the target weights and the top `n_features` columns kept. Ties (columns
entering at the same path step, or never) are broken by the weighted |correlation| with the targets, then by
column index. Per-target paths (rather than one MultiTaskLasso) let each target keep all its labelled rows.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import lasso_path
from sklearn.preprocessing import StandardScaler

from ..corpus import SENTENCE_ASPECTS

DEFAULT_TARGETS = tuple(f"sentence_{a}" for a in SENTENCE_ASPECTS)


class HandcraftedSelector(TransformerMixin, BaseEstimator):
    """Keeps about `n_features` standardised pool columns chosen by Lasso entry order on the sentence scores.

    Parameters
    ----------
    n_features : how many columns to keep (fewer if fewer non-constant columns exist).
    targets : names of Y's columns, in order (equal weights), or a mapping name -> weight.
    n_alphas, eps : the Lasso path grid (n_alphas log-spaced alphas from alpha_max down to eps * alpha_max).
    random_state : kept for the scikit-learn interface; the cyclic coordinate descent used is deterministic.
    """

    def __init__(self, n_features: int = 112,
                 targets: Sequence[str] | Mapping[str, float] = DEFAULT_TARGETS,
                 n_alphas: int = 100, eps: float = 1e-3, random_state: int | None = 0) -> None:
        self.n_features = n_features
        self.targets = targets
        self.n_alphas = n_alphas
        self.eps = eps
        self.random_state = random_state

    def fit(self, X: np.ndarray, Y: np.ndarray, names: Sequence[str] | None = None) -> HandcraftedSelector:
        """X (n_utts, n_columns) pool, Y (n_utts, n_targets) labels (NaN = absent), names of X's columns."""
        X = _check_matrix(X, "X")
        Y = np.asarray(Y, dtype=np.float64).reshape(X.shape[0], -1)
        weights = self._target_weights(Y.shape[1])
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = _column_names(names, X.shape[1])
        scaler = StandardScaler().fit(X)
        varying = np.flatnonzero(scaler.var_ > 0)
        Z = scaler.transform(X)[:, varying]
        entry, correlation = self._entry_levels(Z, Y, weights)
        order = np.lexsort((varying, -correlation, -entry))  # last key is primary
        self.selected_indices_ = np.sort(varying[order[: self.n_features]])
        self.entry_levels_ = dict(zip(self.feature_names_in_[varying].tolist(), entry.tolist()))
        self.mean_ = scaler.mean_[self.selected_indices_]
        self.scale_ = scaler.scale_[self.selected_indices_]
        self.target_weights_ = weights
        return self

    def transform(self, X: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
        """Standardised selected columns, float32 (n_utts, n_selected); `names` (optional) must match the fit."""
        self._check_input(X, names)
        X = np.asarray(X, dtype=np.float64)
        return ((X[:, self.selected_indices_] - self.mean_) / self.scale_).astype(np.float32)

    @property
    def selected_names_(self) -> list[str]:
        return self.feature_names_in_[self.selected_indices_].tolist()

    def get_feature_names_out(self, input_features: Sequence[str] | None = None) -> np.ndarray:
        return np.asarray(self.selected_names_, dtype=object)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fitted state (params, input names, selected indices/names, means, scales)."""
        return {"params": {"n_features": self.n_features, "targets": _jsonable_targets(self.targets),
                           "n_alphas": self.n_alphas, "eps": self.eps, "random_state": self.random_state},
                "feature_names_in": self.feature_names_in_.tolist(),
                "selected_indices": self.selected_indices_.tolist(),
                "selected_names": self.selected_names_,
                "mean": self.mean_.tolist(), "scale": self.scale_.tolist(),
                "target_weights": self.target_weights_}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HandcraftedSelector:
        params = dict(data["params"])
        targets = params["targets"]
        params["targets"] = dict(targets) if isinstance(targets, Mapping) else tuple(targets)
        selector = cls(**params)
        selector.feature_names_in_ = np.asarray(data["feature_names_in"], dtype=object)
        selector.n_features_in_ = len(selector.feature_names_in_)
        selector.selected_indices_ = np.asarray(data["selected_indices"], dtype=np.int64)
        selector.mean_ = np.asarray(data["mean"], dtype=np.float64)
        selector.scale_ = np.asarray(data["scale"], dtype=np.float64)
        selector.target_weights_ = dict(data["target_weights"])
        if selector.selected_names_ != list(data["selected_names"]):
            raise ValueError("corrupt selector: selected_names do not match selected_indices")
        return selector

    def _target_weights(self, n_columns: int) -> dict[str, float]:
        if isinstance(self.targets, Mapping):
            weights = {str(k): float(v) for k, v in self.targets.items()}
        else:
            weights = {str(name): 1.0 for name in self.targets}
        if len(weights) != n_columns:
            raise ValueError(f"Y has {n_columns} column(s) but targets names {len(weights)}: {list(weights)}")
        if min(weights.values()) < 0 or sum(weights.values()) <= 0:
            raise ValueError(f"target weights must be non-negative with a positive sum: {weights}")
        return weights

    def _entry_levels(self, Z: np.ndarray, Y: np.ndarray,
                      weights: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Weighted mean over targets of each column's entry level and of its |correlation| with the target."""
        entry = np.zeros(Z.shape[1])
        correlation = np.zeros(Z.shape[1])
        for column, weight in enumerate(weights.values()):
            if weight == 0:
                continue
            target_entry, target_correlation = self._target_entry_levels(Z, Y[:, column])
            entry += weight * target_entry
            correlation += weight * target_correlation
        total = sum(weights.values())
        return entry / total, correlation / total

    def _target_entry_levels(self, Z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labelled = np.isfinite(y)
        if labelled.sum() < 2 or np.ptp(y[labelled]) == 0:
            raise ValueError("each target needs at least 2 distinct labels to select features")
        Zt = Z[labelled] - Z[labelled].mean(axis=0)
        yt = (y[labelled] - y[labelled].mean()) / y[labelled].std()
        alphas, coefs, _ = lasso_path(Zt, yt, alphas=self.n_alphas, eps=self.eps)
        nonzero = coefs != 0  # (n_columns, n_alphas), alphas decreasing
        first_step = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), -1)
        entry = np.where(first_step >= 0, alphas[np.maximum(first_step, 0)] / alphas[0], 0.0)
        scale = Zt.std(axis=0)
        correlation = np.abs(Zt.T @ yt) / (len(yt) * np.where(scale > 0, scale, 1.0))
        return entry, correlation

    def _check_input(self, X: np.ndarray, names: Sequence[str] | None) -> None:
        if not hasattr(self, "selected_indices_"):
            raise ValueError("HandcraftedSelector is not fitted: call fit(X, Y, names) or from_dict(...) first")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must be (n_utts, {self.n_features_in_}) as at fit; got shape {X.shape}")
        if names is not None and len(names) != self.n_features_in_:
            raise ValueError(f"{len(names)} pool column names given; the fit had {self.n_features_in_}")
        if names is not None and list(names) != self.feature_names_in_.tolist():
            differing = [f"{i}: {a!r} != {b!r}" for i, (a, b) in
                         enumerate(zip(names, self.feature_names_in_)) if a != b][:5]
            raise ValueError(f"pool column names differ from the fit (first differences: {differing})")


def _check_matrix(X: np.ndarray, what: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"{what} must be a 2-D array with at least 2 rows; got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{what} contains NaN or infinite values; the pool is expected to be finite")
    return X


def _column_names(names: Sequence[str] | None, n_columns: int) -> np.ndarray:
    if names is None:
        names = [f"x{i}" for i in range(n_columns)]
    if len(names) != n_columns:
        raise ValueError(f"{len(names)} names for {n_columns} columns")
    return np.asarray([str(n) for n in names], dtype=object)


def _jsonable_targets(targets: Sequence[str] | Mapping[str, float]) -> list[str] | dict[str, float]:
    if isinstance(targets, Mapping):
        return {str(k): float(v) for k, v in targets.items()}
    return [str(t) for t in targets]
