"""Speaker folds (encoder/folds.py) and the scorer's cross-validation (encoder/scorer/crossval.py)."""
from dataclasses import replace

import numpy as np
import pytest
from test_scorer import synthetic_example, tiny_config

from orthoepy.encoder.folds import fold_of_speaker, speaker_folds
from orthoepy.encoder.scorer.crossval import (
    FitOptions, FoldResult, fit_model, oof_predictions, retrain_epochs, run_fold, split_fold)
from orthoepy.encoder.scorer.model import HierarchicalScorer
from orthoepy.encoder.scorer.train import EpochRecord, predict


def test_folds_are_speaker_disjoint_deterministic_and_cover():
    speakers = {f"u{i}": f"s{(i * 7) % 11}" for i in range(60)}
    folds = speaker_folds(speakers, 5)
    assert folds == speaker_folds(dict(reversed(list(speakers.items()))), 5)  # order of the input is irrelevant
    assert sorted(u for f in folds for u in f.held_out_ids) == sorted(speakers)
    for f in folds:
        assert not {speakers[u] for u in f.fit_ids} & {speakers[u] for u in f.held_out_ids}
        assert sorted(f.fit_ids + f.held_out_ids) == sorted(speakers)
    sizes = np.bincount(list(fold_of_speaker(speakers.values(), 5).values()))
    assert sizes.max() - sizes.min() <= 1
    with pytest.raises(ValueError, match="cannot fill"):
        speaker_folds({"a": "s1"}, 2)


@pytest.fixture
def examples():
    rng = np.random.default_rng(0)
    train = [synthetic_example(rng, 3, f"u{i}") for i in range(12)]
    augmented = [replace(e, utt_id=f"{e.utt_id}~substitution") for e in train[:6]]
    augmented.append(synthetic_example(rng, 2, "nonspeech0~noise"))
    speakers = {f"u{i}": f"s{i % 4}" for i in range(12)}
    speakers.update({f"u{i}~substitution": f"s{i % 4}" for i in range(6)})
    speakers["nonspeech0~noise"] = "nonspeech"
    return train, augmented, speakers


def test_fold_split_holds_out_a_speakers_recordings_also_when_augmented(examples):
    train, augmented, speakers = examples
    held_all = []
    for k in range(2):
        fit_set, held = split_fold(k, train, augmented, speakers, 2)
        held_speakers = {speakers[e.utt_id] for e in held}
        assert not held_speakers & {speakers[e.utt_id] for e in fit_set}
        assert all("~" not in e.utt_id for e in held)  # only real utterances are scored
        assert "nonspeech0~noise" in {e.utt_id for e in fit_set}  # no speaker: trains in every fold
        held_all += [e.utt_id for e in held]
    assert sorted(held_all) == sorted(e.utt_id for e in train)


def _options(**overrides):
    base = dict(mtp=True, mtp_epochs=2, epochs=3, patience=5, seed=0, batch_size=4, lr=1e-3, threads=1, progress=False)
    return FitOptions(**{**base, **overrides})


def test_without_held_out_training_stops_after_the_given_epochs(examples):
    train, _, _ = examples
    model, history, mtp_history = fit_model(train, [], tiny_config(), _options(epochs=6), stop_after=(1, 2))
    assert [r.epoch for r in history] == [1, 2] and [r.epoch for r in mtp_history] == [1]
    assert all(np.isnan(r.dev_loss) for r in history)


def test_fold_results_round_trip_and_give_each_utterance_one_oof_prediction(examples, tmp_path):
    train, augmented, speakers = examples
    results = [run_fold(k, train, augmented, speakers, 2, tiny_config(), _options()) for k in range(2)]
    results[0].save(tmp_path / "fold0")
    loaded = FoldResult.load(tmp_path / "fold0")
    assert loaded.best_epoch == results[0].best_epoch and loaded.n_fit == results[0].n_fit
    np.testing.assert_allclose(loaded.predictions[0].word, results[0].predictions[0].word, rtol=1e-6)
    fold_model = HierarchicalScorer.from_pretrained(tmp_path / "fold0")  # kept for fold ensembles
    held_out = [e for e in train if e.utt_id == results[0].predictions[0].utt_id]
    np.testing.assert_allclose(predict(fold_model, held_out)[0].word, results[0].predictions[0].word, rtol=1e-5)
    order = [e.utt_id for e in train]
    oof = oof_predictions([loaded, results[1]], order)
    assert [p.utt_id for p in oof] == order
    with pytest.raises(ValueError, match="no out-of-fold"):
        oof_predictions(results[:1], order)


def test_retrain_epochs_is_the_median_best_epoch():
    def history(best):
        return [EpochRecord(e, 0.0, 0.0, {}, -abs(e - best)) for e in range(1, 9)]
    results = [FoldResult(k, 1, [], history(b), history(m)) for k, (b, m) in enumerate([(3, 2), (5, 4), (8, 4)])]
    assert retrain_epochs(results) == (4, 5)
    assert retrain_epochs([FoldResult(0, 1, [], history(6))]) == (None, 6)


def test_calibration_with_augmented_items_reaches_the_bottom_of_the_scale():
    """Real utterances rarely score low, so maps fitted on them alone lift low raw outputs; the augmented items'
    targets (0 for a replaced phone) let the maps keep them low, while the report stays on the real ones."""
    from orthoepy.encoder.scorer.pipeline import fit_calibration

    rng = np.random.default_rng(0)
    raw_real = rng.uniform(0.8, 2.0, 400)
    labels_real = np.clip(raw_real + rng.normal(0, 0.2, 400), 0, 2).round(1)
    raw_real[:20], labels_real[:20] = rng.uniform(0.0, 0.5, 20), 1.2  # a few low outputs on phones scored ~1
    raw_aug = rng.uniform(0.0, 0.5, 200)
    real, aug = ({"phone": raw_real}, {"phone": labels_real}), ({"phone": raw_aug}, {"phone": np.zeros(200)})
    alone, _, report_alone = fit_calibration(*real)
    joined, _, report_joined = fit_calibration(*real, extra=aug)
    low = {"phone": np.array([0.2])}
    assert joined.transform(low)["phone"][0] < 0.5 < alone.transform(low)["phone"][0]
    assert report_joined["raw"]["phone"] == report_alone["raw"]["phone"]  # the report is on the real utterances
