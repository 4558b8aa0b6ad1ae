"""Likelihood-ratio GOP: the forced-aligned phone's acoustic score against the free phone loop's."""
from __future__ import annotations

import math

import numpy as np

from ..alignment import Alignment, LoopPhone, PhoneSegment
from ..audio import Audio
from .records import FeatureBlock, GroupOutput

_NAMES: tuple[str, ...] = (
    "aligned_lik_per_frame",  # path_score / frames (nat)
    "loop_lik_per_frame",  # free loop's score over the same span, per frame
    "lik_gop",  # aligned - loop: the classic likelihood-ratio GOP
    "loop_agreement",  # share of the span where the loop heard the canonical phone
    "loop_silence_share",  # share of the span the loop heard as silence
    "loop_phone_count",  # distinct loop phones overlapping the span
    "log_frames",
    "fallback",
    "lik_gop_minus_utt_mean",  # relative to the utterance's other phones
)
_SCORE_CLIP = 50.0  # nat per frame; bounds outliers from very short segments


class LikelihoodGOP:
    """Per-phone features from the aligner's scores and the free phone loop."""

    name = "likelihood_gop"

    def names(self) -> tuple[str, ...]:
        return _NAMES

    def extract(self, audio: Audio, alignment: Alignment) -> GroupOutput:
        rows = [_phone_row(seg, alignment) for seg in alignment.segments]
        values = np.array(rows, dtype=np.float64).reshape(len(rows), len(_NAMES) - 1)
        gop = values[:, 2]
        relative = gop - gop.mean() if len(gop) else gop
        values = np.column_stack([values, relative])
        values = np.nan_to_num(values, nan=0.0, posinf=_SCORE_CLIP, neginf=-_SCORE_CLIP).astype(np.float32)
        return GroupOutput(FeatureBlock(_NAMES, values), frame_summary=_summary(values, alignment, audio))


def _phone_row(segment: PhoneSegment, alignment: Alignment) -> list[float]:
    frames = max(1, segment.frames)
    loop_per_frame, agreement, silence, distinct = _loop_over(segment, alignment.loop)
    aligned = segment.path_score / frames
    if alignment.fallback:  # a uniform fallback has no aligned score: claim nothing either way
        aligned = loop_per_frame
    aligned = float(np.clip(aligned, -_SCORE_CLIP, _SCORE_CLIP))
    return [aligned, loop_per_frame, aligned - loop_per_frame, agreement, silence, float(distinct),
            math.log(frames), float(alignment.fallback)]


def _loop_over(segment: PhoneSegment, loop: list[LoopPhone]) -> tuple[float, float, float, int]:
    """Overlap-weighted loop score per frame, agreement share, silence share and distinct phones."""
    span = segment.end - segment.start
    score = agree = silence = 0.0
    heard: set[str] = set()
    for phone in loop:
        overlap = min(phone.end, segment.end) - max(phone.start, segment.start)
        if overlap <= 0 or phone.end <= phone.start:
            continue
        per_frame = phone.score / max(1.0, (phone.end - phone.start) / 0.01)
        score += per_frame * overlap / 0.01
        agree += overlap if phone.base == segment.phone.base else 0.0
        silence += overlap if phone.base == "SIL" else 0.0
        heard.add(phone.base)
    if span <= 0:
        return 0.0, 0.0, 0.0, len(heard)
    per_frame = float(np.clip(score / max(1.0, span / 0.01), -_SCORE_CLIP, _SCORE_CLIP))
    return per_frame, agree / span, silence / span, len(heard)


def _summary(values: np.ndarray, alignment: Alignment, audio: Audio) -> dict[str, float]:
    speech = [p for p in alignment.loop if p.base != "SIL"]
    speech_time = max(1e-3, alignment.speech_end - alignment.speech_start)
    n = len(values)
    return {
        "loop_agreement": float(values[:, 3].mean()) if n else 0.0,
        "mean_lik_gop": float(values[:, 2].mean()) if n else 0.0,
        "min_lik_gop": float(values[:, 2].min()) if n else 0.0,
        "loop_phone_rate": len(speech) / speech_time,
        "pause_count": float(len(alignment.pauses)),
        "pause_time": float(sum(end - start for start, end in alignment.pauses)),
        "fallback": float(alignment.fallback),
        "speech_share": speech_time / max(1e-3, audio.duration),
    }
