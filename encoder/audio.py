"""Audio input: decode, down-mix, resample to 16 kHz and validate a learner's recording."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

SAMPLE_RATE = 16_000
MIN_DURATION_S = 0.3
# documented limit: a read paragraph of up to 5 minutes (aligned in chunks); ORTHOEPY_MAX_AUDIO_S changes it
MAX_DURATION_S = float(os.environ.get("ORTHOEPY_MAX_AUDIO_S", 300.0))
SILENCE_PEAK = 1e-4  # peak amplitude (full scale = 1.0) below which a recording counts as silent
# quality warnings (the recording is scored, with a note): speechocean762's 16 kHz readings peak at 0.06-1.0 with
# no sample at full scale (525 of them checked)
QUIET_PEAK = 0.02  # about -34 dBFS
CLIPPED_LEVEL = 0.999  # a sample at least this loud (full scale = 1.0) is clipped...
CLIPPED_SHARE = 0.001  # ...and a recording with more than this share of them is
# share of the spectrum's power (Welch, 80 Hz-8 kHz) above 4 kHz under which a recording was band-limited to the
# telephone band before it reached 16 kHz: 1,312 speechocean762 readings have at least 5.3e-6, the same readings
# taken to 8 kHz and back at most 2.7e-8
HIGH_BAND_SHARE_MIN = 1e-6


class AudioError(ValueError):
    """The input cannot be assessed; the message says why, in words a user can act on."""


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at 16 kHz; what the input was like before resampling."""

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE
    source_rate: int = SAMPLE_RATE  # the input's sample rate, Hz
    clipped_share: float = 0.0  # share of input samples at full scale (CLIPPED_LEVEL), 0-1

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def to_int16_bytes(self) -> bytes:
        return (np.clip(self.samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def load_audio(source: str | Path | bytes | np.ndarray, sample_rate: int | None = None) -> Audio:
    """Read a path, encoded bytes or a sample array (with its sample rate) into validated 16 kHz mono audio."""
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioError("a sample array needs its sample_rate")
        samples, rate = source, int(sample_rate)
    else:
        samples, rate = _decode(source)
    return from_array(samples, rate)


def from_array(samples: np.ndarray, sample_rate: int) -> Audio:
    samples = _to_float_mono(np.asarray(samples))
    if sample_rate <= 0:
        raise AudioError(f"sample rate must be positive, got {sample_rate}")
    if not np.all(np.isfinite(samples)):
        raise AudioError("audio contains NaN or infinite samples")
    clipped = float(np.mean(np.abs(samples) >= CLIPPED_LEVEL))
    if sample_rate != SAMPLE_RATE and samples.size:
        samples = soxr.resample(samples, sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    _check_duration(samples.size / SAMPLE_RATE)
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise AudioError("audio is silent (no sample above -80 dBFS)")
    return Audio(np.clip(samples, -1.0, 1.0).astype(np.float32), source_rate=int(sample_rate), clipped_share=clipped)


def high_band_share(audio: Audio) -> float:
    """Share (0-1) of the power between 80 Hz and 8 kHz that lies above 4 kHz (Welch's method, 32 ms windows)."""
    from scipy.signal import welch

    if audio.samples.size < 512:
        return 1.0
    freqs, power = welch(audio.samples, fs=audio.sample_rate, nperseg=512)
    total = float(power[freqs >= 80].sum())
    return float(power[freqs >= 4000].sum()) / total if total > 0 else 1.0


def quality_warnings(audio: Audio) -> list[str]:
    """Properties of a usable recording that make its scores less reliable, in words a learner can act on."""
    warnings = []
    if audio.source_rate < SAMPLE_RATE:
        warnings.append(f"the recording was made at {audio.source_rate / 1000:g} kHz; below 16 kHz some sounds "
                        f"(S, F, TH) lose what tells them apart, so phone scores are less reliable")
    elif high_band_share(audio) < HIGH_BAND_SHARE_MIN:
        warnings.append("the recording has no sound above 4 kHz (telephone quality, resampled to 16 kHz); some "
                        "sounds (S, F, TH) lose what tells them apart, so phone scores are less reliable")
    if audio.clipped_share > CLIPPED_SHARE:
        warnings.append(f"the recording is clipped ({100 * audio.clipped_share:.1f}% of samples at full scale): "
                        f"lower the input level or move away from the microphone and record again")
    if audio.samples.size and float(np.max(np.abs(audio.samples))) < QUIET_PEAK:
        warnings.append("the recording is very quiet: move closer to the microphone or raise the input level")
    return warnings


BYTES_LABEL = "the uploaded data"  # how errors name audio given as bytes (callers may put a file name in its place)


def _decode(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise AudioError("audio is empty (0 bytes)")
        handle, label = io.BytesIO(source), BYTES_LABEL
    else:
        path = Path(source)
        if path.is_dir():
            raise AudioError(f"{path} is a folder, not an audio file")
        if not path.is_file():
            raise AudioError(f"audio file not found: {path}")
        if path.stat().st_size == 0:
            raise AudioError(f"audio file is empty: {path}")
        handle, label = path, str(path)
    try:
        samples, rate = soundfile.read(handle, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as err:
        reason = str(err).split(": ")[-1]  # libsndfile's message names the file object; keep only the reason
        raise AudioError(f"{label} is not readable audio (WAV, FLAC, OGG or MP3 expected): {reason}") from None
    return samples, rate


def _to_float_mono(samples: np.ndarray) -> np.ndarray:
    if samples.size == 0:
        raise AudioError(f"audio is too short: no samples (at least {MIN_DURATION_S} s needed)")
    if samples.ndim == 2:
        # soundfile gives (frames, channels); a caller's array may come channels-first
        samples = samples.mean(axis=1) if samples.shape[0] >= samples.shape[1] else samples.mean(axis=0)
    if samples.ndim != 1:
        raise AudioError(f"audio must be 1-D (mono) or 2-D (frames x channels), got shape {samples.shape}")
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype)
        return (samples.astype(np.float64) / max(abs(info.min), info.max)).astype(np.float32)
    if not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(f"audio samples must be int or float, got {samples.dtype}")
    return samples.astype(np.float32)


def _check_duration(seconds: float) -> None:
    if seconds < MIN_DURATION_S:
        raise AudioError(f"audio is too short: {seconds:.2f} s (at least {MIN_DURATION_S} s needed)")
    if seconds > MAX_DURATION_S:
        raise AudioError(f"audio is too long: {seconds:.1f} s (at most {MAX_DURATION_S:.0f} s)")
