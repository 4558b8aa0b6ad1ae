"""Forced alignment of a recording to its canonical phones (pocketsphinx en-us acoustic model)."""
from __future__ import annotations

from dataclasses import dataclass

from .phoneset import CanonicalPhone


@dataclass(frozen=True)
class PhoneSegment:
    """One canonical phone located in time, with the aligner's scores for it."""

    phone: CanonicalPhone
    start: float  # seconds
    end: float  # seconds, > start
    frames: int  # 10 ms frames
    path_score: float  # aligned log-likelihood (nat) over the segment, frame-normalised by the aligner


@dataclass(frozen=True)
class LoopPhone:
    """One phone of the free phone loop (what the recogniser heard without the text)."""

    base: str  # ARPAbet, or "SIL"
    start: float
    end: float
    score: float  # log-likelihood (nat)


@dataclass(frozen=True)
class Alignment:
    segments: list[PhoneSegment]  # one per canonical phone, in order
    loop: list[LoopPhone]  # free phone loop over the whole recording
    fallback: bool  # True when the forced alignment failed and segments are a fallback
    note: str  # why the fallback was used, "" otherwise
    speech_start: float  # first aligned speech, seconds
    speech_end: float
