"""Synthetic checks of the scorer utilities: Lasso feature selection, calibration (pchip, isotonic), metrics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sklearn.isotonic import IsotonicRegression

from orthoepy.encoder.scorer.calibration import METHODS, AspectCalibrator, isotonic_block_centres
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


@pytest.mark.parametrize("method", METHODS)
def test_calibration_is_monotone_and_within_range(miscalibrated, method):
    preds, labels = miscalibrated
    calibrator = AspectCalibrator(method=method).fit(preds, labels)
    grid = {aspect: np.linspace(-20, 20, 2001) for aspect in preds}
    out = calibrator.transform(grid)
    for aspect, values in out.items():
        low, high = (0, 2) if aspect == "phone" else (0, 10)
        assert np.all(np.diff(values) >= 0), aspect
        assert values.min() >= low and values.max() <= high, aspect
    assert calibrator.fitted_["sentence_total"]["method"] == method


def test_default_calibration_is_pchip():
    assert AspectCalibrator().method == "pchip"
    with pytest.raises(ValueError, match="method"):
        AspectCalibrator(method="spline").fit({"phone": np.arange(20.0)}, {"phone": np.arange(20.0) / 10})


def test_pchip_is_strictly_increasing_without_plateaus(miscalibrated):
    """Every distinct input whose score lies inside the label range gets its own, larger score."""
    preds, labels = miscalibrated
    calibrator = AspectCalibrator(method="pchip").fit(preds, labels)
    grid = np.linspace(-20, 20, 40001)
    for aspect, values in calibrator.transform({a: grid for a in preds}).items():
        low, high = (0, 2) if aspect == "phone" else (0, 10)
        inside = (values > low) & (values < high)
        assert inside.sum() > 1000, aspect  # the grid crosses the whole label range
        assert np.all(np.diff(values[inside]) > 0), aspect
        # where the isotonic steps are flat, the smooth map still separates the inputs
        steps = AspectCalibrator(method="isotonic").fit(preds, labels).transform({aspect: grid})[aspect]
        assert np.unique(values[inside]).size == inside.sum() > np.unique(steps).size, aspect
    # the inputs themselves: as many distinct scores as distinct predictions (none at a bound here)
    total = calibrator.transform(preds)["sentence_total"]
    assert np.unique(total).size == np.unique(preds["sentence_total"]).size


def test_pchip_knots_are_isotonic_block_centres():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    y = np.array([1.0, 3.0, 2.0, 4.0, 4.0, 6.0, 5.0, 9.0])  # blocks: {0}, {1, 2}, {3, 4}, {5, 6}, {7}
    isotonic = IsotonicRegression(y_min=0, y_max=10, out_of_bounds="clip").fit(x, y)
    x_knots, y_knots = isotonic_block_centres(isotonic, x)
    np.testing.assert_allclose(x_knots, [0.0, 1.5, 3.5, 5.5, 7.0])
    np.testing.assert_allclose(y_knots, [1.0, 2.5, 4.0, 5.5, 9.0])
    calibrator = AspectCalibrator(method="pchip", min_points=2).fit({"sentence_total": x}, {"sentence_total": y})
    info = calibrator.fitted_["sentence_total"]
    assert info["x_knots"] == list(x_knots) and info["y_knots"] == list(y_knots)
    out = calibrator.transform({"sentence_total": np.array([0.0, 1.5, 7.0, -1.0, 7.3, -10.0, 30.0])})["sentence_total"]
    # through the knots; beyond them the end segments' slopes (1.5/1.5 = 1 and 3.5/1.5), clipped to 0-10
    np.testing.assert_allclose(out, [1.0, 2.5, 9.0, 0.0, 9.0 + 0.3 * 3.5 / 1.5, 0.0, 10.0])


def test_pchip_merges_blocks_that_differ_by_float_noise():
    """Labels stored as float32 average to 0.4000000015 and 0.4000000060: one knot, not a near-flat pair."""
    x = np.linspace(0, 1, 12)
    y = np.array([0.4000000015, 0.4000000015, 0.4000000060, 0.4000000060, 1, 1, 1.5, 1.5, 1.8, 1.8, 2, 2])
    calibrator = AspectCalibrator(method="pchip").fit({"phone": x}, {"phone": y})
    info = calibrator.fitted_["phone"]
    assert len(info["x_knots"]) == 5
    assert np.min(np.diff(info["y_knots"]) / np.diff(info["x_knots"])) > 0.5


def test_pchip_falls_back_to_identity_when_the_isotonic_fit_is_flat():
    x = np.linspace(0, 10, 30)
    calibrator = AspectCalibrator(method="pchip").fit({"sentence_total": x}, {"sentence_total": 10 - x})  # one block
    info = calibrator.fitted_["sentence_total"]
    assert info["method"] == "identity" and "constant" in info["reason"]
    np.testing.assert_array_equal(calibrator.transform({"sentence_total": np.array([-1.0, 5.0, 12.0])})["sentence_total"],
                                  [0.0, 5.0, 10.0])


@pytest.mark.parametrize("method", METHODS)
def test_calibration_improves_mse(miscalibrated, method):
    preds, labels = miscalibrated
    calibrator = AspectCalibrator(method=method).fit(preds, labels)
    calibrated = calibrator.transform(preds)
    for aspect in ("sentence_total", "phone"):
        before = regression_metrics(preds[aspect], labels[aspect])["mse"]
        after = regression_metrics(calibrated[aspect], labels[aspect])["mse"]
        assert after < 0.5 * before, aspect


@pytest.mark.parametrize("method", METHODS)
def test_calibration_json_roundtrip_identical(miscalibrated, method):
    preds, labels = miscalibrated
    calibrator = AspectCalibrator(method=method).fit(preds, labels)
    loaded = AspectCalibrator.from_dict(json_roundtrip(calibrator.to_dict()))
    assert loaded.method == method and loaded.fitted_ == calibrator.fitted_
    grid = {aspect: np.linspace(-20, 20, 4001) for aspect in preds}
    for inputs in (preds, grid):
        for snap in (False, True):
            for aspect, values in calibrator.transform(inputs, snap=snap).items():
                np.testing.assert_array_equal(loaded.transform(inputs, snap=snap)[aspect], values)


# A calibration.json as written before the pchip method: no "method" among the params, isotonic breakpoints.
OLD_ISOTONIC_JSON = """{"params": {"min_points": 10, "discrete_values": null, "label_ranges": null}, "fitted": {
 "sentence_total": {"low": 0.0, "high": 10.0, "n": 240, "method": "isotonic", "reason": null,
  "x_thresholds": [2.3103525638580322, 3.5, 3.6, 6.49, 8.11, 9.354166030883789],
  "y_thresholds": [2.0, 2.0, 5.25, 7.38, 7.38, 9.4]},
 "word_stress": {"low": 0.0, "high": 10.0, "n": 1428, "method": "isotonic", "reason": null,
  "x_thresholds": [2.68, 9.0, 9.1, 9.97], "y_thresholds": [8.5, 8.5, 9.8, 10.0]},
 "sentence_completeness": {"low": 0.0, "high": 10.0, "n": 3, "method": "identity", "reason": "only 3 points (< 10)"}}}"""


def test_old_isotonic_json_loads_and_behaves_as_before():
    loaded = AspectCalibrator.from_dict(json.loads(OLD_ISOTONIC_JSON))
    assert loaded.method == "isotonic"
    grid = np.r_[np.linspace(-5, 15, 2001), np.nan]
    out = loaded.transform({a: grid for a in ("sentence_total", "word_stress", "sentence_completeness")})
    for aspect in ("sentence_total", "word_stress"):
        info = loaded.fitted_[aspect]
        before = np.clip(np.interp(grid, info["x_thresholds"], info["y_thresholds"]), 0.0, 10.0)  # the old formula
        np.testing.assert_array_equal(out[aspect][:-1], before[:-1])
        assert np.isnan(out[aspect][-1])
    np.testing.assert_array_equal(out["sentence_completeness"][:-1], np.clip(grid[:-1], 0, 10))
    between = (grid >= 6.49) & (grid <= 8.11)
    assert np.all(out["sentence_total"][between] == 7.38)  # the plateau the pchip method removes
    assert set(np.unique(loaded.transform({"word_stress": grid[:-1]}, snap=True)["word_stress"])) <= {5.0, 10.0}
    # and it is written back unchanged but for the method now named among the params
    again = loaded.to_dict()
    assert again["params"]["method"] == "isotonic" and again["fitted"] == json.loads(OLD_ISOTONIC_JSON)["fitted"]


def test_isotonic_method_matches_scikit_learn(miscalibrated):
    """The isotonic method is the fit the shipped models had: scikit-learn's, clipped out of bounds."""
    preds, labels = miscalibrated
    calibrator = AspectCalibrator(method="isotonic").fit(preds, labels)
    grid = np.linspace(-20, 20, 4001)
    reference = IsotonicRegression(y_min=0, y_max=10, out_of_bounds="clip").fit(preds["sentence_total"], labels["sentence_total"])
    np.testing.assert_allclose(calibrator.transform({"sentence_total": grid})["sentence_total"], reference.predict(grid),
                               rtol=0, atol=1e-12)


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



SHIPPED_CALIBRATION = Path(__file__).resolve().parents[1] / "fusion" / "models" / "default" / "calibration.json"


@pytest.mark.parametrize("method", METHODS)
def test_unit_sample_weights_change_nothing_and_light_points_pull_less(miscalibrated, method):
    preds, labels = miscalibrated
    plain = AspectCalibrator(method=method).fit(preds, labels)
    ones = AspectCalibrator(method=method).fit(preds, labels, {a: np.ones(500) for a in preds})
    grid = {"sentence_total": np.linspace(0, 10, 101)}
    np.testing.assert_allclose(ones.transform(grid)["sentence_total"], plain.transform(grid)["sentence_total"])
    # 500 extra points at target 0 spread over the real outputs' range: at full weight they drag the map down,
    # at weight 0.01 it stays near the real-only map
    extra_x = np.random.default_rng(2).uniform(3, 8, 500)
    both = {"sentence_total": np.r_[preds["sentence_total"], extra_x]}
    zeros = {"sentence_total": np.r_[labels["sentence_total"], np.zeros(500)]}
    mid = {"sentence_total": np.array([5.5])}
    real_only = plain.transform(mid)["sentence_total"][0]
    heavy = AspectCalibrator(method=method).fit(both, zeros).transform(mid)["sentence_total"][0]
    light = AspectCalibrator(method=method).fit(both, zeros, {"sentence_total": np.r_[np.ones(500), np.full(500, 0.01)]}
                                                ).transform(mid)["sentence_total"][0]
    assert heavy < real_only - 1.0 and abs(light - real_only) < 0.3
    with pytest.raises(ValueError, match="positive weight"):
        AspectCalibrator(method=method).fit(preds, labels, {"phone": np.zeros(500)})


def test_shipped_calibration_has_no_plateaus():
    """The default model's maps (recipes/local/recalibrate.py): pchip, strictly increasing inside the label range;
    the raw totals 6.49-8.11 that its isotonic map sent to 7.38 now keep their order."""
    calibrator = AspectCalibrator.from_dict(json.loads(SHIPPED_CALIBRATION.read_text()))
    assert {info["method"] for info in calibrator.fitted_.values()} == {"pchip"}
    grid = np.linspace(-5, 15, 20001)
    for aspect, values in calibrator.transform({a: grid for a in calibrator.fitted_}).items():
        info = calibrator.fitted_[aspect]
        inside = (values > info["low"]) & (values < info["high"])
        assert np.all(np.diff(values[inside]) > 0), aspect
    totals = calibrator.transform({"sentence_total": np.linspace(6.49, 8.11, 163)})["sentence_total"]
    assert np.all(np.diff(totals) > 0) and np.unique(np.round(totals, 2)).size > 50

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


def test_augmented_points_below_the_real_support_weigh_fully():
    from orthoepy.encoder.scorer.pipeline import fit_calibration

    rng = np.random.default_rng(4)
    real = rng.uniform(3, 8, 400)
    phones = rng.uniform(0, 2, 400)  # the MDD threshold needs phones
    raw = {"sentence_total": real, "phone": phones}
    labels = {"sentence_total": real + rng.normal(0, 0.3, 400), "phone": np.round(phones)}
    inside, below = rng.uniform(4, 7, 300), rng.uniform(0, 1.5, 100)  # made-up items: errors heard and not heard
    extra = ({"sentence_total": np.r_[inside, below], "phone": np.zeros(400)},
             {"sentence_total": np.zeros(400), "phone": np.zeros(400)})
    calibrator = fit_calibration(raw, labels, extra=extra, extra_weight=0.01, support_quantile=0.02)[0]
    out = calibrator.transform({"sentence_total": np.array([0.5, 5.5])})["sentence_total"]
    assert out[0] < 1.0 and abs(out[1] - 5.5) < 0.5  # low end anchored by the items, middle by real readings
    flat = fit_calibration(raw, labels, extra=extra)[0].transform({"sentence_total": np.array([5.5])})["sentence_total"]
    assert flat[0] < 4.5  # with full weight everywhere the unheard items drag real readings down
    elsewhere = fit_calibration(raw, labels, extra=extra, extra_weight=0.01, support_quantile=0.02,
                                weighted_levels=("phone",))[0]  # the weighting applies to phone maps only
    assert elsewhere.transform({"sentence_total": np.array([5.5])})["sentence_total"][0] < 4.5
