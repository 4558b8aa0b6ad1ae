"""Typed records the rationalizer reads: the scores and diagnosis of one utterance, whoever produced them.

A ScoreSheet comes from the scorer's output (fusion builds it from an Assessment) or from human labels
(training targets, gold-agreement evaluation); the rationalizer never sees either source's own types.
"""
from __future__ import annotations

from dataclasses import dataclass

SENTENCE_ASPECTS = ("accuracy", "completeness", "fluency", "prosodic", "total")
# The prompt's stand-in for one word of audio: an existing single token of SmolLM2's vocabulary that never occurs
# in prose, so no embedding has to be added; the projector's output replaces its embedding (rationalizer.compact).
AUDIO_PLACEHOLDER = "<filename>"


@dataclass(frozen=True)
class PhoneScore:
    symbol: str  # canonical ARPAbet, stress digit allowed ("AH0"); rationales name it without the digit
    accuracy: float  # 0-2
    heard: str | None = None  # ARPAbet the recogniser heard most in this phone's segment, when known


@dataclass(frozen=True)
class WordScore:
    text: str
    accuracy: float  # 0-10
    stress: float  # 0-10
    total: float  # 0-10
    phones: tuple[PhoneScore, ...]
    error_type: str = "None"  # fusion.diagnosis vocabulary: None, Omission, Mispronunciation, UnexpectedBreak, ...
    heard_word: str | None = None  # another word the verification heard in this word's place (read as another word)


@dataclass(frozen=True)
class ScoreSheet:
    text: str
    sentence: dict[str, float]  # SENTENCE_ASPECTS -> 0-10
    words: tuple[WordScore, ...]

    def __post_init__(self) -> None:
        missing = [a for a in SENTENCE_ASPECTS if a not in self.sentence]
        if missing:
            raise ValueError(f"score sheet lacks sentence aspect(s) {missing}")


def base_phone(symbol: str) -> str:
    """ARPAbet without its stress digit: "AH0" -> "AH"."""
    return symbol.rstrip("012")
