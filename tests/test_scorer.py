"""The hierarchical scorer on synthetic examples: shapes, masking, losses, MTP, training steps, save/load, padding."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("espnet2")

from orthoepy.encoder.scorer.data import FeatureScaler, ScorerExample, collate
from orthoepy.encoder.scorer.losses import LossConfig, phone_class_weights, scoring_loss
from orthoepy.encoder.scorer.model import HierarchicalScorer, ScorerConfig
from orthoepy.encoder.scorer.pretrain import PhonePretrainer, mask_phones, prosody_columns
from orthoepy.encoder.scorer.train import fit

FEATURE_NAMES = ("likelihood_gop.gop", "prosody.dur_log", "prosody.f0_rel_median_st", "prosody.int_rel_utt_db",
                 "whisper.0", "whisper.1")
N_POOL = 4


def synthetic_example(rng: np.random.Generator, n_words: int, utt_id: str = "u") -> ScorerExample:
    lengths = rng.integers(1, 5, n_words)
    word_ids = np.repeat(np.arange(n_words), lengths)
    positions = np.concatenate([[3] if n == 1 else [0] + [1] * (n - 2) + [2] for n in lengths])
    n = len(word_ids)
    phone_labels = rng.choice([0.0, 1.0, 2.0, 2.0, 2.0, 1.8], n).astype(np.float32)
    return ScorerExample(
        utt_id=utt_id, features=rng.normal(size=(n, len(FEATURE_NAMES))).astype(np.float32),
        feature_names=FEATURE_NAMES, phone_ids=rng.integers(0, 39, n), stress=rng.integers(0, 4, n),
        positions=positions.astype(np.int64), word_ids=word_ids.astype(np.int64), phone_labels=phone_labels,
        word_labels=rng.uniform(0, 10, (n_words, 3)).astype(np.float32),
        sentence_labels=rng.uniform(0, 10, 5).astype(np.float32),
        utterance_features=rng.normal(size=N_POOL).astype(np.float32),
    )


def tiny_config(**overrides) -> ScorerConfig:
    base = dict(phone_feature_dim=len(FEATURE_NAMES), n_utterance_features=N_POOL, d_model=16, phone_blocks=1,
                word_blocks=1, heads=2, cgmlp_units=32, dropout=0.0, input_dropout=0.0)
    return ScorerConfig(**{**base, **overrides})


@pytest.fixture
def examples() -> list[ScorerExample]:
    rng = np.random.default_rng(0)
    return [synthetic_example(rng, n_words, f"u{i}") for i, n_words in enumerate((3, 6, 2, 5))]


def test_output_shapes_and_ranges(examples):
    torch.manual_seed(0)
    batch = collate(examples)
    out = HierarchicalScorer(tiny_config()).eval()(**batch.model_inputs())
    b, p, w = len(examples), max(e.n_phones for e in examples), max(e.n_words for e in examples)
    assert batch.phone_mask.shape == (b, p) and batch.word_mask.shape == (b, w)
    assert out.phone.shape == (b, p) and out.word.shape == (b, w, 3) and out.sentence.shape == (b, 5)
    assert out.phone_hidden.shape == (b, p, 16)
    assert 0 <= out.phone.min() and out.phone.max() <= 2 and 0 <= out.sentence.min() and out.word.max() <= 10


def test_no_handcrafted_fusion(examples):
    batch = collate(examples)
    model = HierarchicalScorer(tiny_config(n_utterance_features=0)).eval()
    assert model.utterance_proj is None
    assert model(**batch.model_inputs()).sentence.shape == (len(examples), 5)


def test_scaler_standardises_and_roundtrips(examples, tmp_path):
    scaler = FeatureScaler.fit(examples)
    scaled = np.concatenate([e.features for e in scaler.transform(examples)])
    np.testing.assert_allclose(scaled.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(0), 1, atol=1e-4)
    scaler.save(tmp_path / "scaler.npz")
    again = FeatureScaler.load(tmp_path / "scaler.npz").transform(examples)
    np.testing.assert_array_equal(again[0].features, scaler.transform(examples)[0].features)


def test_scaler_clips_outlying_columns_and_old_files_load_unclipped(examples, tmp_path):
    scaler = FeatureScaler.fit(examples, clip=5.0)
    odd = replace(examples[0], features=examples[0].features + 1e4 * scaler.phone_std,
                  utterance_features=examples[0].utterance_features - 1e4 * scaler.utt_std)
    (scaled,) = scaler.transform([odd])
    assert scaled.features.max() == 5.0 and scaled.utterance_features.min() == -5.0
    scaler.save(tmp_path / "scaler.npz")
    assert FeatureScaler.load(tmp_path / "scaler.npz").clip == 5.0
    np.savez(tmp_path / "old.npz", phone_mean=scaler.phone_mean, phone_std=scaler.phone_std,  # before `clip`
             utt_mean=scaler.utt_mean, utt_std=scaler.utt_std)
    old = FeatureScaler.load(tmp_path / "old.npz")
    assert old.clip is None and old.transform([odd])[0].features.max() > 1000
    with pytest.raises(ValueError, match="clip"):
        FeatureScaler.fit(examples, clip=0.0)


def test_loss_ignores_nan_labels(examples):
    torch.manual_seed(0)
    batch = collate(examples)
    out = HierarchicalScorer(tiny_config()).eval()(**batch.model_inputs())
    config = LossConfig(pcc_weight=0.5, rank_weight=0.5)
    base = scoring_loss(out, batch, config).total
    # padded label entries are NaN already; changing the model's outputs there must not matter
    padded = ~batch.phone_mask
    out.phone.data[padded] = 1.234
    assert torch.isclose(scoring_loss(out, batch, config).total, base)
    # a label set to NaN drops out: changing the prediction it pairs with changes nothing
    batch.sentence_labels[0, 2] = float("nan")
    before = scoring_loss(out, batch, config).total
    out.sentence.data[0, 2] += 3.0
    assert torch.isclose(scoring_loss(out, batch, config).total, before)


def test_all_nan_task_contributes_zero(examples):
    batch = collate(examples)
    out = HierarchicalScorer(tiny_config()).eval()(**batch.model_inputs())
    batch.word_labels[:] = float("nan")  # as in the test split: no word labels
    loss = scoring_loss(out, batch, LossConfig(pcc_weight=1.0, rank_weight=1.0))
    assert loss.parts["word_mse"] == 0 and loss.parts["word_pcc"] == 0 and loss.parts["word_rank"] == 0
    assert torch.isfinite(loss.total)


def test_correlation_terms_leave_augmented_items_out(examples):
    rng = np.random.default_rng(3)
    items = [synthetic_example(rng, 4, utt_id=f"u{k}~substitution") for k in range(2)]
    batch = collate(list(examples) + items)
    assert batch.synthetic.tolist() == [False] * len(examples) + [True, True]
    out = HierarchicalScorer(tiny_config()).eval()(**batch.model_inputs())
    real_only, seen = LossConfig(pcc_weight=1.0, rank_weight=1.0), LossConfig(correlation_on_augmented=True)
    before = scoring_loss(out, batch, real_only).parts
    out.sentence.data[-2:] += 4.0  # moves only the augmented items' predictions
    after = scoring_loss(out, batch, real_only).parts
    assert torch.isclose(after["sentence_pcc"], before["sentence_pcc"])
    assert torch.isclose(after["sentence_rank"], before["sentence_rank"])
    assert not torch.isclose(after["sentence_mse"], before["sentence_mse"])  # the MSE still trains on them
    assert not torch.isclose(scoring_loss(out, batch, seen).parts["sentence_pcc"], after["sentence_pcc"])


def test_phone_class_weights_favour_rare_classes(examples):
    weights = phone_class_weights(examples)
    assert weights[0] > weights[2] and weights[1] > weights[2]


def test_mtp_masking_ratio_and_replacement(examples):
    batch = collate(examples * 10)
    masked = mask_phones(batch.phone_mask, 0.2, torch.Generator().manual_seed(0))
    assert not (masked & ~batch.phone_mask).any()
    assert (masked.sum(1) >= 1).all()
    ratio = masked.sum() / batch.phone_mask.sum()
    assert 0.12 < ratio < 0.35
    # masked positions see only the mask vector (plus stress and position): their features do not matter
    config = tiny_config()
    torch.manual_seed(0)
    encoder = PhonePretrainer(config, FEATURE_NAMES).encoder.eval()
    args = (batch.stress, batch.positions, batch.phone_mask)
    ref = encoder(batch.features, batch.phone_ids, *args, masked=masked)
    features, ids = batch.features.clone(), batch.phone_ids.clone()
    features[masked] = 99.0
    ids[masked] = (ids[masked] + 1) % 39
    assert torch.allclose(encoder(features, ids, *args, masked=masked), ref, atol=1e-5)


def test_mtp_targets_only_masked_positions(examples):
    torch.manual_seed(0)
    batch = collate(examples)
    masked = mask_phones(batch.phone_mask, 0.3, torch.Generator().manual_seed(1))
    model = PhonePretrainer(tiny_config(), FEATURE_NAMES).eval()
    assert set(model.columns) == {"duration", "pitch", "energy"}
    with torch.no_grad():
        model.encoder.feature_proj[1].weight[:, 1] = 0.0  # the duration column is then a target only, never an input
    base = model(batch, masked).parts["duration"]
    unmasked = batch.features.clone()
    unmasked[~masked & batch.phone_mask, 1] += 5.0
    assert torch.isclose(model(_with_features(batch, unmasked), masked).parts["duration"], base)
    at_masked = batch.features.clone()
    at_masked[masked, 1] += 5.0
    assert not torch.isclose(model(_with_features(batch, at_masked), masked).parts["duration"], base)


def _with_features(batch, features):
    from dataclasses import replace
    return replace(batch, features=features)


def test_prosody_columns_skip_missing_groups():
    assert prosody_columns(("whisper.0", "likelihood_gop.gop")) == {}
    assert prosody_columns(("prosody.f0_mean_st", "prosody.dur_log")) == {"duration": 1, "pitch": 0}


def _steps_decrease(model, loss_fn, steps: int = 15) -> tuple[float, float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = loss_fn().item()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimizer.step()
    return first, loss_fn().item()


def test_pretraining_steps_decrease_loss(examples):
    torch.manual_seed(0)
    batch = collate(examples)
    masked = mask_phones(batch.phone_mask, 0.3, torch.Generator().manual_seed(0))
    model = PhonePretrainer(tiny_config(), FEATURE_NAMES)
    first, last = _steps_decrease(model, lambda: model(batch, masked).total)
    assert last < first


def test_finetuning_steps_decrease_loss(examples):
    torch.manual_seed(0)
    batch = collate(examples)
    model = HierarchicalScorer(tiny_config())
    config = LossConfig(pcc_weight=0.5, rank_weight=0.1)
    first, last = _steps_decrease(model, lambda: scoring_loss(model(**batch.model_inputs()), batch, config).total)
    assert last < first


def test_fit_is_deterministic_and_uses_pretrained_encoder(examples):
    config = tiny_config()
    pretrainer = PhonePretrainer(config, FEATURE_NAMES)
    model_a, history_a = fit(examples, examples[:2], config, seed=3, epochs=2, batch_size=2, progress=False,
                             phone_encoder_state=pretrainer.encoder.state_dict())
    model_b, history_b = fit(examples, examples[:2], config, seed=3, epochs=2, batch_size=2, progress=False,
                             phone_encoder_state=pretrainer.encoder.state_dict())
    assert [r.train_loss for r in history_a] == [r.train_loss for r in history_b]
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name


def test_save_load_roundtrip(examples, tmp_path):
    torch.manual_seed(0)
    model = HierarchicalScorer(tiny_config(groups=("likelihood_gop", "prosody"))).eval()
    model.save_pretrained(tmp_path / "scorer")
    loaded = HierarchicalScorer.from_pretrained(tmp_path / "scorer")
    assert loaded.config == model.config
    inputs = collate(examples).model_inputs()
    a, b = model(**inputs), loaded(**inputs)
    assert torch.equal(a.phone, b.phone) and torch.equal(a.word, b.word) and torch.equal(a.sentence, b.sentence)


def test_padding_invariance(examples):
    torch.manual_seed(0)
    model = HierarchicalScorer(tiny_config(dropout=0.1, input_dropout=0.1)).eval()
    short = min(examples, key=lambda e: e.n_phones)
    longest = max(examples, key=lambda e: e.n_phones)
    alone = model(**collate([short]).model_inputs())
    batched = model(**collate([short, longest]).model_inputs())
    n, w = short.n_phones, short.n_words
    torch.testing.assert_close(batched.phone[0, :n], alone.phone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(batched.word[0, :w], alone.word[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(batched.sentence[0], alone.sentence[0], atol=1e-4, rtol=0)
