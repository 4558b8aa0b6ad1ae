"""Feature group `indomain_gop`: GOP features from an in-domain phone recogniser over frozen Whisper frames.

The recogniser is a small frame classifier (LayerNorm, a linear projection, a 1-D convolution over a few
frames, a linear output over the 39 ARPAbet phones plus an "outside any phone" class) trained on the
speechocean762 train split's aligned canonical phones. The human phone scores weight the targets: a
well-pronounced phone (score 2) is a positive (cross-entropy on its canonical phone); a badly pronounced one
(score near 0) is a negative, whose loss pushes probability away from the canonical phone, -log(1 - p), so the
recogniser also learns what "not this phone" sounds like in accented speech.

Per canonical phone the group gives LPP/LPR-style features from the recogniser's frame log-posteriors over
the phone's aligned frames (FEATURE_NAMES). Because the recogniser saw the train labels, train features
must be cross-fitted (recipes/local/indomain_gop.py): each train speaker's features come from a model not
trained on that speaker.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..folds import CrossFitFold, speaker_folds  # noqa: F401  (cross_fit uses them; older imports keep working)
from ..alignment import Alignment
from ..audio import Audio
from ..phoneset import PHONE_INDEX, PHONES
from .gop import gop_vector
from .records import FeatureBlock, GroupOutput

FRAME_SECONDS = 0.02  # Whisper encoder frames
OUTSIDE = len(PHONES)  # class of frames outside every aligned phone (silence, pauses)
N_CLASSES = len(PHONES) + 1
LOG_FLOOR = -30.0
CONFIG_FILE, WEIGHTS_FILE = "indomain_gop.json", "indomain_gop.pt"
SUMMARY_NAMES = ("lpp", "lpr_max", "mean_prob", "max_frame_lp", "min_frame_lp", "entropy",
                 "outside_share", "heard_match", "heard_prob")
FEATURE_NAMES = (*SUMMARY_NAMES, *(f"lpr_{p}" for p in PHONES))


@dataclass(frozen=True)
class RecogniserConfig:
    input_dim: int = 512
    hidden: int = 192
    conv_out: int = 128
    kernel: int = 5  # frames seen by the convolution (odd)
    dropout: float = 0.2
    negative_weight: float = 1.0  # scale of the "not this phone" loss on low-scored phones
    outside_weight: float = 0.3  # weight of frames outside every phone
    epochs: int = 6
    lr: float = 2e-3
    batch_utterances: int = 16
    seed: int = 0


@dataclass(frozen=True)
class FrameTargets:
    """Per-frame training targets of one utterance."""

    labels: np.ndarray  # (T,) int64 class: canonical phone index, or OUTSIDE
    positive: np.ndarray  # (T,) float32 weight of -log p(label)
    negative: np.ndarray  # (T,) float32 weight of -log(1 - p(label))


def phone_score_weights(score: float, negative_weight: float = 1.0) -> tuple[float, float]:
    """(positive, negative) loss weights of a phone with human score 0-2 (speechocean762 averages raters).

    2 -> (1, 0); 1.6 -> (0.6, 0); 1 -> (0, 0.33); 0 -> (0, 1): only clearly good phones teach "this phone",
    clearly bad ones teach "not this phone", the ambiguous middle teaches little.
    """
    positive = float(np.clip(score - 1.0, 0.0, 1.0))
    negative = float(np.clip(1.0 - score / 1.5, 0.0, 1.0)) * negative_weight
    return positive, negative


def phone_frames(start: float, end: float, n_frames: int) -> slice:
    """Frames whose centre lies in [start, end); at least one frame, inside [0, n_frames)."""
    first = int(np.ceil(start / FRAME_SECONDS - 0.5))
    last = int(np.ceil(end / FRAME_SECONDS - 0.5))
    first = min(max(first, 0), n_frames - 1)
    return slice(first, min(max(last, first + 1), n_frames))


def frame_targets(n_frames: int, phones: Sequence[str], starts: np.ndarray, ends: np.ndarray,
                  scores: Sequence[float], config: RecogniserConfig = RecogniserConfig()) -> FrameTargets:
    """Targets for one utterance from its aligned canonical phones (ARPAbet bases) and their human scores."""
    labels = np.full(n_frames, OUTSIDE, np.int64)
    positive = np.full(n_frames, config.outside_weight, np.float32)
    negative = np.zeros(n_frames, np.float32)
    for phone, start, end, score in zip(phones, starts, ends, scores):
        frames = phone_frames(float(start), float(end), n_frames)
        labels[frames] = PHONE_INDEX[phone]
        positive[frames], negative[frames] = phone_score_weights(float(score), config.negative_weight)
    return FrameTargets(labels, positive, negative)


class _Network(nn.Module):
    def __init__(self, config: RecogniserConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.input_dim)
        self.project = nn.Linear(config.input_dim, config.hidden)
        self.conv = nn.Conv1d(config.hidden, config.conv_out, config.kernel, padding=config.kernel // 2)
        self.out = nn.Linear(config.conv_out, N_CLASSES)
        self.dropout = nn.Dropout(config.dropout)
        self.act = nn.GELU()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, input_dim) -> (B, T, N_CLASSES) log-posteriors."""
        x = self.dropout(self.act(self.project(self.norm(frames))))
        x = self.act(self.conv(x.transpose(1, 2))).transpose(1, 2)
        return torch.log_softmax(self.out(self.dropout(x)), dim=-1)


def weighted_frame_loss(log_probs: torch.Tensor, labels: torch.Tensor, positive: torch.Tensor,
                        negative: torch.Tensor) -> torch.Tensor:
    """Mean over weighted frames of w+ * -log p(label) + w- * -log(1 - p(label)); padding has zero weights."""
    lp = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    log_not = torch.log1p(-lp.exp().clamp(max=1.0 - 1e-6))
    total = -(positive * lp + negative * log_not).sum()
    return total / (positive + negative).sum().clamp(min=1e-6)


class InDomainRecogniser:
    """Frame classifier over frozen Whisper frames: `fit(frames, targets)`, `predict_log_proba(frames)`."""

    def __init__(self, config: RecogniserConfig = RecogniserConfig(), progress: bool = False):
        self.config, self.progress = config, progress
        self.network_: _Network | None = None
        self.history_: list[float] = []

    def fit(self, frames: Sequence[np.ndarray], targets: Sequence[FrameTargets]) -> "InDomainRecogniser":
        """frames: per utterance (T, input_dim) arrays (float16 is fine); targets: FrameTargets of the same T."""
        if len(frames) != len(targets) or not frames:
            raise ValueError(f"need one FrameTargets per utterance, got {len(frames)} frames and {len(targets)} targets")
        torch.manual_seed(self.config.seed)
        rng = np.random.default_rng(self.config.seed)
        self.network_ = _Network(self.config)
        optimiser = torch.optim.AdamW(self.network_.parameters(), lr=self.config.lr, weight_decay=1e-2)
        steps = self.config.epochs * int(np.ceil(len(frames) / self.config.batch_utterances))
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, self.config.lr, total_steps=max(steps, 1))
        self.history_ = []
        for epoch in range(self.config.epochs):
            self.network_.train()
            losses = []
            for batch in shuffled_batches(len(frames), self.config.batch_utterances, rng):
                x, labels, pos, neg = pad_batch([frames[i] for i in batch], [targets[i] for i in batch])
                loss = weighted_frame_loss(self.network_(x), labels, pos, neg)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                losses.append(loss.item())
            self.history_.append(float(np.mean(losses)))
            if self.progress:
                print(f"  recogniser epoch {epoch + 1}/{self.config.epochs}: loss {self.history_[-1]:.4f}", flush=True)
        self.network_.eval()
        return self

    def predict_log_proba(self, frames: np.ndarray) -> np.ndarray:
        """(T, input_dim) -> (T, N_CLASSES) frame log-posteriors (39 phones in PHONES order, then OUTSIDE)."""
        if self.network_ is None:
            raise RuntimeError("the recogniser is not fitted: call fit() or from_pretrained() first")
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(frames, np.float32)).unsqueeze(0)
            return self.network_(x)[0].numpy().astype(np.float32)

    @property
    def n_parameters(self) -> int:
        return 0 if self.network_ is None else sum(p.numel() for p in self.network_.parameters())

    def save_pretrained(self, directory: str | Path) -> None:
        if self.network_ is None:
            raise RuntimeError("nothing to save: the recogniser is not fitted")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps({"config": asdict(self.config), "history": self.history_}, indent=1))
        state = {k: v.to(torch.float16) for k, v in self.network_.state_dict().items()}  # halves the shipped size
        torch.save(state, directory / WEIGHTS_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "InDomainRecogniser":
        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory} holds no in-domain recogniser: {name} is missing")
        saved = json.loads((directory / CONFIG_FILE).read_text())
        recogniser = cls(RecogniserConfig(**saved["config"]))
        recogniser.history_ = list(saved.get("history", []))
        recogniser.network_ = _Network(recogniser.config)
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        recogniser.network_.load_state_dict({k: v.float() for k, v in state.items()})
        recogniser.network_.eval()
        return recogniser


def shuffled_batches(n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices 0..n-1 in a random order, cut into batches of `size` (the last may be smaller)."""
    order = rng.permutation(n)
    return [order[i:i + size] for i in range(0, n, size)]


def pad_batch(frames: list[np.ndarray], targets: list[FrameTargets]) -> tuple[torch.Tensor, ...]:
    """Zero-pad (T_i, dim) frames and their targets to the longest: x (B, T, dim) float32, labels (B, T) int64,
    positive and negative weights (B, T) float32; padded frames carry zero weights (no loss)."""
    length = max(len(f) for f in frames)
    x = np.zeros((len(frames), length, frames[0].shape[1]), np.float32)
    labels = np.zeros((len(frames), length), np.int64)
    pos, neg = np.zeros((2, len(frames), length), np.float32)
    for i, (f, t) in enumerate(zip(frames, targets)):
        x[i, :len(f)], labels[i, :len(f)], pos[i, :len(f)], neg[i, :len(f)] = f, t.labels, t.positive, t.negative
    return torch.from_numpy(x), torch.from_numpy(labels), torch.from_numpy(pos), torch.from_numpy(neg)


def phone_features(log_probs: np.ndarray, phones: Sequence[str], starts: np.ndarray, ends: np.ndarray
                   ) -> tuple[np.ndarray, list[str], list[float]]:
    """Per canonical phone: FEATURE_NAMES values (n, 48), the phone heard most there, and its mean probability.

    LPP is the canonical phone's frame log-posterior averaged over the phone's frames (GOPT-style); lpr_X is
    LPP minus phone X's average log-posterior; lpr_max is LPP minus the best competitor's.
    """
    log_probs = np.maximum(log_probs, LOG_FLOOR)
    rows, heard, heard_prob = [], [], []
    for phone, start, end in zip(phones, starts, ends):
        frames = phone_frames(float(start), float(end), len(log_probs))
        seg = log_probs[frames]
        canonical = PHONE_INDEX[phone]
        gop = gop_vector(log_probs, canonical, frames.start, frames.stop)  # [LPP, LPR vs each class]
        lpp, lpr = float(gop[0]), gop[1:1 + len(PHONES)]
        probs = np.exp(seg)
        mean_prob = probs.mean(axis=0)
        best = int(mean_prob[:len(PHONES)].argmax())
        entropy = float(-(probs * seg).sum(axis=1).mean())
        summary = [lpp, float(np.delete(lpr, canonical).min()), float(mean_prob[canonical]),
                   float(seg[:, canonical].max()), float(seg[:, canonical].min()), entropy,
                   float(mean_prob[OUTSIDE]), float(best == canonical), float(mean_prob[best])]
        rows.append(summary + lpr.tolist())
        heard.append(PHONES[best])
        heard_prob.append(float(mean_prob[best]))
    values = np.asarray(rows, np.float32).reshape(len(rows), len(FEATURE_NAMES))
    return values, heard, heard_prob


class InDomainGOP:
    """Feature group `indomain_gop` at inference: Whisper frames -> recogniser -> per-phone features."""

    name = "indomain_gop"

    def __init__(self, recogniser_dir: str | Path, whisper=None, whisper_size: str = "base") -> None:
        self.recogniser = InDomainRecogniser.from_pretrained(recogniser_dir)
        if whisper is None:
            from .whisper import WhisperFeatures
            whisper = WhisperFeatures(model=whisper_size)
        if whisper.variant.dims != self.recogniser.config.input_dim:
            raise ValueError(f"the recogniser in {recogniser_dir} takes {self.recogniser.config.input_dim}-dim "
                             f"frames, Whisper {whisper.variant.name} gives {whisper.variant.dims}")
        self.whisper = whisper

    def names(self) -> tuple[str, ...]:
        return FEATURE_NAMES

    def extract(self, audio: Audio, alignment: Alignment) -> GroupOutput:
        frames = self.whisper.encoder_frames(audio)
        log_probs = self.recogniser.predict_log_proba(frames.astype(np.float16))  # as the cached training frames
        phones = [s.phone.base for s in alignment.segments]
        starts = np.array([s.start for s in alignment.segments], np.float32)
        ends = np.array([s.end for s in alignment.segments], np.float32)
        values, _, _ = phone_features(log_probs, phones, starts, ends)
        return GroupOutput(FeatureBlock(FEATURE_NAMES, values))


def cross_fit(frames: dict[str, np.ndarray], targets: dict[str, FrameTargets], utt_speakers: dict[str, str],
              config: RecogniserConfig = RecogniserConfig(), n_folds: int = 5, progress: bool = False,
              ) -> tuple[dict[str, np.ndarray], list[InDomainRecogniser]]:
    """Out-of-fold frame log-posteriors for every utterance, and the fold models (fold k never saw fold k)."""
    log_probs: dict[str, np.ndarray] = {}
    models = []
    for fold in speaker_folds(utt_speakers, n_folds):
        if progress:
            print(f"fold {fold.fold}: fit on {len(fold.fit_ids)}, predict {len(fold.held_out_ids)} utterances", flush=True)
        model = InDomainRecogniser(config, progress).fit([frames[u] for u in fold.fit_ids],
                                                         [targets[u] for u in fold.fit_ids])
        log_probs.update({u: model.predict_log_proba(frames[u]) for u in fold.held_out_ids})
        models.append(model)
    return log_probs, models
