"""The rationalizer's decoder on onnxruntime: the same greedy, constrained texts as PyTorch, cached exports."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import get_peft_model
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from orthoepy.rationalizer.compact import AUDIO_PLACEHOLDER, load_compact_base, save_tiny_compact_base
from orthoepy.rationalizer.model import Rationalizer, RationalizerDirectoryError, RationalizerSettings
from orthoepy.rationalizer.onnx_decoder import OnnxDecoder, cached_decoder, export_decoder
from orthoepy.rationalizer.records import PhoneScore, ScoreSheet, WordScore
from orthoepy.rationalizer.training import RationalizerTrainingPlan, lora_config

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_torch_thread")
AUDIO_DIM = 8


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return save_tiny_compact_base(tmp_path_factory.mktemp("tiny-base"))


def _tuned(tiny_base):
    """A LoRA model whose adapter and projector are random, so merging them changes what it writes."""
    model, tokenizer = load_compact_base(AUDIO_DIM, tiny_base)
    tuned = get_peft_model(model, lora_config(RationalizerTrainingPlan()))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in tuned.named_parameters():
            if "lora_B" in name or "audio_projector" in name:
                weight.copy_(torch.randn(weight.shape, generator=generator) * 0.5)
    return tuned.eval(), tokenizer


def _prompt(tokenizer, n_words: int):
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Recording: " + AUDIO_PLACEHOLDER * n_words}],
                                         add_generation_prompt=True, tokenize=False)
    return tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]


class _NoToken(LogitsProcessor):
    def __init__(self, token: int):
        self.token = token

    def __call__(self, input_ids, scores):
        scores[:, self.token] = -float("inf")
        return scores


class _StopAfter(StoppingCriteria):
    def __init__(self, length: int):
        self.length = length

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), input_ids.shape[1] >= self.length, dtype=torch.bool)


def test_the_onnx_decoder_writes_the_tokens_torch_writes(tiny_base, tmp_path):
    tuned, tokenizer = _tuned(tiny_base)
    plain = tuned.merge_and_unload()
    ids, audio = _prompt(tokenizer, 3), torch.randn(1, 3, AUDIO_DIM, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(1, 3, dtype=torch.bool)
    decoder = OnnxDecoder.load(export_decoder(plain, tmp_path / "decoder.onnx"), plain)
    with torch.no_grad():
        free = plain.generate(input_ids=ids, attention_mask=torch.ones_like(ids), audio_features=audio,
                              audio_mask=mask, max_new_tokens=12, do_sample=False, eos_token_id=None)
    assert torch.equal(decoder.generate(ids, audio, mask, 12, []), free)
    # the same processors and criteria steer both: the token torch wrote first is banned, and it stops early
    banned = int(free[0, ids.shape[1]])
    steer = dict(logits_processor=LogitsProcessorList([_NoToken(banned)]),
                 stopping_criteria=StoppingCriteriaList([_StopAfter(ids.shape[1] + 5)]))
    with torch.no_grad():
        steered = plain.generate(input_ids=ids, attention_mask=torch.ones_like(ids), audio_features=audio,
                                 audio_mask=mask, max_new_tokens=12, do_sample=False, eos_token_id=None, **steer)
    ours = decoder.generate(ids, audio, mask, 12, [], steer["logits_processor"], steer["stopping_criteria"])
    assert torch.equal(ours, steered) and ours.shape[1] == ids.shape[1] + 5 and banned not in ours[0, ids.shape[1]:]
    # the audio is heard: other audio, other logits on the prompt pass
    first = decoder._step(plain.prompt_embeddings(ids, audio, mask), 0, decoder._empty_past())[0]
    other = decoder._step(plain.prompt_embeddings(ids, -audio, mask), 0, decoder._empty_past())[0]
    assert not torch.allclose(first, other)
    # an EOS token ends it, included, as generate returns it
    eos = int(free[0, ids.shape[1] + 2])
    assert decoder.generate(ids, audio, mask, 12, [eos])[0, -1] == eos


def _sheet() -> ScoreSheet:
    words = [WordScore(t, a, 10.0, a, (PhoneScore("K", 0.4 if a < 5 else 1.9, "G" if a < 5 else None),),
                       "Mispronunciation" if a < 5 else "None") for t, a in (("we", 9.0), ("call", 3.0), ("it", 9.0))]
    return ScoreSheet("we call it", dict(accuracy=6.0, completeness=10.0, fluency=7.0, prosodic=7.0, total=6.5),
                      tuple(words))


def test_a_rationalizer_on_onnxruntime_writes_the_same_text(tiny_base, tmp_path, monkeypatch):
    monkeypatch.setenv("ORTHOEPY_CACHE", str(tmp_path / "cache"))
    tuned, tokenizer = _tuned(tiny_base)
    settings = RationalizerSettings(audio_dim=AUDIO_DIM, base_model=str(tiny_base), max_new_tokens=10)
    Rationalizer(tuned, tokenizer, settings).save_pretrained(tmp_path / "rat")
    states = np.random.default_rng(0).normal(size=(3, AUDIO_DIM)).astype(np.float32)
    torch_text = Rationalizer.from_pretrained(tmp_path / "rat").explain(_sheet(), states, banned=["we"])
    served = Rationalizer.from_pretrained(tmp_path / "rat", backend="onnxruntime")
    assert served.decoder is not None
    onnx_text = served.explain(_sheet(), states, banned=["we"])
    assert onnx_text.text == torch_text.text and onnx_text.new_tokens == torch_text.new_tokens > 0
    assert len(list((tmp_path / "cache" / "rationalizer-onnx").glob("*/decoder.onnx"))) == 1
    with pytest.raises(RationalizerDirectoryError, match="unknown rationalizer backend"):
        Rationalizer.from_pretrained(tmp_path / "rat", backend="tensorrt")


def test_the_export_is_made_once_per_weights(tiny_base, tmp_path):
    tuned, _ = _tuned(tiny_base)
    calls = []

    def factory():
        calls.append(1)
        return tuned.merge_and_unload()

    first = cached_decoder(factory, [b"adapter-a"], cache_dir=tmp_path)
    assert cached_decoder(factory, [b"adapter-a"], cache_dir=tmp_path) == first and len(calls) == 1
    assert not list(tmp_path.glob("rationalizer-onnx/.export-*"))  # no scratch folder left behind
    cached_decoder(lambda: tuned.get_base_model(), [b"adapter-b"], cache_dir=tmp_path)
    assert len(list(tmp_path.glob("rationalizer-onnx/*/decoder.onnx"))) == 2
