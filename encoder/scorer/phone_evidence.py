"""Phone scores that also hear the phone recogniser's segmentation-free evidence.

The network scores each phone from features pooled over its aligned segment, so a phone the aligner places a
little off, or one whose segment a neighbour's sound leaks into, is judged on the wrong frames. The
segmentation-free gains (encoder.phone_gains.phone_edit_gains: how much likelier the text's phones become under
hama's CTC recogniser when the phone is read as another phone, or left out) need no phone boundary. On held-out
readings they carry what the network misses mostly among the phones it already doubts: the gains' weight grows as
the network's score falls (docs/scorer.md, "Segmentation-free phone evidence").

`PhoneEvidenceFusion` is a ridge regression (scikit-learn) over the calibrated network phone score s, the
substitution gain g_s and deletion gain g_d (nats, clipped to +-GAIN_LIMIT) and their products with s:
[s, g_s, g_d, s*g_s, s*g_d] -> the phone score, clipped to 0-2. It is fitted on readings the network never trained
on (the shipped model: the 12 dev speakers) by `recipes/local/phone_evidence.py`, and stored as plain numbers in
`phone_evidence.json` in a model directory (no pickle). A directory without the file scores as before.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import RidgeCV

FILE = "phone_evidence.json"
FEATURES = ("score", "substitute_gain", "delete_gain", "score_x_substitute_gain", "score_x_delete_gain")
GAIN_LIMIT = 30.0  # nats
SCORE_RANGE = (0.0, 2.0)
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)


class PhoneEvidenceError(ValueError):
    """A phone_evidence.json that this version cannot use; the message names the file and the fault."""


def design_matrix(scores, substitute, delete) -> np.ndarray:
    """(n, 5) FEATURES from per-phone calibrated scores (0-2) and gains (nats), each (n,). Raises ValueError when
    the lengths differ."""
    s, g_s, g_d = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (scores, substitute, delete))
    if not len(s) == len(g_s) == len(g_d):
        raise ValueError(f"scores, substitute and delete differ in length: {len(s)}, {len(g_s)}, {len(g_d)}")
    g_s, g_d = np.clip(g_s, -GAIN_LIMIT, GAIN_LIMIT), np.clip(g_d, -GAIN_LIMIT, GAIN_LIMIT)
    return np.stack([s, g_s, g_d, s * g_s, s * g_d], axis=1)


class PhoneEvidenceFusion(RegressorMixin, BaseEstimator):
    """fit(X, y) / predict(X) on `design_matrix` rows; y: human phone scores 0-2.

    Parameters
    ----------
    alphas : ridge penalties tried by RidgeCV's efficient leave-one-out on the training rows.
    """

    def __init__(self, alphas: tuple[float, ...] = ALPHAS) -> None:
        self.alphas = alphas

    def fit(self, X, y, sample_weight=None) -> "PhoneEvidenceFusion":
        """sample_weight (n,), optional: e.g. a smaller weight for text-side substitution rows than for real ones."""
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(FEATURES):
            raise ValueError(f"X must be (n, {len(FEATURES)}) design_matrix rows, not {X.shape}")
        ridge = RidgeCV(alphas=self.alphas).fit(X, y, sample_weight=sample_weight)
        self.coef_, self.intercept_, self.alpha_ = ridge.coef_, float(ridge.intercept_), float(ridge.alpha_)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        """(n,) phone scores 0-2."""
        X = np.asarray(X, dtype=np.float64).reshape(-1, len(FEATURES))
        return np.clip(X @ self.coef_ + self.intercept_, *SCORE_RANGE)

    def rescore(self, scores, substitute, delete) -> np.ndarray:
        """The fused phone scores (n,) 0-2 for calibrated scores and gains (see design_matrix)."""
        return self.predict(design_matrix(scores, substitute, delete))

    def to_dict(self) -> dict:
        return {"features": list(FEATURES), "coef": [float(c) for c in self.coef_], "intercept": self.intercept_,
                "alpha": self.alpha_, "alphas": list(self.alphas)}

    @classmethod
    def from_dict(cls, raw: dict) -> "PhoneEvidenceFusion":
        fusion = cls(tuple(raw.get("alphas", ALPHAS)))
        fusion.coef_, fusion.intercept_ = np.asarray(raw["coef"], dtype=np.float64), float(raw["intercept"])
        fusion.alpha_, fusion.n_features_in_ = float(raw.get("alpha", 0.0)), len(FEATURES)
        return fusion

    def save(self, directory: str | Path, report: dict | None = None) -> Path:
        """Writes `phone_evidence.json` (with `report`, e.g. how it was fitted and measured) into directory."""
        path = Path(directory) / FILE
        path.write_text(json.dumps({**self.to_dict(), "report": report or {}}, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "PhoneEvidenceFusion | None":
        """The fusion of a model directory; None when it has no phone_evidence.json. PhoneEvidenceError when the
        file is unreadable or was written for other features."""
        path = Path(directory) / FILE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text())
            if not isinstance(raw, dict):
                raise TypeError(f"a JSON object was expected, not {type(raw).__name__}")
            fusion = cls.from_dict(raw)
        except (ValueError, KeyError, TypeError) as err:
            raise PhoneEvidenceError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
        if tuple(raw.get("features", ())) != FEATURES or fusion.coef_.shape != (len(FEATURES),):
            raise PhoneEvidenceError(f"{path}: features {raw.get('features')} differ from this version's {FEATURES}")
        return fusion
