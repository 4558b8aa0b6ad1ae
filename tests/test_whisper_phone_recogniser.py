"""The fine-tuned Whisper phone recogniser on a tiny random WhisperConfig (2 layers, d_model 16)."""
import copy

import numpy as np
import pytest
import torch

from orthoepy.encoder.features import indomain_gop as ig
from orthoepy.encoder.features import whisper_phone_recogniser as wpr
from orthoepy.encoder.features.frontend import FrontEndError

N_MELS = 8


@pytest.fixture
def base_encoder(one_torch_thread):
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    config = WhisperConfig(num_mel_bins=N_MELS, d_model=16, encoder_layers=2, encoder_attention_heads=2,
                           encoder_ffn_dim=32, max_source_positions=40, dropout=0.0, attention_dropout=0.0,
                           activation_dropout=0.0)
    torch.manual_seed(0)
    return WhisperEncoder(config).eval()


def _data(model, n=6, seed=0):
    """Cached lower states of random log-mel 'utterances' of different lengths, with two phones each."""
    rng = np.random.default_rng(seed)
    states, targets = [], []
    for i in range(n):
        frames = 10 + 2 * i
        states.append(model.lower_states(rng.normal(size=(N_MELS, 2 * frames)).astype(np.float32)))
        phones, starts = ("AA", "S"), np.array([0.04, 0.04 + 0.1])
        targets.append(ig.frame_targets(frames, phones, starts, starts + 0.1, [2.0, 0.2]))
    return states, targets


def _batch_loss(model, states, targets):
    x, labels, pos, neg = ig.pad_batch(states, targets)
    with torch.no_grad():
        return ig.weighted_frame_loss(model.upper(x, torch.tensor([len(s) for s in states])), labels, pos, neg).item()


CONFIG = wpr.PhoneRecogniserConfig(frozen_layers=1, head_dropout=0.0, lr=1e-2, head_lr=1e-2, epochs=1,
                                   batch_utterances=6)


@pytest.mark.parametrize("lora_rank", [0, 2])
def test_one_training_step_lowers_the_loss(base_encoder, lora_rank):
    model = wpr.WhisperPhoneRecogniser(base_encoder, wpr.PhoneRecogniserConfig(**{**CONFIG.__dict__, "lora_rank": lora_rank}))
    states, targets = _data(model)
    before = _batch_loss(model, states, targets)
    frozen = {n: p.clone() for n, p in model.named_parameters() if not p.requires_grad}
    wpr.train_phone_recogniser(model, states, targets, progress=False)
    assert _batch_loss(model, states, targets) < before
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)  # lower layers untouched
    trained = set(model.trainable_state_dict())
    assert not any(n.startswith("encoder.layers.0.") or n.startswith("encoder.conv") for n in trained)
    assert any(n.startswith("encoder.layers.1.") for n in trained) and "head.1.weight" in trained
    if lora_rank:
        assert all("lora_" in n for n in trained if n.startswith("encoder.layers."))


def test_padding_does_not_change_an_utterance(base_encoder):
    model = wpr.WhisperPhoneRecogniser(base_encoder, CONFIG).eval()
    states, targets = _data(model, n=2)
    alone = model.predict_log_proba(states[0])
    x, *_ = ig.pad_batch(states, targets)
    with torch.no_grad():
        batched = model.upper(x, torch.tensor([len(s) for s in states]))[0, :len(states[0])].numpy()
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert alone.shape == (len(states[0]), ig.N_CLASSES)
    np.testing.assert_allclose(np.exp(alone).sum(1), 1.0, rtol=1e-5)


def test_save_and_load_give_identical_outputs(base_encoder, tmp_path):
    model = wpr.WhisperPhoneRecogniser(copy.deepcopy(base_encoder), wpr.PhoneRecogniserConfig(**{**CONFIG.__dict__, "lora_rank": 2}))
    states, targets = _data(model)
    wpr.train_phone_recogniser(model, states, targets, progress=False)
    model.save_pretrained(tmp_path / "rec")
    loaded = wpr.WhisperPhoneRecogniser.from_pretrained(tmp_path / "rec", encoder=copy.deepcopy(base_encoder))
    mel = torch.randn(1, N_MELS, 24)
    with torch.no_grad():
        assert torch.equal(loaded(mel), model.eval()(mel))
        untrained = wpr.WhisperPhoneRecogniser(copy.deepcopy(base_encoder), model.config).eval()
        assert not torch.allclose(untrained(mel), model(mel))
    saved = (tmp_path / "rec" / wpr.WEIGHTS_FILE).stat().st_size
    assert saved < sum(p.numel() * 4 for p in model.parameters())  # only the trained part


def test_loading_on_another_encoder_is_refused(base_encoder, tmp_path):
    wpr.WhisperPhoneRecogniser(copy.deepcopy(base_encoder), CONFIG).save_pretrained(tmp_path / "rec")
    other = copy.deepcopy(base_encoder)
    with torch.no_grad():
        other.conv1.weight.add_(0.5)
    with pytest.raises(FrontEndError, match="another Whisper encoder"):
        wpr.WhisperPhoneRecogniser.from_pretrained(tmp_path / "rec", encoder=other)
    with pytest.raises(FrontEndError, match="is missing"):
        wpr.WhisperPhoneRecogniser.from_pretrained(tmp_path / "nothing", encoder=other)


def test_resuming_from_a_checkpoint_matches_an_uninterrupted_run(base_encoder, tmp_path):
    two_epochs = wpr.PhoneRecogniserConfig(**{**CONFIG.__dict__, "epochs": 2, "batch_utterances": 3})
    straight = wpr.WhisperPhoneRecogniser(copy.deepcopy(base_encoder), two_epochs)
    states, targets = _data(straight)
    history = wpr.train_phone_recogniser(straight, states, targets, progress=False)

    first = wpr.WhisperPhoneRecogniser(copy.deepcopy(base_encoder), wpr.PhoneRecogniserConfig(**{**two_epochs.__dict__, "epochs": 1}))
    wpr.train_phone_recogniser(first, states, targets, checkpoint_dir=tmp_path, progress=False)
    resumed = wpr.WhisperPhoneRecogniser(copy.deepcopy(base_encoder), two_epochs)
    resumed_history = wpr.train_phone_recogniser(resumed, states, targets, checkpoint_dir=tmp_path, progress=False)
    assert resumed_history == pytest.approx(history)
    for name, value in straight.trainable_state_dict().items():
        torch.testing.assert_close(resumed.trainable_state_dict()[name], value)


def test_lower_then_upper_is_the_whole_encoder_then_the_head(base_encoder):
    from orthoepy.encoder.features.whisper_torch import encode

    model = wpr.WhisperPhoneRecogniser(base_encoder, CONFIG).eval()
    mel = torch.randn(2, N_MELS, 30)
    with torch.no_grad():
        torch.testing.assert_close(model(mel), torch.log_softmax(model.head(encode(base_encoder, mel)), -1))
        cached = model.lower_states(mel[0].numpy())
        assert cached.dtype == np.float16 and cached.shape == (15, 16)
        np.testing.assert_allclose(model.predict_log_proba(cached), model(mel)[0].numpy(), atol=2e-2)


def test_a_corrupt_checkpoint_says_what_to_do(base_encoder, tmp_path):
    model = wpr.WhisperPhoneRecogniser(base_encoder, CONFIG)
    states, targets = _data(model, n=2)
    (tmp_path / wpr.CHECKPOINT_FILE).write_bytes(b"half a checkpoint")
    with pytest.raises(FrontEndError, match="delete it to start over"):
        wpr.train_phone_recogniser(model, states, targets, checkpoint_dir=tmp_path, progress=False)


def test_frozen_layers_must_exist(base_encoder):
    with pytest.raises(ValueError, match="2 layers"):
        wpr.WhisperPhoneRecogniser(base_encoder, wpr.PhoneRecogniserConfig(frozen_layers=3))
