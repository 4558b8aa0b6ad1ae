"""Typed records that carry front-end features between modules."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FeatureBlock:
    """Per-phone features of one group: values[i] belongs to canonical phone i; names say what each column is."""

    names: tuple[str, ...]
    values: np.ndarray  # (n_phones, len(names)), float32

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != len(self.names):
            raise ValueError(f"values of shape {self.values.shape} do not match {len(self.names)} names")


@dataclass(frozen=True)
class HeardPhone:
    """What the phone recogniser heard most in a canonical phone's segment: raw material for diagnosis."""

    base: str  # ARPAbet
    probability: float
    nbest: tuple[tuple[str, float], ...] = ()  # the most likely phones (ARPAbet, probability), best first


@dataclass(frozen=True)
class GroupOutput:
    """What one feature group extracts from one utterance."""

    block: FeatureBlock
    heard: list[HeardPhone] | None = None  # only the posterior group fills this
    frame_summary: dict[str, float] = field(default_factory=dict)  # utterance-level values the pool may reuse
