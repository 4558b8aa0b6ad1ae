"""Per-phone prosody: duration, pitch, intensity and the pauses around each canonical phone.

Pitch and intensity contours are computed once per utterance with Praat (parselmouth) and then
sliced per aligned segment; their utterance-level summaries go to `frame_summary` for the pool.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import parselmouth

from ..alignment import Alignment, PhoneSegment
from ..audio import Audio
from .records import FeatureBlock, GroupOutput

FRAME_STEP_S = 0.01
PITCH_FLOOR_HZ = 75.0
PITCH_CEILING_HZ = 500.0  # speechocean762 includes children
INTENSITY_MIN_PITCH_HZ = 100.0  # Praat window of 32 ms: short enough for single phones
INTENSITY_FLOOR_DB = 0.0  # Praat reports -300 dB for digital silence
SEMITONE_REFERENCE_HZ = 100.0
MIN_DURATION_S = 1e-3
ENERGY_EPS = 1e-10

PHONE_FEATURE_NAMES: tuple[str, ...] = (
    "dur_s", "dur_log", "dur_rel_utt", "dur_rel_class", "dur_share_of_word",
    "f0_mean_st", "f0_rel_median_st", "f0_range_st", "f0_slope_st_per_s", "f0_voiced_ratio",
    "int_mean_db", "int_max_db", "int_std_db", "int_rel_utt_db",
    "zero_crossing_rate", "hf_emphasis_db",
    "pause_before_s", "pause_after_s",
)
SUMMARY_KEYS: tuple[str, ...] = (
    "f0_median_hz", "f0_mean_st", "f0_std_st", "f0_iqr_st", "f0_range_st", "f0_slope_st_per_s",
    "f0_voiced_ratio", "f0_mean_abs_delta_st",
    "int_mean_db", "int_std_db", "int_range_db", "int_max_db", "int_slope_db_per_s", "int_mean_abs_delta_db",
)


@dataclass(frozen=True)
class Contours:
    """Frame-level pitch (semitones re 100 Hz, 0 where unvoiced) and intensity (dB) of one utterance."""

    pitch_times: np.ndarray
    semitones: np.ndarray
    voiced: np.ndarray  # bool, same length as semitones
    intensity_times: np.ndarray
    intensity_db: np.ndarray


# ---------------------------------------------------------------- numeric helpers (shared with the pool)


def safe_ratio(numerator: float, denominator: float, default: float = 0.0) -> float:
    return float(numerator / denominator) if denominator > 0 else default


def linear_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y over x; 0 with fewer than two distinct x values."""
    if len(x) < 2:
        return 0.0
    x_centred = x - x.mean()
    return safe_ratio(float(np.dot(x_centred, y - y.mean())), float(np.dot(x_centred, x_centred)))


def mean_or_zero(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


def std_or_zero(values: np.ndarray) -> float:
    return float(values.std()) if len(values) else 0.0


def spread(values: np.ndarray, low: float, high: float) -> float:
    """Distance between two percentiles; 0 when empty."""
    if not len(values):
        return 0.0
    lo, hi = np.percentile(values, [low, high])
    return float(hi - lo)


def word_boundary_gaps(segments: list[PhoneSegment]) -> list[tuple[int, float]]:
    """(index of the word's first segment, silence before it) at each word boundary, from segment gaps."""
    return [
        (i, max(0.0, cur.start - prev.end))
        for i, (prev, cur) in enumerate(zip(segments, segments[1:]), start=1)
        if prev.phone.word_index != cur.phone.word_index
    ]


def segment_durations(segments: list[PhoneSegment]) -> np.ndarray:
    return np.array([max(s.end - s.start, MIN_DURATION_S) for s in segments], dtype=np.float64)


# ---------------------------------------------------------------- contours


def hz_to_semitones(hz: np.ndarray) -> np.ndarray:
    """Semitones re 100 Hz; 0 where hz is 0 (unvoiced)."""
    return np.where(hz > 0, 12.0 * np.log2(np.maximum(hz, 1.0) / SEMITONE_REFERENCE_HZ), 0.0)


def compute_contours(audio: Audio) -> Contours:
    sound = parselmouth.Sound(audio.samples.astype(np.float64), audio.sample_rate)
    try:
        pitch = sound.to_pitch(time_step=FRAME_STEP_S, pitch_floor=PITCH_FLOOR_HZ, pitch_ceiling=PITCH_CEILING_HZ)
        hz = pitch.selected_array["frequency"]
        pitch_times = pitch.xs()
    except parselmouth.PraatError:  # too short for one analysis window
        hz, pitch_times = np.zeros(0), np.zeros(0)
    try:
        intensity = sound.to_intensity(minimum_pitch=INTENSITY_MIN_PITCH_HZ, time_step=FRAME_STEP_S)
        intensity_db = np.maximum(intensity.values[0], INTENSITY_FLOOR_DB)
        intensity_times = intensity.xs()
    except parselmouth.PraatError:
        intensity_db, intensity_times = np.zeros(0), np.zeros(0)
    voiced = hz > 0
    semitones = hz_to_semitones(hz)
    return Contours(pitch_times, semitones, voiced, intensity_times, intensity_db)


def frame_slice(times: np.ndarray, start: float, end: float) -> slice:
    """Frames centred in [start, end); the nearest single frame when the span holds none."""
    if not len(times):
        return slice(0, 0)
    lo, hi = np.searchsorted(times, [start, end])
    if hi > lo:
        return slice(int(lo), int(hi))
    nearest = int(np.clip(np.searchsorted(times, 0.5 * (start + end)), 0, len(times) - 1))
    return slice(nearest, nearest + 1)


def summarise_contours(contours: Contours, start: float, end: float) -> dict[str, float]:
    """Utterance-level pitch and intensity statistics over the speech region [start, end]."""
    pitch_span = frame_slice(contours.pitch_times, start, end)
    voiced = contours.voiced[pitch_span]
    st = contours.semitones[pitch_span][voiced]
    st_times = contours.pitch_times[pitch_span][voiced]
    adjacent_voiced = voiced[1:] & voiced[:-1]
    st_deltas = np.abs(np.diff(contours.semitones[pitch_span]))[adjacent_voiced]
    db = contours.intensity_db[frame_slice(contours.intensity_times, start, end)]
    db_times = contours.intensity_times[frame_slice(contours.intensity_times, start, end)]
    return {
        "f0_median_hz": float(SEMITONE_REFERENCE_HZ * 2 ** (np.median(st) / 12)) if len(st) else 0.0,
        "f0_mean_st": mean_or_zero(st),
        "f0_std_st": std_or_zero(st),
        "f0_iqr_st": spread(st, 25, 75),
        "f0_range_st": spread(st, 5, 95),
        "f0_slope_st_per_s": linear_slope(st_times, st),
        "f0_voiced_ratio": mean_or_zero(voiced.astype(np.float64)),
        "f0_mean_abs_delta_st": mean_or_zero(st_deltas),
        "int_mean_db": mean_or_zero(db),
        "int_std_db": std_or_zero(db),
        "int_range_db": spread(db, 5, 95),
        "int_max_db": float(db.max()) if len(db) else 0.0,
        "int_slope_db_per_s": linear_slope(db_times, db),
        "int_mean_abs_delta_db": mean_or_zero(np.abs(np.diff(db))),
    }


# ---------------------------------------------------------------- per-phone features


def _duration_features(segments: list[PhoneSegment]) -> np.ndarray:
    durations = segment_durations(segments)
    is_vowel = np.array([s.phone.is_vowel for s in segments], dtype=bool)
    class_mean = np.where(is_vowel, mean_or_zero(durations[is_vowel]), mean_or_zero(durations[~is_vowel]))
    word_index = np.array([s.phone.word_index for s in segments])
    word_total = np.bincount(word_index, weights=durations)[word_index]
    return np.column_stack([
        durations,
        np.log(durations),
        durations / durations.mean(),
        durations / class_mean,
        durations / word_total,
    ])


def _pitch_features(contours: Contours, segment: PhoneSegment, utterance_median_st: float) -> list[float]:
    span = frame_slice(contours.pitch_times, segment.start, segment.end)
    voiced = contours.voiced[span]
    st = contours.semitones[span][voiced]
    if not len(st):
        return [0.0] * 5
    return [
        float(st.mean()),
        float(st.mean() - utterance_median_st),
        float(st.max() - st.min()),
        linear_slope(contours.pitch_times[span][voiced], st),
        float(voiced.mean()),
    ]


def _intensity_features(contours: Contours, segment: PhoneSegment, utterance_mean_db: float) -> list[float]:
    db = contours.intensity_db[frame_slice(contours.intensity_times, segment.start, segment.end)]
    if not len(db):
        return [0.0] * 4
    return [float(db.mean()), float(db.max()), float(db.std()), float(db.mean() - utterance_mean_db)]


def _spectral_features(audio: Audio, segment: PhoneSegment) -> list[float]:
    """Zero-crossing rate and first-difference energy gain: cheap cues of frication and spectral tilt."""
    lo = int(segment.start * audio.sample_rate)
    x = audio.samples[lo:max(int(segment.end * audio.sample_rate), lo + 2)].astype(np.float64)
    if len(x) < 2:
        return [0.0, 0.0]
    crossings = float(np.mean(np.signbit(x[1:]) != np.signbit(x[:-1])))
    gain = (np.mean(np.diff(x) ** 2) + ENERGY_EPS) / (np.mean(x ** 2) + ENERGY_EPS)
    return [crossings, float(10.0 * np.log10(gain))]


def _pause_features(segments: list[PhoneSegment]) -> np.ndarray:
    """Silence before/after each phone; non-zero only across word boundaries (leading/trailing silence excluded)."""
    pauses = np.zeros((len(segments), 2))
    for index, gap in word_boundary_gaps(segments):
        pauses[index, 0] = gap
        pauses[index - 1, 1] = gap
    return pauses


def speech_span(alignment: Alignment, audio: Audio) -> tuple[float, float]:
    if alignment.speech_end > alignment.speech_start:
        return alignment.speech_start, alignment.speech_end
    if alignment.segments:
        return alignment.segments[0].start, alignment.segments[-1].end
    return 0.0, audio.duration


class ProsodyFeatures:
    """Duration, F0, intensity, spectral and pause features for each canonical phone."""

    name = "prosody"

    def names(self) -> tuple[str, ...]:
        return PHONE_FEATURE_NAMES

    def extract(self, audio: Audio, alignment: Alignment) -> GroupOutput:
        contours = compute_contours(audio)
        summary = summarise_contours(contours, *speech_span(alignment, audio))
        segments = alignment.segments
        if not segments:
            return GroupOutput(FeatureBlock(PHONE_FEATURE_NAMES, np.zeros((0, len(PHONE_FEATURE_NAMES)), np.float32)),
                               frame_summary=summary)
        median_st = float(hz_to_semitones(np.array(summary["f0_median_hz"])))
        acoustic = np.array([
            _pitch_features(contours, s, median_st)
            + _intensity_features(contours, s, summary["int_mean_db"])
            + _spectral_features(audio, s)
            for s in segments
        ])
        values = np.hstack([_duration_features(segments), acoustic, _pause_features(segments)])
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
        return GroupOutput(FeatureBlock(PHONE_FEATURE_NAMES, values), frame_summary=summary)
