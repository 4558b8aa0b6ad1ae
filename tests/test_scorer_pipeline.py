"""The trained-scorer bundle end to end on the real fixture: train, save, load, score, evaluate."""
import json

import numpy as np
import pytest

from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.store import FeatureStore, extract_utterances
from orthoepy.encoder.scorer.evaluation import evaluate_split
from orthoepy.encoder.scorer.pipeline import ModelDirectoryError, Scorer, TrainingPlan, train_scorer
from orthoepy.fusion.cli import main

TINY_PLAN = TrainingPlan(mtp_epochs=1, epochs=2, n_handcrafted=12, progress=False, threads=1)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, fixture_dir):
    root = tmp_path_factory.mktemp("features")
    for split in ("train", "dev", "test"):
        extract_utterances(load_corpus(fixture_dir, split), root / split, nj=2, cache_dir=root / "cache", progress=False)
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, stores, fixture_dir):
    out = tmp_path_factory.mktemp("model")
    train_scorer(stores, fixture_dir, out, TINY_PLAN)
    return out


def test_training_writes_a_loadable_bundle(model_dir, stores):
    report = json.loads((model_dir / "training_report.json").read_text())
    assert report["n_train"] == 14 and report["n_dev"] == 2 and report["plan"]["mtp"]
    assert len(report["history"]) == 2 and len(report["mtp_history"]) == 1
    assert report["plan"]["calibration"] == report["dev"]["calibration"] == "pchip"  # the default: no plateaus
    scorer = Scorer.from_pretrained(model_dir)
    assert scorer.calibrator.method == "pchip"
    assert {info["method"] for info in scorer.calibrator.fitted_.values()} <= {"pchip", "identity"}
    assert len(scorer.utterance_columns) == 12
    features = dict(FeatureStore(stores / "test"))
    first, again = scorer.score(features), Scorer.from_pretrained(model_dir).score(features)
    for a, b in zip(first, again):
        np.testing.assert_allclose(a.phone, b.phone)
        assert a.sentence == b.sentence
    for s in first:
        assert np.all((s.phone >= 0) & (s.phone <= 2))
        assert all(0 <= v <= 10 for v in s.sentence.values())
        assert all(np.all((w >= 0) & (w <= 10)) for w in s.word.values())


def test_no_mtp_no_handcrafted(tmp_path, stores, fixture_dir):
    plan = TrainingPlan(mtp=False, handcrafted=False, epochs=1, progress=False, groups=("likelihood_gop", "prosody"))
    scorer = train_scorer(stores, fixture_dir, tmp_path, plan)
    assert scorer.utterance_columns == [] and scorer.groups == ("likelihood_gop", "prosody")
    assert not (tmp_path / "handcrafted.json").exists()
    assert Scorer.from_pretrained(tmp_path).model.config.n_utterance_features == 0


def test_evaluation_metrics_and_predictions_schema(model_dir, stores, fixture_dir):
    utterances = load_corpus(fixture_dir, "test")
    evaluation = evaluate_split(Scorer.from_pretrained(model_dir), FeatureStore(stores / "test"), utterances)
    table = evaluation.metrics["calibrated"]
    assert table["phone"]["n"] == sum(len(u.canonical_phones) for u in utterances)
    assert table["sentence_total"]["n"] == 16
    assert not any(a.startswith("word_") for a in table)  # the test split has no word labels
    assert set(evaluation.metrics["mdd"]) >= {"precision", "recall", "f1"}
    assert set(evaluation.predictions) == {u.utt_id for u in utterances}
    for utt in utterances:
        entry = evaluation.predictions[utt.utt_id]
        assert set(entry) >= {"accuracy", "completeness", "fluency", "prosodic", "total", "words"}
        assert [w["text"] for w in entry["words"]] == [w.text for w in utt.words]
        for word, label in zip(entry["words"], utt.words):
            assert len(word["phones-accuracy"]) == len(label.phones) and {"accuracy", "stress", "total"} <= set(word)
    json.dumps(evaluation.predictions)


def test_evaluate_command(tmp_path, model_dir, stores, fixture_dir, capsys):
    argv = ["evaluate", "--corpus", str(fixture_dir), "--split", "test", "--model", str(model_dir),
            "--features", str(stores / "test"), "--out", str(tmp_path / "m.json"), "--predictions", str(tmp_path / "p.json")]
    assert main(argv) == 0
    assert "sentence_total" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["n_utterances"] == 16
    assert len(json.loads((tmp_path / "p.json").read_text())) == 16


@pytest.mark.parametrize("damage", ["remove_scaler", "corrupt_calibration", "empty_dir"])
def test_broken_model_directory_is_a_clear_error(tmp_path, model_dir, damage, capsys):
    broken = tmp_path / "model"
    broken.mkdir()
    if damage != "empty_dir":
        for f in model_dir.iterdir():
            (broken / f.name).write_bytes(f.read_bytes())
    if damage == "remove_scaler":
        (broken / "scaler.npz").unlink()
    if damage == "corrupt_calibration":
        (broken / "calibration.json").write_text("{not json")
    with pytest.raises(ModelDirectoryError):
        Scorer.from_pretrained(broken)
    assert main(["evaluate", "--split", "test", "--model", str(broken), "--out", str(tmp_path / "m.json"),
                 "--corpus", str(model_dir)]) == 2


def test_onnx_parity_on_the_fixture(tmp_path, model_dir, stores, fixture_dir):
    from orthoepy.encoder.scorer.onnx_export import OnnxScorerModel, export_onnx, max_abs_difference

    scorer = Scorer.from_pretrained(model_dir, backend="torch")
    export_onnx(scorer.model, tmp_path / "scorer.onnx")
    examples = scorer.examples(dict(FeatureStore(stores / "test")))
    assert max_abs_difference(scorer.model, OnnxScorerModel(tmp_path / "scorer.onnx"), examples) <= 1e-4


def test_report_command(tmp_path, model_dir, stores, fixture_dir, capsys):
    metrics, preds = tmp_path / "m.json", tmp_path / "p.json"
    assert main(["evaluate", "--corpus", str(fixture_dir), "--split", "test", "--model", str(model_dir),
                 "--features", str(stores / "test"), "--out", str(metrics), "--predictions", str(preds)]) == 0
    assert main(["report", "--metrics", str(metrics), "--predictions", str(preds), "--out", str(tmp_path / "r.html"),
                 "--corpus", str(fixture_dir)]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "sentence_total" in page and page.count("<img") == 2 and "Predicted vs human" in page
    (tmp_path / "bad.json").write_text("{oops")
    assert main(["report", "--metrics", str(tmp_path / "bad.json"), "--predictions", str(preds),
                 "--out", str(tmp_path / "x.html")]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_bundle_records_the_frontend_configuration(model_dir, stores):
    from orthoepy.fusion.assessor import Assessor

    scorer = Scorer.from_pretrained(model_dir)
    assert scorer.frontend_config == FeatureStore(stores / "train").manifest["config"]
    assert Assessor(scorer, "tiny").frontend.config.key() == FeatureStore(stores / "train").manifest["config_key"]


def test_speaker_folds_with_augmented_items(tmp_path, stores, fixture_dir):
    from dataclasses import replace

    from orthoepy.encoder.scorer.augmentation import AugmentationPlan, TargetSlopes, augment, save_augmented

    train = load_corpus(fixture_dir, "train")
    items = augment(train, AugmentationPlan(omission=0.3, mismatch=0.3, nonspeech=2), TargetSlopes.fit(train),
                    tmp_path / "audio")
    save_augmented(items, tmp_path / "items.json")
    extract_utterances(items, tmp_path / "augmented", nj=2, cache_dir=stores / "cache", progress=False)
    plan = replace(TINY_PLAN, validation="folds", n_folds=3, augmented_items=str(tmp_path / "items.json"),
                   augmented_features=str(tmp_path / "augmented"))
    out = tmp_path / "model"
    assert train_scorer(stores, fixture_dir, out, replace(plan, only_fold=1)) is None  # one fold, as a parallel job
    fold1 = out / "folds" / "fold1" / "oof.json"
    written = fold1.stat().st_mtime_ns
    assert not (out / "scorer.json").exists()
    scorer = train_scorer(stores, fixture_dir, out, plan)
    assert fold1.stat().st_mtime_ns == written  # the finished fold is loaded, not trained again
    report = json.loads((out / "training_report.json").read_text())
    assert report["n_augmented"] == len(items) and report["n_train"] == len(train)
    assert [f["fold"] for f in report["folds"]] == [0, 1, 2]
    assert len(report["history"]) == report["retrain_epochs"]["fit"] <= TINY_PLAN.epochs
    assert report["cv"]["calibration"] == "pchip" and "calibrated" in report["dev"]
    listening = report["cv_listening"]  # every augmented item is scored once, by the fold holding out its speaker
    assert sum(v["n"] for k, v in listening.items() if isinstance(v, dict) and "total" in k and "several" not in k) > 0
    assert sum(len(json.loads((out / "folds" / f"fold{k}" / "oof.json").read_text())["predictions"])
               for k in range(3)) == len(train)  # each train utterance scored once, out of fold
    features = dict(FeatureStore(stores / "test"))
    scored = Scorer.from_pretrained(out).score(features)
    assert len(scored) == len(features) and scorer.mdd_threshold == Scorer.from_pretrained(out).mdd_threshold
    # recalibrate only: the network and its fold results stay, the maps are refitted with lighter augmented items
    weights, maps = (out / "model.pt").read_bytes(), (out / "calibration.json").read_text()
    train_scorer(stores, fixture_dir, out, replace(plan, reuse_network=True, augmented_calibration_weight=0.05))
    assert (out / "model.pt").read_bytes() == weights and (out / "calibration.json").read_text() != maps
    assert json.loads((out / "training_report.json").read_text())["retrain_epochs"] == report["retrain_epochs"]
    with pytest.raises(ValueError, match="needs validation='folds'"):
        train_scorer(stores, fixture_dir, out, replace(TINY_PLAN, reuse_network=True))
