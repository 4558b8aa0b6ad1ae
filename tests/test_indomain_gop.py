"""The in-domain phone recogniser and its feature group, on tiny synthetic frames."""
import json

import numpy as np
import pytest
import torch

from orthoepy.encoder.alignment import Alignment, PhoneSegment
from orthoepy.encoder.audio import Audio
from orthoepy.encoder.features import indomain_gop as ig
from orthoepy.encoder.features.frontend import FrontEndConfig, FrontEndError
from orthoepy.encoder.phoneset import PHONE_INDEX, PHONES, canonical_phones
from orthoepy.encoder.scorer.pipeline import _carry_recogniser, _resolve_recogniser, _used_frontend

TINY = ig.RecogniserConfig(input_dim=8, hidden=16, conv_out=16, kernel=3, dropout=0.0, epochs=40, lr=2e-2,
                           batch_utterances=4)
SHIPPED_DEFAULT_KEY = "473b8f440734d9c2"  # FrontEndConfig().key() of the features the shipped model was trained on


def _utterance(rng, phones, frames_per_phone=5, dim=8):
    """Frames whose mean depends on the phone; phones laid out back to back after 2 outside frames."""
    centres = {p: np.eye(dim)[PHONE_INDEX[p] % dim] * 3 for p in phones}
    blocks = [rng.normal(0, 0.3, (2, dim))] + [centres[p] + rng.normal(0, 0.3, (frames_per_phone, dim)) for p in phones]
    starts = 0.04 + np.arange(len(phones)) * frames_per_phone * ig.FRAME_SECONDS
    return np.concatenate(blocks).astype(np.float16), starts, starts + frames_per_phone * ig.FRAME_SECONDS


def _dataset(n=12, phones=("AA", "B", "S"), seed=0):
    rng = np.random.default_rng(seed)
    frames, targets, layout = [], [], []
    for _ in range(n):
        x, starts, ends = _utterance(rng, phones)
        frames.append(x)
        targets.append(ig.frame_targets(len(x), phones, starts, ends, [2.0] * len(phones), TINY))
        layout.append((starts, ends))
    return frames, targets, layout


def test_score_weights():
    assert ig.phone_score_weights(2.0) == (1.0, 0.0)
    assert ig.phone_score_weights(0.0) == (0.0, 1.0)
    pos, neg = ig.phone_score_weights(1.0, negative_weight=0.5)
    assert pos == 0.0 and neg == pytest.approx(0.5 / 3)
    assert ig.phone_score_weights(1.6)[0] == pytest.approx(0.6) and ig.phone_score_weights(1.6)[1] == 0.0


def test_frame_targets_label_phones_and_outside():
    t = ig.frame_targets(10, ["AA", "B"], np.array([0.04, 0.10]), np.array([0.10, 0.16]), [2.0, 0.0], TINY)
    assert t.labels.tolist() == [ig.OUTSIDE] * 2 + [PHONE_INDEX["AA"]] * 3 + [PHONE_INDEX["B"]] * 3 + [ig.OUTSIDE] * 2
    assert t.positive[2:5].tolist() == [1.0] * 3 and t.negative[5:8].tolist() == [1.0] * 3
    assert t.positive[5:8].sum() == 0 and t.positive[0] == pytest.approx(TINY.outside_weight)


def test_weighted_loss_positive_is_nll_and_negative_pushes_away():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]]], requires_grad=True)
    lp = torch.log_softmax(logits, -1)
    labels = torch.tensor([[0, 1]])
    nll = ig.weighted_frame_loss(lp, labels, torch.tensor([[1.0, 1.0]]), torch.zeros(1, 2))
    assert nll.item() == pytest.approx(torch.nn.functional.nll_loss(lp[0], labels[0]).item(), abs=1e-6)
    neg = ig.weighted_frame_loss(lp, labels, torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert neg.item() == pytest.approx(-np.log(1 - lp[0, 0, 0].exp().item()), abs=1e-5)
    neg.backward()
    assert logits.grad[0, 0, 0] > 0  # descending lowers the canonical phone's logit
    padded = ig.weighted_frame_loss(lp, labels, torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2))
    assert padded.item() == pytest.approx(-lp[0, 0, 0].item(), abs=1e-6)  # zero-weight frames do not count


def test_fit_predict_on_synthetic_frames():
    torch.set_num_threads(1)
    frames, targets, _ = _dataset()
    model = ig.InDomainRecogniser(TINY).fit(frames, targets)
    assert model.history_[-1] < model.history_[0]
    x, t = frames[0], targets[0]
    lp = model.predict_log_proba(x)
    assert lp.shape == (len(x), ig.N_CLASSES)
    np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0, atol=1e-5)
    assert (lp.argmax(axis=1) == t.labels).mean() > 0.8


def test_human_scores_decide_between_this_phone_and_not_this_phone():
    torch.set_num_threads(1)
    frames, _, layout = _dataset()
    b_frames = slice(2 + 5, 2 + 10)  # the middle phone sounds like B but the text says S

    def p_s_on_b(score):
        targets = [ig.frame_targets(len(x), ("AA", "S", "S"), s, e, [2.0, score, 2.0], TINY) for x, (s, e) in zip(frames, layout)]
        model = ig.InDomainRecogniser(TINY).fit(frames, targets)
        return float(np.exp(model.predict_log_proba(frames[0])[b_frames, PHONE_INDEX["S"]]).mean())

    assert p_s_on_b(2.0) > 0.5  # scored well: a positive, "this is S"
    assert p_s_on_b(0.0) < 0.2  # scored 0: a negative, "this is not S"


def test_save_load_roundtrip(tmp_path):
    frames, targets, _ = _dataset(n=4)
    model = ig.InDomainRecogniser(ig.RecogniserConfig(**{**TINY.__dict__, "epochs": 2})).fit(frames, targets)
    model.save_pretrained(tmp_path)
    loaded = ig.InDomainRecogniser.from_pretrained(tmp_path)
    assert loaded.config == model.config and loaded.history_ == model.history_
    np.testing.assert_allclose(loaded.predict_log_proba(frames[0]), model.predict_log_proba(frames[0]), atol=0.05)
    assert json.loads((tmp_path / ig.CONFIG_FILE).read_text())["config"]["hidden"] == TINY.hidden
    with pytest.raises(FileNotFoundError):
        ig.InDomainRecogniser.from_pretrained(tmp_path / "nothing")
    with pytest.raises(RuntimeError):
        ig.InDomainRecogniser(TINY).predict_log_proba(frames[0])


def test_phone_feature_shapes_and_values():
    rng = np.random.default_rng(1)
    log_probs = np.log(rng.dirichlet(np.ones(ig.N_CLASSES), size=20))
    values, heard, prob = ig.phone_features(log_probs, ["AA", "B", "S"], np.array([0.0, 0.1, 0.2]), np.array([0.1, 0.2, 0.4]))
    assert values.shape == (3, len(ig.FEATURE_NAMES)) == (3, 9 + len(PHONES)) and values.dtype == np.float32
    names = list(ig.FEATURE_NAMES)
    assert values[0, names.index("lpr_AA")] == 0.0 and values[1, names.index("lpr_B")] == 0.0
    lpp = log_probs[0:5, PHONE_INDEX["AA"]].mean()
    assert values[0, names.index("lpp")] == pytest.approx(lpp, abs=1e-5)
    assert len(heard) == 3 and all(h in PHONES for h in heard) and all(0 < p < 1 for p in prob)
    assert np.isfinite(values).all()


def test_speaker_folds_are_disjoint_and_cover():
    speakers = {f"u{i}": f"s{i % 7}" for i in range(30)}
    folds = ig.speaker_folds(speakers, 3)
    assert sorted(u for f in folds for u in f.held_out_ids) == sorted(speakers)
    for f in folds:
        assert not {speakers[u] for u in f.fit_ids} & {speakers[u] for u in f.held_out_ids}
    with pytest.raises(ValueError):
        ig.speaker_folds({"a": "s1"}, 2)


def test_cross_fit_never_predicts_an_utterance_with_a_model_that_saw_its_fold(monkeypatch):
    fitted_on: list[set[int]] = []

    class Spy:  # records which utterances (marked by their first value) each fold model saw
        def __init__(self, config, progress=False):
            self.seen: set[int] = set()

        def fit(self, frames, targets):
            self.seen = {int(f[0, 0]) for f in frames}
            fitted_on.append(self.seen)
            return self

        def predict_log_proba(self, frames):
            assert int(frames[0, 0]) not in self.seen
            return np.zeros((len(frames), ig.N_CLASSES), np.float32)

    monkeypatch.setattr(ig, "InDomainRecogniser", Spy)
    ids = [f"u{i}" for i in range(20)]
    frames = {u: np.full((3, 2), i, np.float32) for i, u in enumerate(ids)}
    speakers = {u: f"s{i % 5}" for i, u in enumerate(ids)}
    log_probs, models = ig.cross_fit(frames, dict.fromkeys(ids), speakers, n_folds=5)
    assert set(log_probs) == set(ids) and len(models) == 5
    assert all(len(seen) == 16 for seen in fitted_on)


def test_group_extract_with_a_stub_whisper(tmp_path):
    frames, targets, _ = _dataset(n=4)
    ig.InDomainRecogniser(ig.RecogniserConfig(**{**TINY.__dict__, "epochs": 1})).fit(frames, targets).save_pretrained(tmp_path)

    class StubWhisper:
        class variant:
            name, dims = "stub", 8

        def encoder_frames(self, audio):
            return frames[0].astype(np.float32)

    group = ig.InDomainGOP(tmp_path, whisper=StubWhisper())
    phones = canonical_phones([["AA", "B"], ["S"]])
    segments = [PhoneSegment(p, 0.04 + 0.1 * i, 0.14 + 0.1 * i, 10, 0.0) for i, p in enumerate(phones)]
    out = group.extract(Audio(np.zeros(8000, np.float32)), Alignment(segments, [], False, "", 0.04, 0.34))
    assert out.block.values.shape == (3, len(ig.FEATURE_NAMES)) and out.block.names == ig.FEATURE_NAMES
    assert out.heard is None  # the CTC recogniser keeps reporting what was heard


def test_frontend_config_key_is_stable_and_group_needs_its_recogniser(tmp_path):
    assert FrontEndConfig().key() == SHIPPED_DEFAULT_KEY
    with pytest.raises(FrontEndError):
        FrontEndConfig(groups=("whisper", "indomain_gop"))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ig.WEIGHTS_FILE).write_bytes(b"one")
    groups = ("whisper", "indomain_gop")
    key = FrontEndConfig(groups=groups, indomain_gop_dir=str(tmp_path / "a")).key()
    moved = tmp_path / "b"
    (tmp_path / "a").rename(moved)
    assert FrontEndConfig(groups=groups, indomain_gop_dir=str(moved)).key() == key  # the weights count, not the path
    (moved / ig.WEIGHTS_FILE).write_bytes(b"two")
    assert FrontEndConfig(groups=groups, indomain_gop_dir=str(moved)).key() != key


def test_model_directory_carries_the_recogniser(tmp_path):
    source = tmp_path / "recogniser"
    source.mkdir()
    (source / ig.WEIGHTS_FILE).write_bytes(b"w")
    config = {"groups": ["whisper", "indomain_gop"], "indomain_gop_dir": str(source)}
    model = tmp_path / "model"
    model.mkdir()
    saved = _carry_recogniser(config, model)
    assert saved["indomain_gop_dir"] == "indomain_gop" and (model / "indomain_gop" / ig.WEIGHTS_FILE).read_bytes() == b"w"
    assert _resolve_recogniser(saved, model)["indomain_gop_dir"] == str((model / "indomain_gop").resolve())
    assert _carry_recogniser(_resolve_recogniser(saved, model), model) == saved  # saving in place copies nothing
    unused = _used_frontend(config, ("whisper",))
    assert unused["groups"] == ["whisper"] and unused["indomain_gop_dir"] is None
    assert _used_frontend(config, ("whisper", "indomain_gop")) == config
