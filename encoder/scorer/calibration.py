"""Per-aspect isotonic calibration of predicted scores onto the label scale, fitted on dev predictions.

Each aspect gets a scikit-learn IsotonicRegression (increasing, clipped out of bounds, bounded to the
label range). Only its breakpoints (X_thresholds_, y_thresholds_) are kept, and outputs are always computed
from them with np.interp, so a calibrator loaded from JSON gives bit-identical outputs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

from .metrics import label_range, paired_finite

# Word stress labels take only 5 or 10 in practice.
DEFAULT_DISCRETE_VALUES: dict[str, tuple[float, ...]] = {"word_stress": (5.0, 10.0)}


class AspectCalibrator(BaseEstimator):
    """Monotone (non-decreasing) map from raw predictions to the label scale, one per aspect.

    Parameters
    ----------
    min_points : an aspect with fewer finite (pred, label) pairs, or with constant labels, falls back to the
        identity clipped to the label range; `fitted_[aspect]["method"]` says which map was used and why.
    discrete_values : aspect -> allowed label values to snap to (nearest; ties go to the lower value) when
        `transform(..., snap=True)`. None means DEFAULT_DISCRETE_VALUES ({"word_stress": (5, 10)}); {} disables.
    label_ranges : aspect -> (low, high) overriding metrics.label_range (phone / phone_accuracy 0-2, the rest 0-10).
    """

    def __init__(self, min_points: int = 10,
                 discrete_values: Mapping[str, Sequence[float]] | None = None,
                 label_ranges: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.min_points = min_points
        self.discrete_values = discrete_values
        self.label_ranges = label_ranges

    def fit(self, preds: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]) -> AspectCalibrator:
        """Fit one map per aspect present in both `preds` and `labels`; NaN labels/predictions are dropped."""
        self.fitted_ = {aspect: self._fit_aspect(aspect, preds[aspect], labels[aspect])
                        for aspect in preds if aspect in labels}
        return self

    def transform(self, preds: Mapping[str, np.ndarray], snap: bool = False) -> dict[str, np.ndarray]:
        """Calibrated scores per aspect (float64, same shape; NaN stays NaN).

        With `snap`, aspects listed in `discrete_values` are moved to the nearest allowed value; call twice
        (snap=False / snap=True) to report both the continuous and the snapped scores.
        """
        fitted = self._require_fitted()
        unknown = sorted(set(preds) - set(fitted))
        if unknown:
            raise ValueError(f"no calibration fitted for aspect(s) {unknown}; fitted: {sorted(fitted)}")
        calibrated = {aspect: _apply_map(fitted[aspect], values) for aspect, values in preds.items()}
        return self.snap(calibrated) if snap else calibrated

    def snap(self, calibrated: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Move aspects listed in `discrete_values` to their nearest allowed value; others pass unchanged."""
        allowed = self._discrete_values()
        return {aspect: _snap_to(values, allowed[aspect]) if aspect in allowed else np.asarray(values, np.float64)
                for aspect, values in calibrated.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: the constructor params and every fitted map's breakpoints."""
        return {"params": {"min_points": self.min_points,
                           "discrete_values": _listify(self.discrete_values),
                           "label_ranges": _listify(self.label_ranges)},
                "fitted": self._require_fitted()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AspectCalibrator:
        params = dict(data["params"])
        for key in ("discrete_values", "label_ranges"):
            if params[key] is not None:
                params[key] = {aspect: tuple(v) for aspect, v in params[key].items()}
        calibrator = cls(**params)
        calibrator.fitted_ = {aspect: dict(info) for aspect, info in data["fitted"].items()}
        return calibrator

    def _fit_aspect(self, aspect: str, pred: np.ndarray, label: np.ndarray) -> dict[str, Any]:
        low, high = self._label_range(aspect)
        x, y = paired_finite(pred, label)
        info: dict[str, Any] = {"low": low, "high": high, "n": int(x.size)}
        if x.size < self.min_points:
            return {**info, "method": "identity", "reason": f"only {x.size} points (< {self.min_points})"}
        if np.ptp(y) == 0.0:
            return {**info, "method": "identity", "reason": "constant labels"}
        isotonic = IsotonicRegression(y_min=low, y_max=high, increasing=True, out_of_bounds="clip").fit(x, y)
        return {**info, "method": "isotonic", "reason": None,
                "x_thresholds": [float(v) for v in isotonic.X_thresholds_],
                "y_thresholds": [float(v) for v in isotonic.y_thresholds_]}

    def _label_range(self, aspect: str) -> tuple[float, float]:
        ranges = self.label_ranges or {}
        low, high = ranges.get(aspect, label_range(aspect))
        return float(low), float(high)

    def _discrete_values(self) -> Mapping[str, Sequence[float]]:
        return DEFAULT_DISCRETE_VALUES if self.discrete_values is None else self.discrete_values

    def _require_fitted(self) -> dict[str, dict[str, Any]]:
        if not hasattr(self, "fitted_"):
            raise ValueError("AspectCalibrator is not fitted: call fit(preds, labels) or from_dict(...) first")
        return self.fitted_


def _apply_map(info: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    """Evaluate a fitted map: piecewise-linear between isotonic breakpoints, flat (clipped) outside them."""
    values = np.asarray(values, dtype=np.float64)
    if info["method"] == "isotonic":
        mapped = np.interp(values, info["x_thresholds"], info["y_thresholds"])
    else:
        mapped = values
    mapped = np.clip(mapped, info["low"], info["high"])
    return np.where(np.isnan(values), np.nan, mapped)


def _snap_to(values: np.ndarray, allowed: Sequence[float]) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    choices = np.sort(np.asarray(allowed, dtype=np.float64))
    nearest = choices[np.argmin(np.abs(values[..., None] - choices), axis=-1)]
    return np.where(np.isnan(values), np.nan, nearest)


def _listify(mapping: Mapping[str, Sequence[float]] | None) -> dict[str, list[float]] | None:
    return None if mapping is None else {key: [float(v) for v in value] for key, value in mapping.items()}
