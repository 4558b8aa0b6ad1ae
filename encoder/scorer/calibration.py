"""Per-aspect calibration of predicted scores onto the label scale, fitted on dev predictions.

Two methods, recorded per aspect in `fitted_[aspect]["method"]`:

- "pchip" (the default): a smooth, strictly increasing map. A scikit-learn IsotonicRegression (bounded to the
  label range) is fitted first; each of its blocks (the points sharing one fitted value) becomes a knot at
  (mean raw prediction of the block's points, block value). A scipy PchipInterpolator (monotone piecewise
  cubic) runs through the knots, and beyond the end knots the map continues linearly with the slope of the
  end segment; the result is clipped to the label range. Distinct inputs inside the label range get distinct
  scores (no plateaus), unlike the isotonic step function, which maps wide ranges of inputs to one value.
- "isotonic" (models saved before the smooth method): np.interp through the isotonic breakpoints
  (X_thresholds_, y_thresholds_), flat outside them.

Only the knots / breakpoints are stored, and outputs are always recomputed from them, so a calibrator loaded
from JSON gives bit-identical outputs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.interpolate import PchipInterpolator
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression

from .metrics import finite_pairs, label_range

# Word stress labels take only 5 or 10 in practice.
DEFAULT_DISCRETE_VALUES: dict[str, tuple[float, ...]] = {"word_stress": (5.0, 10.0)}
METHODS = ("pchip", "isotonic")
DEFAULT_METHOD = "pchip"


class AspectCalibrator(BaseEstimator):
    """Monotone map from raw predictions to the label scale, one per aspect.

    Parameters
    ----------
    method : "pchip" (smooth, strictly increasing inside the label range) or "isotonic" (a step function, the
        method of models saved before "pchip"; a calibration JSON without a method is isotonic).
    min_points : an aspect with fewer finite (pred, label) pairs, or with constant labels, falls back to the
        identity clipped to the label range; `fitted_[aspect]["method"]` says which map was used and why.
    discrete_values : aspect -> allowed label values to snap to (nearest; ties go to the lower value) when
        `transform(..., snap=True)`. None means DEFAULT_DISCRETE_VALUES ({"word_stress": (5, 10)}); {} disables.
    label_ranges : aspect -> (low, high) overriding metrics.label_range (phone / phone_accuracy 0-2, the rest 0-10).
    """

    def __init__(self, min_points: int = 10,
                 discrete_values: Mapping[str, Sequence[float]] | None = None,
                 label_ranges: Mapping[str, tuple[float, float]] | None = None,
                 method: str = DEFAULT_METHOD) -> None:
        self.method = method
        self.min_points = min_points
        self.discrete_values = discrete_values
        self.label_ranges = label_ranges

    def fit(self, preds: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
            sample_weight: Mapping[str, np.ndarray] | None = None) -> AspectCalibrator:
        """Fit one map per aspect present in both `preds` and `labels`; NaN labels/predictions are dropped.
        sample_weight: per aspect, a positive weight per prediction (same shape; default 1 each)."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        weights = sample_weight or {}
        self.fitted_ = {aspect: self._fit_aspect(aspect, preds[aspect], labels[aspect], weights.get(aspect))
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
        return {"params": {"method": self.method,
                           "min_points": self.min_points,
                           "discrete_values": _listify(self.discrete_values),
                           "label_ranges": _listify(self.label_ranges)},
                "fitted": self._require_fitted()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AspectCalibrator:
        params = dict(data["params"])
        params.setdefault("method", "isotonic")  # saved before the smooth method existed
        for key in ("discrete_values", "label_ranges"):
            if params[key] is not None:
                params[key] = {aspect: tuple(v) for aspect, v in params[key].items()}
        calibrator = cls(**params)
        calibrator.fitted_ = {aspect: dict(info) for aspect, info in data["fitted"].items()}
        return calibrator

    def _fit_aspect(self, aspect: str, pred: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None
                    ) -> dict[str, Any]:
        low, high = self._label_range(aspect)
        weight = np.ones(np.size(pred)) if weight is None else np.asarray(weight, dtype=np.float64).ravel()
        if weight.shape != (np.size(pred),) or (weight <= 0).any():
            raise ValueError(f"{aspect}: sample_weight needs one positive weight per prediction")
        keep = finite_pairs(pred, label)  # the pairs metrics.paired_finite keeps, with their weights
        x, y, w = (np.asarray(v, dtype=np.float64).ravel()[keep] for v in (pred, label, weight))
        info: dict[str, Any] = {"low": low, "high": high, "n": int(x.size)}
        if x.size < self.min_points:
            return {**info, "method": "identity", "reason": f"only {x.size} points (< {self.min_points})"}
        if np.ptp(y) == 0.0:
            return {**info, "method": "identity", "reason": "constant labels"}
        isotonic = IsotonicRegression(y_min=low, y_max=high, increasing=True, out_of_bounds="clip").fit(x, y, w)
        if self.method == "isotonic":
            return {**info, "method": "isotonic", "reason": None,
                    "x_thresholds": [float(v) for v in isotonic.X_thresholds_],
                    "y_thresholds": [float(v) for v in isotonic.y_thresholds_]}
        x_knots, y_knots = isotonic_block_centres(isotonic, x, weight=w)
        if x_knots.size < 2:
            return {**info, "method": "identity", "reason": "the isotonic fit is constant (one block)"}
        return {**info, "method": "pchip", "reason": None, "extrapolation": "linear",
                "x_knots": [float(v) for v in x_knots], "y_knots": [float(v) for v in y_knots]}

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


def isotonic_block_centres(isotonic: IsotonicRegression, x: np.ndarray, tolerance: float = 1e-6,
                           weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the smooth map: per block of a fitted isotonic regression (consecutive points, in order of the
    raw prediction, that share one fitted value) the (weighted) mean raw prediction of its points and the
    block's value.

    Both come out strictly increasing: tied predictions always share a block (the isotonic fit pools them), and
    neighbouring blocks whose values differ by at most `tolerance` times the label range are merged (their
    value: the mean over their points), e.g. two blocks clipped to a label bound, or 0.4000000015 and
    0.4000000060 from float32 labels, which would otherwise leave a knot pair with a near-zero slope: a
    plateau in all but name.
    """
    order = np.argsort(x, kind="stable")
    xs = np.asarray(x, dtype=np.float64)[order]
    ws = np.ones(xs.size) if weight is None else np.asarray(weight, dtype=np.float64)[order]
    fitted = isotonic.predict(xs).astype(np.float64)
    eps = tolerance * (isotonic.y_max - isotonic.y_min if isotonic.y_max is not None and isotonic.y_min is not None
                       else np.ptp(fitted))
    starts, anchor = [0], fitted[0]
    for i in np.flatnonzero(np.diff(fitted) != 0) + 1:  # block boundaries of the isotonic fit
        if fitted[i] - anchor > eps:
            starts.append(int(i))
            anchor = fitted[i]
    starts = np.asarray(starts)
    mass = np.add.reduceat(ws, starts)
    single = np.maximum.reduceat(fitted, starts) == fitted[starts]  # not merged: the block's value as it is
    merged = np.add.reduceat(ws * fitted, starts) / mass
    return np.add.reduceat(ws * xs, starts) / mass, np.where(single, fitted[starts], merged)


def _pchip_map(x_knots: Sequence[float], y_knots: Sequence[float], values: np.ndarray) -> np.ndarray:
    """PCHIP through the knots; beyond the end knots, straight lines with the end segments' slopes."""
    xk, yk = np.asarray(x_knots, dtype=np.float64), np.asarray(y_knots, dtype=np.float64)
    inside = PchipInterpolator(xk, yk, extrapolate=False)(values)
    slope_low = (yk[1] - yk[0]) / (xk[1] - xk[0])
    slope_high = (yk[-1] - yk[-2]) / (xk[-1] - xk[-2])
    below = yk[0] + slope_low * (values - xk[0])
    above = yk[-1] + slope_high * (values - xk[-1])
    return np.where(values < xk[0], below, np.where(values > xk[-1], above, inside))


def _apply_map(info: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    """Evaluate a fitted map (isotonic: piecewise-linear between breakpoints, flat outside; pchip: smooth and
    strictly increasing, linear beyond the end knots), clipped to the label range."""
    values = np.asarray(values, dtype=np.float64)
    if info["method"] == "isotonic":
        mapped = np.interp(values, info["x_thresholds"], info["y_thresholds"])
    elif info["method"] == "pchip":
        with np.errstate(invalid="ignore"):
            mapped = _pchip_map(info["x_knots"], info["y_knots"], values)
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
