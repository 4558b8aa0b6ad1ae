"""The HierarchicalScorer as an ONNX graph, and an onnxruntime backend with train.predict's semantics.

`export_onnx` traces the network (legacy TorchScript exporter) with dynamic batch, phone and word axes and checks
onnxruntime against torch right away. The file records a fingerprint of the weights it was exported from, so a
model directory whose model.pt changed after the export can be told apart (`weights_fingerprint`).
"""
from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..phoneset import PHONES, WORD_POSITIONS
from .data import N_STRESS, ScorerBatch, ScorerExample, collate
from .model import HierarchicalScorer, ScorerConfig
from .train import BatchScores, UtterancePrediction, predict_with

ONNX_FILE = "scorer.onnx"
OPSET = 17
PARITY_TOLERANCE = 1e-4
FINGERPRINT_KEY = "orthoepy.weights_sha256"
PHONE_INPUTS = ("features", "phone_ids", "stress", "positions", "word_ids", "phone_mask")
OUTPUTS = ("phone", "word", "sentence")


class OnnxParityError(RuntimeError):
    """The exported graph's outputs differ from the torch model's."""


class _ScoresOnly(nn.Module):
    """The scorer returning a tuple of its three score tensors (ONNX outputs must be tensors)."""

    def __init__(self, model: HierarchicalScorer):
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(*inputs)
        return out.phone, out.word, out.sentence


def export_onnx(model: HierarchicalScorer, path: str | Path) -> float:
    """Write `model` (put in eval mode) to `path`; return the max abs difference to torch on a sample batch.

    Raises OnnxParityError when onnxruntime differs from torch by more than PARITY_TOLERANCE; `path` is only
    written once the graph passed that check (a model directory never holds an unchecked scorer.onnx).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    unchecked = path.with_name(path.name + ".unchecked")
    try:
        difference = _export_and_check(model, unchecked)
        unchecked.replace(path)
    finally:
        unchecked.unlink(missing_ok=True)
    return difference


def _export_and_check(model: HierarchicalScorer, path: Path) -> float:
    model.eval()
    names = input_names(model.config)
    # trace on one shape, verify on others: a size baked into the graph would show up as a divergence
    trace_batch = collate(synthetic_examples(model.config, n_words=(4, 2), seed=0))
    with torch.no_grad(), warnings.catch_warnings():
        # ESPnet's relative positional encoding checks its table covers the length (5000 positions): fine to freeze
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"espnet\.nets\.pytorch_backend")
        # the legacy exporter is deliberate (it handles this model's dynamic shapes); its deprecation notice is noise
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX export", DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning, r"torch\.onnx")
        torch.onnx.export(
            _ScoresOnly(model), tuple(trace_batch.model_inputs()[n] for n in names), str(path), dynamo=False,
            opset_version=OPSET, input_names=list(names), output_names=list(OUTPUTS), dynamic_axes=_dynamic_axes(names),
        )
    _record_fingerprint(path, weights_fingerprint(model))
    return _check_parity(model, OnnxScorerModel(path, providers=["CPUExecutionProvider"]))


def input_names(config: ScorerConfig) -> tuple[str, ...]:
    """The graph's inputs: utterance_features only where the model fuses handcrafted features."""
    return PHONE_INPUTS + ("word_mask",) + (("utterance_features",) if config.n_utterance_features > 0 else ())


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 over the state dict's names and tensor bytes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def onnx_fingerprint(path: str | Path) -> str | None:
    """The weights fingerprint recorded in an exported file (None if it has none)."""
    import onnx

    props = onnx.load(str(path), load_external_data=False).metadata_props
    return next((p.value for p in props if p.key == FINGERPRINT_KEY), None)


def max_abs_difference(model: HierarchicalScorer, onnx_model: "OnnxScorerModel", examples: Sequence[ScorerExample]
                       ) -> float:
    """Largest |torch - onnxruntime| over the real (unpadded) outputs of a batch of `examples`."""
    batch = collate(examples)
    with torch.no_grad():
        out = model.eval()(**batch.model_inputs())
    expected = (out.phone.numpy(), out.word.numpy(), out.sentence.numpy())
    phone_mask, word_mask = batch.phone_mask.numpy(), batch.word_mask.numpy()
    real = (phone_mask, word_mask, np.ones(len(examples), bool))
    return max(float(np.abs(ours[keep] - theirs[keep]).max())
               for ours, theirs, keep in zip(onnx_model.run(batch), expected, real))


class OnnxScorerModel:
    """An exported scorer in an onnxruntime session; `predict` matches `train.predict`."""

    def __init__(self, path: str | Path, providers: Sequence[str] | None = None, threads: int | None = None):
        import onnxruntime as ort  # deferred: only ONNX users pay for the import

        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(str(self.path), options, providers=list(providers or default_providers()))
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.fingerprint = self.session.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY)

    def run(self, batch: ScorerBatch) -> BatchScores:
        phone, word, sentence = self.session.run(list(OUTPUTS), _model_inputs(batch, self.input_names))
        return phone, word, sentence

    def predict(self, examples: Sequence[ScorerExample], batch_size: int = 64) -> list[UtterancePrediction]:
        return predict_with(self.run, examples, batch_size)


def default_providers() -> list[str]:
    """CUDA first where this onnxruntime build has it, then CPU."""
    import onnxruntime as ort

    return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in ort.get_available_providers() else []) + [
        "CPUExecutionProvider"]


def synthetic_examples(config: ScorerConfig, n_words: Sequence[int], seed: int) -> list[ScorerExample]:
    """Random inputs of the model's shapes, one example per entry of n_words (labels NaN)."""
    rng = np.random.default_rng(seed)
    return [_synthetic_example(config, w, rng, f"synthetic{i}") for i, w in enumerate(n_words)]


def _synthetic_example(config: ScorerConfig, n_words: int, rng: np.random.Generator, utt_id: str) -> ScorerExample:
    word_ids = np.repeat(np.arange(n_words), rng.integers(1, 5, n_words))
    n = len(word_ids)
    return ScorerExample(
        utt_id=utt_id, features=rng.normal(size=(n, config.phone_feature_dim)).astype(np.float32),
        feature_names=tuple(f"synthetic.{j}" for j in range(config.phone_feature_dim)),
        phone_ids=rng.integers(0, len(PHONES), n), stress=rng.integers(0, N_STRESS, n),
        positions=rng.integers(0, len(WORD_POSITIONS), n), word_ids=word_ids.astype(np.int64),
        phone_labels=np.full(n, np.nan, np.float32), word_labels=np.full((n_words, 3), np.nan, np.float32),
        sentence_labels=np.full(5, np.nan, np.float32),
        utterance_features=rng.normal(size=config.n_utterance_features).astype(np.float32),
    )


def _model_inputs(batch: ScorerBatch, names: Sequence[str]) -> dict[str, np.ndarray]:
    inputs = batch.model_inputs()
    return {name: inputs[name].numpy() for name in names}


def _dynamic_axes(names: Sequence[str]) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "phones"} for name in PHONE_INPUTS}
    axes["word_mask"] = {0: "batch", 1: "words"}
    if "utterance_features" in names:
        axes["utterance_features"] = {0: "batch"}
    axes.update(phone={0: "batch", 1: "phones"}, word={0: "batch", 1: "words"}, sentence={0: "batch"})
    return axes


def _record_fingerprint(path: Path, fingerprint: str) -> None:
    import onnx

    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, {FINGERPRINT_KEY: fingerprint})
    onnx.save(graph, str(path))


def _check_parity(model: HierarchicalScorer, onnx_model: OnnxScorerModel) -> float:
    samples = [synthetic_examples(model.config, n_words=(7, 1, 3), seed=1), synthetic_examples(model.config, (5,), 2)]
    difference = max(max_abs_difference(model, onnx_model, examples) for examples in samples)
    if not difference <= PARITY_TOLERANCE:  # `not <=` so that NaN fails too
        raise OnnxParityError(f"{onnx_model.path}: onnxruntime differs from torch by {difference:.3g} "
                              f"(tolerance {PARITY_TOLERANCE:g}); the export is not usable")
    return difference
