"""HierarchicalScorer: phones -> words -> utterance, E-Branchformer at the phone and the word level.

    phone features, phone id, stress, word position
        -> PhoneEncoder (projection + embeddings, E-Branchformer)           -> phone accuracy head
        -> attention pooling of each word's phones
        -> [5 aspect tokens | words] -> E-Branchformer                      -> word accuracy/stress/total heads
        -> aspect token outputs (+ projected handcrafted utterance features) -> 5 sentence heads
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn

from ..corpus import SENTENCE_ASPECTS
from ..phoneset import PHONES, WORD_POSITIONS
from .data import N_STRESS, PHONE_SCALE, SENTENCE_SCALE, WORD_SCALE

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.pt"
N_ASPECTS = len(SENTENCE_ASPECTS)
NEG_INF = -1e9  # finite, so a word without phones (padding) gets uniform weights instead of NaN


@dataclass
class ScorerConfig:
    phone_feature_dim: int  # columns of ScorerExample.features
    groups: tuple[str, ...] | None = None  # feature groups the features were built from (None = all)
    n_utterance_features: int = 0  # 0 = no handcrafted fusion
    d_model: int = 96
    phone_blocks: int = 3
    word_blocks: int = 2
    heads: int = 4
    cgmlp_units: int = 256
    phone_conv_kernel: int = 7
    word_conv_kernel: int = 3
    dropout: float = 0.1
    input_dropout: float = 0.1

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "ScorerConfig":
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        raw = {k: v for k, v in raw.items() if k in known}
        if raw.get("groups") is not None:
            raw["groups"] = tuple(raw["groups"])
        return cls(**raw)


@dataclass
class ScorerOutput:
    """Predictions on the label scales; entries at padded positions are meaningless."""

    phone: torch.Tensor  # (B, P) 0-2
    word: torch.Tensor  # (B, W, 3) 0-10: accuracy, stress, total
    sentence: torch.Tensor  # (B, 5) 0-10: SENTENCE_ASPECTS order
    phone_hidden: torch.Tensor = field(repr=False)  # (B, P, d) phone encoder output


class MaskedEBranchformer(nn.Module):
    """ESPnet's EBranchformerEncoder on already-embedded sequences, with padding zeroed before its convolutions.

    ESPnet masks padding in attention but its depthwise convolutions (cgMLP gate, branch merge) read padded
    frames, so a sequence's output would depend on how much padding it shares a batch with. Forward pre-hooks
    on those convolutions zero the padded frames; the state dict is ESPnet's, unchanged.
    """

    def __init__(self, d_model: int, blocks: int, heads: int, cgmlp_units: int, conv_kernel: int, dropout: float):
        super().__init__()
        from espnet2.asr.encoder.e_branchformer_encoder import EBranchformerEncoder  # heavy import, deferred

        self.encoder = EBranchformerEncoder(
            input_size=d_model, output_size=d_model, attention_heads=heads, cgmlp_linear_units=cgmlp_units,
            cgmlp_conv_kernel=conv_kernel, merge_conv_kernel=3, num_blocks=blocks, input_layer=None,
            dropout_rate=dropout, positional_dropout_rate=dropout, attention_dropout_rate=dropout,
            use_flash_attn=False, use_ffn=True, macaron_ffn=True, linear_units=2 * d_model,
        )
        self._keep: torch.Tensor | None = None  # (B, 1, T) float, set for the duration of forward()
        for layer in self.encoder.encoders:
            layer.cgmlp.csgu.conv.register_forward_pre_hook(self._zero_padding)
            layer.depthwise_conv_fusion.register_forward_pre_hook(self._zero_padding)

    def _zero_padding(self, module: nn.Module, args: tuple[torch.Tensor]) -> tuple[torch.Tensor]:
        return (args[0] * self._keep,)  # conv inputs are (B, C, T)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, d), mask (B, T) True = real -> (B, T, d)."""
        self._keep = mask[:, None, :].to(x.dtype)
        try:
            out, _, _ = self.encoder(x, mask.sum(1), masks=~mask)  # ESPnet's `masks` marks padding
        finally:
            self._keep = None
        return out


class PhoneEncoder(nn.Module):
    """Phone inputs -> contextual phone states. `masked` (B, P) swaps features + identity for a learned vector (MTP)."""

    def __init__(self, config: ScorerConfig):
        super().__init__()
        d = config.d_model
        self.feature_proj = nn.Sequential(nn.Dropout(config.input_dropout), nn.Linear(config.phone_feature_dim, d))
        self.phone_embedding = nn.Embedding(len(PHONES), d)
        self.stress_embedding = nn.Embedding(N_STRESS, d)
        self.position_embedding = nn.Embedding(len(WORD_POSITIONS), d)
        self.mask_vector = nn.Parameter(torch.zeros(d))
        self.norm = nn.LayerNorm(d)
        self.encoder = MaskedEBranchformer(d, config.phone_blocks, config.heads, config.cgmlp_units,
                                           config.phone_conv_kernel, config.dropout)

    def forward(self, features: torch.Tensor, phone_ids: torch.Tensor, stress: torch.Tensor, positions: torch.Tensor,
                phone_mask: torch.Tensor, masked: torch.Tensor | None = None) -> torch.Tensor:
        content = self.feature_proj(features) + self.phone_embedding(phone_ids)
        if masked is not None:
            content = torch.where(masked[..., None], self.mask_vector.expand_as(content), content)
        x = self.norm(content + self.stress_embedding(stress) + self.position_embedding(positions))
        return self.encoder(x, phone_mask)


class WordPooling(nn.Module):
    """Attention pooling of each word's phones, via a (B, W, P) phone-to-word assignment mask."""

    def __init__(self, d_model: int):
        super().__init__()
        self.score = nn.Linear(d_model, 1)

    def forward(self, phones: torch.Tensor, word_ids: torch.Tensor, phone_mask: torch.Tensor,
                word_mask: torch.Tensor) -> torch.Tensor:
        word_index = torch.arange(word_mask.shape[1], device=word_ids.device)
        assign = (word_ids[:, None, :] == word_index[None, :, None]) & phone_mask[:, None, :]  # (B, W, P)
        scores = self.score(phones).squeeze(-1)[:, None, :].expand(assign.shape)
        weights = torch.softmax(scores.masked_fill(~assign, NEG_INF), dim=-1) * assign.to(phones.dtype)
        return weights @ phones  # (B, W, d); padded words are all zeros


class HierarchicalScorer(nn.Module):
    def __init__(self, config: ScorerConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.phone_encoder = PhoneEncoder(config)
        self.word_pooling = WordPooling(d)
        self.word_input = nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d))
        self.aspect_tokens = nn.Parameter(torch.randn(N_ASPECTS, d) * 0.02)
        self.word_encoder = MaskedEBranchformer(d, config.word_blocks, config.heads, config.cgmlp_units,
                                                config.word_conv_kernel, config.dropout)
        self.utterance_proj = (nn.Sequential(nn.Dropout(config.input_dropout), nn.Linear(config.n_utterance_features, d),
                                             nn.GELU(), nn.Linear(d, d))
                               if config.n_utterance_features > 0 else None)
        self.phone_head = _head(d, 1)
        self.word_head = _head(d, 3)
        self.sentence_norm = nn.LayerNorm(d)
        self.sentence_weight = nn.Parameter(torch.randn(N_ASPECTS, d) * d ** -0.5)  # one linear head per aspect
        self.sentence_bias = nn.Parameter(torch.full((N_ASPECTS,), 1.0))
        # start near the label means (phones ~1.9/2, words ~8.5/10, sentences ~7/10) instead of mid-range
        nn.init.constant_(self.phone_head[-1].bias, 2.5)
        nn.init.constant_(self.word_head[-1].bias, 1.5)

    def forward(self, features: torch.Tensor, phone_ids: torch.Tensor, stress: torch.Tensor, positions: torch.Tensor,
                word_ids: torch.Tensor, phone_mask: torch.Tensor, word_mask: torch.Tensor,
                utterance_features: torch.Tensor | None = None) -> ScorerOutput:
        phones = self.phone_encoder(features, phone_ids, stress, positions, phone_mask)
        words = self.word_input(self.word_pooling(phones, word_ids, phone_mask, word_mask))
        tokens = self.aspect_tokens.expand(words.shape[0], -1, -1)
        sequence_mask = torch.cat([word_mask.new_ones(word_mask.shape[0], N_ASPECTS), word_mask], dim=1)
        encoded = self.word_encoder(torch.cat([tokens, words], dim=1), sequence_mask)
        aspects, words = encoded[:, :N_ASPECTS], encoded[:, N_ASPECTS:]
        if self.utterance_proj is not None:
            aspects = aspects + self.utterance_proj(utterance_features)[:, None, :]
        sentence = (self.sentence_norm(aspects) * self.sentence_weight).sum(-1) + self.sentence_bias
        return ScorerOutput(
            phone=torch.sigmoid(self.phone_head(phones).squeeze(-1)) * PHONE_SCALE,
            word=torch.sigmoid(self.word_head(words)) * WORD_SCALE,
            sentence=torch.sigmoid(sentence) * SENTENCE_SCALE,
            phone_hidden=phones,
        )

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(self.config.to_json())
        torch.save(self.state_dict(), directory / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> "HierarchicalScorer":
        directory = Path(directory)
        model = cls(ScorerConfig.from_json((directory / CONFIG_FILE).read_text()))
        model.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location=map_location, weights_only=True))
        return model.eval()


def _head(d_model: int, n_out: int) -> nn.Module:
    return nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, n_out))


ENSEMBLE_KEY = "ensemble_members"  # in config.json: how many member networks model.pt holds


class ScorerEnsemble(nn.Module):
    """The mean of several HierarchicalScorers' scores, e.g. the networks of the cross-validation folds.

    Same inputs and outputs as one HierarchicalScorer; `phone_hidden` is the first member's (the states of
    separately trained networks do not average into anything). Saved as one config.json (the members' shared
    config plus ENSEMBLE_KEY) and one model.pt; `load_network` reads either kind of directory.
    Raises ValueError for no members or members of different configurations.
    """

    def __init__(self, members: list[HierarchicalScorer]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member network")
        if len({m.config.to_json() for m in members}) > 1:
            raise ValueError("the ensemble's member networks differ in configuration")
        self.config = members[0].config
        self.members = nn.ModuleList(members)

    def forward(self, *inputs: torch.Tensor, **named: torch.Tensor) -> ScorerOutput:
        outputs = [member(*inputs, **named) for member in self.members]
        mean = lambda name: torch.stack([getattr(o, name) for o in outputs]).mean(0)  # noqa: E731
        return ScorerOutput(phone=mean("phone"), word=mean("word"), sentence=mean("sentence"),
                            phone_hidden=outputs[0].phone_hidden)

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {**json.loads(self.config.to_json()), ENSEMBLE_KEY: len(self.members)}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=1))
        torch.save(self.state_dict(), directory / WEIGHTS_FILE)


def load_network(directory: str | Path, map_location: str | torch.device = "cpu") -> HierarchicalScorer | ScorerEnsemble:
    """The network of a model directory: one HierarchicalScorer, or a ScorerEnsemble when config.json says so."""
    directory = Path(directory)
    text = (directory / CONFIG_FILE).read_text()
    members = json.loads(text).get(ENSEMBLE_KEY)
    if not members:
        return HierarchicalScorer.from_pretrained(directory, map_location)
    config = ScorerConfig.from_json(text)
    ensemble = ScorerEnsemble([HierarchicalScorer(config) for _ in range(int(members))])
    ensemble.load_state_dict(torch.load(directory / WEIGHTS_FILE, map_location=map_location, weights_only=True))
    return ensemble.eval()
