"""ONNX export of the scorer: parity with torch, the onnxruntime backend of Scorer, and the export-onnx command."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("espnet2")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from orthoepy.encoder.scorer.calibration import AspectCalibrator
from orthoepy.encoder.scorer.data import FeatureScaler
from orthoepy.encoder.scorer.model import HierarchicalScorer, ScorerConfig
from orthoepy.encoder.scorer.onnx_export import (ONNX_FILE, OnnxScorerModel, export_onnx, max_abs_difference,
                                                 synthetic_examples)
from orthoepy.encoder.scorer.pipeline import ModelDirectoryError, Scorer, prediction_dict
from orthoepy.encoder.scorer.train import predict
from orthoepy.fusion.cli import main

TOLERANCE = 1e-4
N_FEATURES, N_POOL = 6, 4


def tiny_model(n_pool: int) -> HierarchicalScorer:
    torch.manual_seed(0)
    config = ScorerConfig(phone_feature_dim=N_FEATURES, n_utterance_features=n_pool, d_model=32, phone_blocks=1,
                          word_blocks=1, heads=2, cgmlp_units=32)
    return HierarchicalScorer(config).eval()


@pytest.fixture(scope="module", params=[0, N_POOL], ids=["plain", "handcrafted"])
def exported(request, tmp_path_factory) -> tuple[HierarchicalScorer, OnnxScorerModel]:
    model = tiny_model(request.param)
    path = tmp_path_factory.mktemp("onnx") / ONNX_FILE
    assert export_onnx(model, path) <= TOLERANCE
    return model, OnnxScorerModel(path, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("n_words", [(1,), (9,), (2, 6, 1, 4), (3, 3)])
def test_parity_on_shapes_other_than_the_traced_one(exported, n_words):
    model, onnx_model = exported
    assert max_abs_difference(model, onnx_model, synthetic_examples(model.config, n_words, seed=7)) <= TOLERANCE


@pytest.mark.parametrize("batch_size", [1, 3])
def test_predict_matches_torch_in_order(exported, batch_size):
    model, onnx_model = exported
    examples = synthetic_examples(model.config, n_words=(5, 1, 8, 2, 3), seed=3)
    ours, theirs = onnx_model.predict(examples, batch_size), predict(model, examples, batch_size)
    assert [p.utt_id for p in ours] == [e.utt_id for e in examples]
    for a, b in zip(ours, theirs):
        assert a.phone.shape == b.phone.shape and a.word.shape == b.word.shape
        for x, y in ((a.phone, b.phone), (a.word, b.word), (a.sentence, b.sentence)):
            np.testing.assert_allclose(x, y, atol=TOLERANCE, rtol=0)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A bundle around the tiny handcrafted model, with identity scaling and a calibrator fitted on its own outputs."""
    model = tiny_model(N_POOL)
    examples = synthetic_examples(model.config, n_words=(4, 2, 6, 3, 5), seed=5)
    labels = {k: v + 0.1 for k, v in prediction_dict(predict(model, examples)).items()}
    scaler = FeatureScaler(np.zeros(N_FEATURES), np.ones(N_FEATURES), np.zeros(N_POOL), np.ones(N_POOL))
    calibrator = AspectCalibrator().fit(prediction_dict(predict(model, examples)), labels)
    directory = tmp_path_factory.mktemp("bundle")
    Scorer(model, scaler, None, calibrator, 1.0).save_pretrained(directory)
    export_onnx(model, directory / ONNX_FILE)
    return directory


def test_backends_give_the_same_scores(model_dir):
    examples = synthetic_examples(tiny_model(N_POOL).config, n_words=(3, 7, 1), seed=11)
    scorers = {b: Scorer.from_pretrained(model_dir, backend=b) for b in ("auto", "torch", "onnx")}
    assert {b: s.backend for b, s in scorers.items()} == {"auto": "onnx", "torch": "torch", "onnx": "onnx"}
    reference = scorers["torch"].score_examples(examples)
    for backend in ("auto", "onnx"):
        for a, b in zip(scorers[backend].score_examples(examples), reference):
            assert a.utt_id == b.utt_id
            np.testing.assert_allclose(a.phone, b.phone, atol=TOLERANCE, rtol=0)
            for aspect in a.word:
                np.testing.assert_allclose(a.word[aspect], b.word[aspect], atol=TOLERANCE, rtol=0)
            assert a.sentence == pytest.approx(b.sentence, abs=TOLERANCE)


def test_onnx_backend_needs_the_file(model_dir, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(model_dir, copy)
    (copy / ONNX_FILE).unlink()
    assert Scorer.from_pretrained(copy).backend == "torch"
    with pytest.raises(ModelDirectoryError, match=ONNX_FILE):
        Scorer.from_pretrained(copy, backend="onnx")
    with pytest.raises(ValueError, match="backend"):
        Scorer.from_pretrained(copy, backend="tensorrt")


def test_stale_onnx_file_is_refused_and_replaced_on_save(model_dir, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(model_dir, copy)
    scorer = Scorer.from_pretrained(copy, backend="torch")
    with torch.no_grad():
        scorer.model.sentence_bias += 1.0
    scorer.model.save_pretrained(copy)  # new weights, old graph
    with pytest.raises(ModelDirectoryError, match="other weights"):
        Scorer.from_pretrained(copy)
    scorer.save_pretrained(copy)  # the bundle's save drops the stale graph
    assert not (copy / ONNX_FILE).exists() and Scorer.from_pretrained(copy).backend == "torch"


def test_save_pretrained_keeps_the_onnx_backend(model_dir, tmp_path):
    Scorer.from_pretrained(model_dir, backend="onnx").save_pretrained(tmp_path / "saved")
    assert Scorer.from_pretrained(tmp_path / "saved").backend == "onnx"


def test_corrupt_onnx_file_is_a_model_directory_error(model_dir, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(model_dir, copy)
    (copy / ONNX_FILE).write_bytes(b"not a graph")
    with pytest.raises(ModelDirectoryError, match="corrupt"):
        Scorer.from_pretrained(copy)


def test_export_onnx_command(model_dir, tmp_path, capsys):
    out = tmp_path / "exported.onnx"
    assert main(["export-onnx", "--model", str(model_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "max abs difference" in printed and out.is_file()


def test_fold_ensemble_is_the_members_mean_and_round_trips_through_save_and_onnx(model_dir, tmp_path):
    from orthoepy.encoder.scorer.model import ScorerEnsemble, load_network

    members = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        members.append(HierarchicalScorer(tiny_model(N_POOL).config).eval())
    ensemble = ScorerEnsemble(members).eval()
    examples = synthetic_examples(ensemble.config, n_words=(3, 5, 2), seed=7)
    mean = np.mean([np.concatenate([p.phone for p in predict(m, examples)]) for m in members], axis=0)
    np.testing.assert_allclose(np.concatenate([p.phone for p in predict(ensemble, examples)]), mean, atol=1e-6)
    # in a bundle: saved, loaded back as an ensemble, exported to ONNX, and both backends agree
    bundle = Scorer.from_pretrained(model_dir, backend="torch")
    bundle.model = ensemble
    bundle.save_pretrained(tmp_path / "ensemble")
    assert isinstance(load_network(tmp_path / "ensemble"), ScorerEnsemble)
    assert export_onnx(ensemble, tmp_path / "ensemble" / ONNX_FILE) <= TOLERANCE
    torch_scores = Scorer.from_pretrained(tmp_path / "ensemble", backend="torch").score_examples(examples)
    onnx_scorer = Scorer.from_pretrained(tmp_path / "ensemble", backend="onnx")
    assert onnx_scorer.backend == "onnx"
    for a, b in zip(onnx_scorer.score_examples(examples), torch_scores):
        np.testing.assert_allclose(a.phone, b.phone, atol=TOLERANCE, rtol=0)
        assert a.sentence == pytest.approx(b.sentence, abs=TOLERANCE)
    with pytest.raises(ValueError, match="differ in configuration"):
        ScorerEnsemble([members[0], HierarchicalScorer(ScorerConfig(phone_feature_dim=N_FEATURES, d_model=16,
                                                                    heads=2))])
    with pytest.raises(ValueError, match="at least one"):
        ScorerEnsemble([])
