"""Synthetic checks of the scorer utilities: Lasso feature selection, isotonic calibration, metrics."""
from __future__ import annotations

import json

import numpy as np
import pytest

from orthoepy.encoder.scorer.calibration import AspectCalibrator
from orthoepy.encoder.scorer.handcrafted import HandcraftedSelector
from orthoepy.encoder.scorer.metrics import (aspect_table, choose_threshold, mispronunciation_detection,
                                             regression_metrics)

INFORMATIVE = [3, 50, 100, 150, 299]


def json_roundtrip(data: dict) -> dict:
    return json.loads(json.dumps(data))


# --- HandcraftedSelector -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pool_data() -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    scales = rng.uniform(1, 100, size=300)
    scales[INFORMATIVE] = 0.1  # informative columns on a small scale: selection must standardise first
    X = rng.normal(size=(400, 300)) * scales
    X[:, 7] = 4.0  # a constant column must never be selected
    signal = (X[:, INFORMATIVE] / X[:, INFORMATIVE].std(axis=0)) @ np.array([1.0, 0.9, 0.8, 0.7, 0.6])
    Y = np.stack([signal + rng.normal(scale=0.5, size=400) for _ in range(5)], axis=1)
    Y[rng.random(Y.shape) < 0.2] = np.nan  # absent labels are dropped per target
    names = [f"f{i}" for i in range(300)]
    return X, Y, names


def test_selector_finds_the_informative_columns(pool_data):
    X, Y, names = pool_data
    selector = HandcraftedSelector(n_features=5).fit(X, Y, names)
    assert selector.selected_indices_.tolist() == INFORMATIVE
    assert selector.selected_names_ == [f"f{i}" for i in INFORMATIVE]


def test_selector_transform_shape_standardised_and_skips_constant(pool_data):
    X, Y, names = pool_data
    selector = HandcraftedSelector(n_features=112).fit(X, Y, names)
    Z = selector.transform(X, names)
    assert Z.shape == (400, 112) and Z.dtype == np.float32
    assert 7 not in selector.selected_indices_
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-4)


def test_selector_is_deterministic(pool_data):
    X, Y, names = pool_data
    first = HandcraftedSelector(n_features=40).fit(X, Y, names)
    second = HandcraftedSelector(n_features=40).fit(X, Y, names)
    assert first.selected_indices_.tolist() == second.selected_indices_.tolist()


def test_selector_json_roundtrip_gives_identical_output(pool_data):
    X, Y, names = pool_data
    selector = HandcraftedSelector(n_features=30).fit(X, Y, names)
    loaded = HandcraftedSelector.from_dict(json_roundtrip(selector.to_dict()))
    assert loaded.selected_names_ == selector.selected_names_
    assert loaded.get_params() == selector.get_params()
    np.testing.assert_array_equal(loaded.transform(X), selector.transform(X))


def test_selector_rejects_wrong_width_and_names(pool_data):
    X, Y, names = pool_data
    selector = HandcraftedSelector(n_features=5).fit(X, Y, names)
    with pytest.raises(ValueError, match="300"):
        selector.transform(X[:, :299])
    renamed = list(names)
    renamed[10] = "other"
    with pytest.raises(ValueError, match="names differ"):
        selector.transform(X, renamed)
    with pytest.raises(ValueError, match="targets"):
        HandcraftedSelector().fit(X, Y[:, :3], names)


# --- AspectCalibrator ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def miscalibrated() -> tuple[dict, dict]:
    rng = np.random.default_rng(1)
    label = rng.integers(0, 11, size=500).astype(float)
    stress = rng.choice([5.0, 10.0], size=500, p=[0.2, 0.8])
    phone = rng.uniform(0, 2, size=500)
    preds = {"sentence_total": 0.5 * label + 3 + rng.normal(scale=0.5, size=500),
             "word_stress": 0.3 * stress + 4 + rng.normal(scale=0.5, size=500),
             "phone": 0.5 * phone + 0.7 + rng.normal(scale=0.1, size=500)}
    labels = {"sentence_total": label, "word_stress": stress, "phone": phone}
    return preds, labels


def test_calibration_is_monotone_and_within_range(miscalibrated):
    preds, labels = miscalibrated
    calibrator = AspectCalibrator().fit(preds, labels)
    grid = {aspect: np.linspace(-20, 20, 2001) for aspect in preds}
    out = calibrator.transform(grid)
    for aspect, values in out.items():
        low, high = (0, 2) if aspect == "phone" else (0, 10)
        assert np.all(np.diff(values) >= 0), aspect
        assert values.min() >= low and values.max() <= high, aspect
    assert calibrator.fitted_["sentence_total"]["method"] == "isotonic"


def test_calibration_improves_mse(miscalibrated):
    preds, labels = miscalibrated
    calibrator = AspectCalibrator().fit(preds, labels)
    calibrated = calibrator.transform(preds)
    for aspect in ("sentence_total", "phone"):
        before = regression_metrics(preds[aspect], labels[aspect])["mse"]
        after = regression_metrics(calibrated[aspect], labels[aspect])["mse"]
        assert after < 0.5 * before, aspect


def test_calibration_json_roundtrip_identical(miscalibrated):
    preds, labels = miscalibrated
    calibrator = AspectCalibrator().fit(preds, labels)
    loaded = AspectCalibrator.from_dict(json_roundtrip(calibrator.to_dict()))
    for snap in (False, True):
        for aspect, values in calibrator.transform(preds, snap=snap).items():
            np.testing.assert_array_equal(loaded.transform(preds, snap=snap)[aspect], values)


def test_stress_snapping_only_gives_allowed_values(miscalibrated):
    preds, labels = miscalibrated
    calibrator = AspectCalibrator().fit(preds, labels)
    continuous = calibrator.transform(preds)["word_stress"]
    snapped = calibrator.transform(preds, snap=True)
    assert set(np.unique(snapped["word_stress"])) <= {5.0, 10.0}
    assert len(np.unique(continuous)) > 2  # the continuous scores stay available
    np.testing.assert_array_equal(snapped["sentence_total"], calibrator.transform(preds)["sentence_total"])


def test_calibration_falls_back_to_clipped_identity():
    preds = {"sentence_fluency": np.array([1.0, 5.0, 12.0, np.nan]), "phone": np.linspace(-1, 3, 20)}
    labels = {"sentence_fluency": np.array([2.0, 4.0, 9.0, 3.0]), "phone": np.full(20, 2.0)}
    calibrator = AspectCalibrator().fit(preds, labels)
    assert calibrator.fitted_["sentence_fluency"]["method"] == "identity"
    assert calibrator.fitted_["sentence_fluency"]["n"] == 3
    assert "constant" in calibrator.fitted_["phone"]["reason"]
    out = calibrator.transform({"sentence_fluency": np.array([-1.0, 5.0, 12.0, np.nan])})
    np.testing.assert_array_equal(out["sentence_fluency"], [0.0, 5.0, 10.0, np.nan])
    with pytest.raises(ValueError, match="word_total"):
        calibrator.transform({"word_total": np.zeros(3)})


# --- metrics -------------------------------------------------------------------------------------------------

def test_correlations_on_hand_made_cases():
    x = np.arange(1.0, 8.0)
    perfect = regression_metrics(x, x)
    assert perfect["pcc"] == pytest.approx(1) and perfect["scc"] == pytest.approx(1) and perfect["mse"] == 0
    reversed_ = regression_metrics(x, -x)
    assert reversed_["pcc"] == pytest.approx(-1) and reversed_["scc"] == pytest.approx(-1)
    monotone = regression_metrics(x, np.exp(x))
    assert monotone["scc"] == pytest.approx(1) and monotone["pcc"] < 0.95


def test_regression_metrics_drop_nan_labels_and_undefined_is_none():
    pred = np.array([1.0, 2.0, 3.0, 100.0, 4.0])
    label = np.array([1.0, 2.0, 3.0, np.nan, 4.0])
    result = regression_metrics(pred, label)
    assert result["n"] == 4 and result["mse"] == 0 and result["pcc"] == pytest.approx(1)
    constant = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0]))
    assert constant["pcc"] is None and constant["scc"] is None and constant["mse"] is not None
    too_few = regression_metrics(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    assert too_few["pcc"] is None and too_few["n"] == 2


def test_mispronunciation_detection_hand_computed():
    # label < 0.5 is mispronounced: positives are indices 0 (0.0), 1 (0.4), 5 (0.2); index 6 is absent; 0.6 is not.
    labels = np.array([0.0, 0.4, 2.0, 0.6, 2.0, 0.2, np.nan])
    scores = np.array([0.1, 1.5, 0.3, 1.9, 1.0, 0.6, 0.0])
    # flagged (score < 0.8): indices 0, 2, 5 -> TP = 0, 5; FP = 2; FN = 1
    result = mispronunciation_detection(scores, labels, threshold=0.8)
    assert result["n_positive"] == 3
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(2 / 3)
    assert result["threshold"] == 0.8


def test_choose_threshold_separates_separable_data():
    labels = np.array([0.0, 0.2, 0.4, 1.8, 2.0, 2.0, 1.6])
    scores = np.array([0.1, 0.3, 0.5, 1.4, 1.9, 1.7, 1.2])
    threshold = choose_threshold(scores, labels)
    assert 0.5 < threshold <= 1.2
    assert mispronunciation_detection(scores, labels, threshold)["f1"] == pytest.approx(1)
    with pytest.raises(ValueError):
        choose_threshold(scores, np.full(7, 2.0))


def test_aspect_table_skips_absent_labels():
    x = np.linspace(0, 10, 6)
    preds = {"phone": np.linspace(0, 2, 6), "word_stress": x, "sentence_total": x}
    labels = {"phone": np.array([0.0, 0.2, 1.0, 1.5, 2.0, 2.0]), "word_stress": np.full(6, np.nan),
              "sentence_total": x}
    table = aspect_table(preds, labels, mdd_threshold=0.5)
    assert list(table) == ["phone", "sentence_total", "phone_mdd"]
    assert table["sentence_total"]["pcc"] == pytest.approx(1)
    renamed = aspect_table({"phone_accuracy": preds["phone"]}, {"phone_accuracy": labels["phone"]}, 0.5)
    assert renamed["phone_mdd"] == table["phone_mdd"]
