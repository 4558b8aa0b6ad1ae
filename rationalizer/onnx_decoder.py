"""The rationalizer's decoder on onnxruntime: the same greedy, constrained decoding, without PyTorch's per-op cost.

On the 2-core CPU this project serves from, one decoding step of SmolLM2-135M in eager PyTorch took 45 ms, of which
about 16 ms is reading the float32 weights (540 MB) and the rest the cost of some 1,200 small ops
(docs/rationales.md, "Session 16: decoding on onnxruntime"). Here the merged model (LoRA folded in) is exported
once to ONNX with its key/value cache as inputs and outputs, float32, and cached on disk like the float32 SmolLM2 copy
(`compact.smollm2_folder`). The audio prefix stays in PyTorch: the graph takes `inputs_embeds`, so the prompt's
placeholder embeddings are the projector's, as in `generate`. Smaller weights were measured and left out: int8
(dynamic or weight-only) and 4-bit weights each changed the texts for the worse or ran slower (docs/rationales.md).

`OnnxDecoder.generate` is greedy decoding that calls the same transformers `LogitsProcessorList` and
`StoppingCriteriaList` as `model.generate(do_sample=False)`, step by step, so every constraint of
rationalizer.constraints applies unchanged, and the texts are PyTorch's (tested on a tiny random Llama; measured on
real sheets in docs/rationales.md).

Errors: `OnnxDecoderError` when onnxruntime or the export is not available, with the reason.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import DynamicCache, LogitsProcessorList, StoppingCriteriaList

BACKENDS = ("torch", "onnxruntime")
FILE = "decoder.onnx"
EXPORT_VERSION = "1"  # bump when the graph's inputs or outputs change: cached exports are then made anew
OPSET = 17


class OnnxDecoderError(RuntimeError):
    """The decoder cannot be exported or loaded on onnxruntime; the message says why."""


class _DecoderGraph(nn.Module):
    """(inputs_embeds (1, T, H), position_ids (1, T), past key/value per layer (1, kv_heads, P, head_dim)) ->
    (logits of the last position (1, V), present key/value per layer (1, kv_heads, P + T, head_dim))."""

    def __init__(self, causal_lm: nn.Module):
        super().__init__()
        self.causal_lm = causal_lm
        self.layers = causal_lm.config.num_hidden_layers

    def forward(self, inputs_embeds, position_ids, *past):
        cache = DynamicCache()
        for layer in range(self.layers):
            cache.update(past[2 * layer], past[2 * layer + 1], layer)
        out = self.causal_lm.model(inputs_embeds=inputs_embeds, position_ids=position_ids, past_key_values=cache,
                                   use_cache=True)
        logits = self.causal_lm.lm_head(out.last_hidden_state[:, -1:, :])[:, 0]
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (logits, *present)


def _cache_shape(config) -> tuple[int, int]:
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return config.num_key_value_heads, head_dim


def _names(layers: int) -> tuple[list[str], list[str]]:
    past = [f"past_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]
    present = [f"present_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]
    return ["inputs_embeds", "position_ids", *past], ["logits", *present]


def export_decoder(causal_lm: nn.Module, path: str | Path) -> Path:
    """Writes the decoder graph of a plain (adapter merged and unloaded) Llama-architecture causal LM to `path`
    (float32; about 15 s and 540 MB for SmolLM2-135M). Raises OnnxDecoderError when the export fails."""
    path = Path(path)
    config = causal_lm.config
    kv_heads, head_dim = _cache_shape(config)
    layers = config.num_hidden_layers
    inputs, outputs = _names(layers)
    example = (torch.zeros(1, 2, config.hidden_size), torch.arange(3, 5)[None],
               *[torch.zeros(1, kv_heads, 3, head_dim) for _ in range(2 * layers)])
    axes = {"inputs_embeds": {1: "new"}, "position_ids": {1: "new"}}
    axes |= {name: {2: "past"} for name in inputs[2:]} | {name: {2: "total"} for name in outputs[1:]}
    attention = config._attn_implementation
    config._attn_implementation = "eager"  # a plain causal mask the exporter can trace
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(_DecoderGraph(causal_lm).eval(), example, str(path), input_names=inputs,
                              output_names=outputs, dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    except Exception as err:  # the exporter raises many types; the caller needs one, with the cause
        raise OnnxDecoderError(f"exporting the rationalizer's decoder to ONNX failed: {type(err).__name__}: {err}"
                               ) from err
    finally:
        config._attn_implementation = attention
    return path


class OnnxDecoder:
    """Greedy decoding of a causal LM whose layers run on onnxruntime.

    embed: the model's token embedding; prompt_embeddings(input_ids, audio_features, audio_mask) -> (1, T, H):
    the prompt's embeddings with the audio prefix (compact.AudioPrefixLlamaForCausalLM.prompt_embeddings).
    """

    def __init__(self, session, embed: nn.Embedding, prompt_embeddings, config):
        self.session, self.embed, self.prompt_embeddings = session, embed, prompt_embeddings
        self.kv_heads, self.head_dim = _cache_shape(config)
        self.inputs, _ = _names(config.num_hidden_layers)

    @classmethod
    def load(cls, path: str | Path, causal_lm: nn.Module, threads: int | None = None) -> "OnnxDecoder":
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise OnnxDecoderError(f"the onnxruntime backend needs onnxruntime: {err}") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own exception types
            raise OnnxDecoderError(f"{path}: onnxruntime cannot load it ({type(err).__name__}: {err})") from None
        return cls(session, causal_lm.get_input_embeddings(), causal_lm.prompt_embeddings, causal_lm.config)

    def _empty_past(self) -> list[np.ndarray]:
        return [np.zeros((1, self.kv_heads, 0, self.head_dim), np.float32)] * len(self.inputs[2:])

    def _step(self, embeds: torch.Tensor, start: int, past: list[np.ndarray]) -> tuple[torch.Tensor, list]:
        feed = {"inputs_embeds": embeds.detach().numpy().astype(np.float32, copy=False),
                "position_ids": np.arange(start, start + embeds.shape[1], dtype=np.int64)[None]}
        feed |= dict(zip(self.inputs[2:], past))
        logits, *present = self.session.run(None, feed)
        return torch.from_numpy(logits), present

    @torch.no_grad()
    def generate(self, input_ids: torch.LongTensor, audio_features: torch.Tensor, audio_mask: torch.Tensor,
                 max_new_tokens: int, eos_token_ids: list[int], logits_processor: LogitsProcessorList | None = None,
                 stopping_criteria: StoppingCriteriaList | None = None) -> torch.LongTensor:
        """input_ids (1, T) -> (1, T + new), as `generate(do_sample=False)` returns them: each step's scores pass
        the processors, the argmax is appended, and decoding stops at an EOS token, a criterion or the limit."""
        if input_ids.shape[0] != 1:
            raise ValueError(f"the onnxruntime decoder generates one sequence at a time, not {input_ids.shape[0]}")
        processors = logits_processor or LogitsProcessorList()
        criteria = stopping_criteria or StoppingCriteriaList()
        embeds = self.prompt_embeddings(input_ids, audio_features, audio_mask)
        past = self._empty_past()
        ids, start = input_ids, 0
        for _ in range(max_new_tokens):
            logits, past = self._step(embeds, start, past)
            scores = processors(ids, logits)
            token = int(scores[0].argmax())
            start = ids.shape[1]
            ids = torch.cat([ids, torch.tensor([[token]], dtype=ids.dtype)], dim=1)
            if token in eos_token_ids or bool(criteria(ids, scores).all()):
                break
            embeds = self.embed(ids[:, -1:])
        return ids


def cached_decoder(causal_lm_factory, key_parts: list[str | bytes], cache_dir: str | Path | None = None) -> Path:
    """The path of the exported decoder for this model, exporting it first when the cache has none.

    causal_lm_factory() -> the plain causal LM to export (called only on a cache miss); key_parts: what identifies
    the weights (e.g. the adapter file's bytes and the base model's name). The export is written to a temporary
    folder and renamed into place, so concurrent processes never read half a file.
    """
    digest = hashlib.sha256(EXPORT_VERSION.encode())
    for part in key_parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
    cache = Path(cache_dir) if cache_dir else Path(os.environ.get("ORTHOEPY_CACHE",
                                                                  Path.home() / ".cache" / "orthoepy"))
    target = cache / "rationalizer-onnx" / digest.hexdigest()[:16]
    if (target / FILE).is_file():
        return target / FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        export_decoder(causal_lm_factory(), scratch / FILE)
        try:
            scratch.rename(target)
        except OSError:  # another process finished first: use its export
            if not (target / FILE).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target / FILE
