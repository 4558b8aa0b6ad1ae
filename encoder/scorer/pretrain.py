"""Multi-task pretraining (MTP) of the phone encoder: mask phones, reconstruct them from their context.

A masked phone loses its projected features and its identity embedding (both replaced by one learned vector)
and keeps stress and word position. From the encoder state at that position, heads predict the phone's identity,
its articulatory traits, and its (standardised) duration, pitch and energy, whichever columns the features have.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..phoneset import BACKNESS, HEIGHTS, MANNERS, PHONES, PLACES, traits
from .data import ScorerBatch
from .model import PhoneEncoder, ScorerConfig

TRAIT_CLASSES: dict[str, int] = {"place": len(PLACES), "manner": len(MANNERS), "voiced": 2,
                                 "height": len(HEIGHTS), "backness": len(BACKNESS)}
# first name found wins: speaker-relative measures before absolute ones
PROSODY_TARGETS: dict[str, tuple[str, ...]] = {
    "duration": ("prosody.dur_log",),
    "pitch": ("prosody.f0_rel_median_st", "prosody.f0_mean_st"),
    "energy": ("prosody.int_rel_utt_db", "prosody.int_mean_db"),
}


def trait_table() -> torch.Tensor:
    """(39, 5) long: each phone's class index per trait, in TRAIT_CLASSES order."""
    rows = []
    for phone in PHONES:
        t = traits(phone)
        rows.append([PLACES.index(t.place), MANNERS.index(t.manner), int(t.voiced),
                     HEIGHTS.index(t.height), BACKNESS.index(t.backness)])
    return torch.tensor(rows, dtype=torch.long)


def prosody_columns(feature_names: tuple[str, ...]) -> dict[str, int]:
    """Column of each regression target present in the features; targets whose group is off are left out."""
    found = {}
    for target, candidates in PROSODY_TARGETS.items():
        column = next((feature_names.index(c) for c in candidates if c in feature_names), None)
        if column is not None:
            found[target] = column
    return found


def mask_phones(phone_mask: torch.Tensor, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, P) bool: round(ratio * n) real phones per utterance (at least one), chosen uniformly at random."""
    scores = torch.rand(phone_mask.shape, generator=generator).masked_fill(~phone_mask, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)
    k = (phone_mask.sum(1, keepdim=True) * ratio).round().clamp_min(1)
    return (rank < k) & phone_mask


@dataclass
class PretrainLoss:
    total: torch.Tensor
    parts: dict[str, torch.Tensor]


class PhonePretrainer(nn.Module):
    """A PhoneEncoder with reconstruction heads; `encoder.state_dict()` initialises HierarchicalScorer.phone_encoder."""

    def __init__(self, config: ScorerConfig, feature_names: tuple[str, ...]):
        super().__init__()
        d = config.d_model
        self.encoder = PhoneEncoder(config)
        self.columns = prosody_columns(feature_names)
        self.identity_head = nn.Linear(d, len(PHONES))
        self.trait_heads = nn.ModuleDict({name: nn.Linear(d, n) for name, n in TRAIT_CLASSES.items()})
        self.prosody_head = nn.Linear(d, max(1, len(self.columns)))
        self.register_buffer("traits", trait_table(), persistent=False)

    def forward(self, batch: ScorerBatch, masked: torch.Tensor) -> PretrainLoss:
        hidden = self.encoder(batch.features, batch.phone_ids, batch.stress, batch.positions, batch.phone_mask, masked)
        h = hidden[masked]  # (N, d): only masked positions are targets
        ids = batch.phone_ids[masked]
        parts = {"identity": F.cross_entropy(self.identity_head(h), ids)}
        phone_traits = self.traits[ids]
        for j, (name, head) in enumerate(self.trait_heads.items()):
            parts[f"trait_{name}"] = F.cross_entropy(head(h), phone_traits[:, j])
        if self.columns:
            predicted = self.prosody_head(h)
            voiced = phone_traits[:, list(TRAIT_CLASSES).index("voiced")].bool()
            for j, (name, column) in enumerate(self.columns.items()):
                keep = voiced if name == "pitch" else torch.ones_like(voiced)  # unvoiced phones have no pitch
                target = batch.features[masked][:, column]
                parts[name] = ((predicted[:, j] - target) ** 2 * keep).sum() / keep.sum().clamp_min(1)
        n_traits = len(self.trait_heads)
        total = parts["identity"] + sum(parts[f"trait_{n}"] for n in self.trait_heads) / n_traits
        total = total + sum(parts[name] for name in self.columns)
        return PretrainLoss(total, {k: v.detach() for k, v in parts.items()})
