"""Training drivers: MTP pretraining of the phone encoder, then multi-task fine-tuning of the whole scorer.

Model selection and early stopping look at dev only. Runs are deterministic given the seed (CPU).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from ..corpus import SENTENCE_ASPECTS, WORD_ASPECTS
from .data import ScorerBatch, ScorerExample, collate
from .losses import LossConfig, phone_class_weights, scoring_loss
from .model import HierarchicalScorer, ScorerConfig
from .pretrain import PhonePretrainer, mask_phones


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    dev_loss: float
    dev_metrics: dict[str, float] = field(default_factory=dict)  # PCCs, see evaluate()
    selection_score: float = float("nan")
    seconds: float = 0.0


@dataclass
class UtterancePrediction:
    utt_id: str
    phone: np.ndarray  # (n,) 0-2
    word: np.ndarray  # (n_words, 3) 0-10
    sentence: np.ndarray  # (5,) 0-10


def batches(examples: Sequence[ScorerExample], batch_size: int, rng: np.random.Generator | None = None
            ) -> Iterator[ScorerBatch]:
    """Shuffled batches when rng is given; otherwise length-sorted ones (least padding, for evaluation)."""
    order = rng.permutation(len(examples)) if rng is not None else np.argsort([e.n_phones for e in examples], kind="stable")
    for start in range(0, len(order), batch_size):
        yield collate([examples[i] for i in order[start:start + batch_size]])


def fit(train_examples: Sequence[ScorerExample], dev_examples: Sequence[ScorerExample], config: ScorerConfig,
        seed: int = 0, epochs: int = 30, batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 0.01,
        patience: int = 8, loss_config: LossConfig | None = None, phone_encoder_state: dict | None = None,
        threads: int | None = None, progress: bool = True, stop_after: int | None = None
        ) -> tuple[HierarchicalScorer, list[EpochRecord]]:
    """Train a HierarchicalScorer; return the dev-best model (eval mode) and one record per epoch.

    phone_encoder_state: `PhonePretrainer.encoder.state_dict()` from `pretrain`, to start from MTP weights.
    Without dev examples there is no early stopping: the learning-rate schedule still spans `epochs`, training
    stops after `stop_after` epochs (e.g. the cross-validated best epoch) and the last weights are kept.
    """
    _setup(seed, threads)
    loss_config = loss_config or LossConfig(phone_class_weights=phone_class_weights(train_examples))
    model = HierarchicalScorer(config)
    if phone_encoder_state is not None:
        model.phone_encoder.load_state_dict(phone_encoder_state)

    def batch_loss(batch: ScorerBatch) -> torch.Tensor:
        return scoring_loss(model(**batch.model_inputs()), batch, loss_config).total

    def score_on_dev(epoch: int, train_loss: float) -> EpochRecord:
        if not dev_examples:
            return _undeveloped(epoch, train_loss)
        dev_loss, metrics = evaluate(model, dev_examples, loss_config, batch_size)
        return EpochRecord(epoch, train_loss, dev_loss, metrics, selection_score(metrics, dev_loss))

    loop = _EpochLoop(seed, epochs, batch_size, lr, weight_decay, patience, progress, stop_after)
    history = loop.run(model, train_examples, batch_loss, score_on_dev, "fit")
    return model.eval(), history


def pretrain(train_examples: Sequence[ScorerExample], dev_examples: Sequence[ScorerExample], config: ScorerConfig,
             seed: int = 0, epochs: int = 20, batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 0.01,
             mask_ratio: float = 0.15, patience: int = 5, threads: int | None = None, progress: bool = True,
             stop_after: int | None = None) -> tuple[PhonePretrainer, list[EpochRecord]]:
    """MTP of the phone encoder; selects the epoch with the lowest dev reconstruction loss (without dev examples:
    the weights after `stop_after` epochs, as in `fit`)."""
    _setup(seed, threads)
    model = PhonePretrainer(config, train_examples[0].feature_names)
    masking = torch.Generator().manual_seed(seed)

    def batch_loss(batch: ScorerBatch) -> torch.Tensor:
        return model(batch, mask_phones(batch.phone_mask, mask_ratio, masking)).total

    def score_on_dev(epoch: int, train_loss: float) -> EpochRecord:
        if not dev_examples:
            return _undeveloped(epoch, train_loss)
        dev_loss = pretrain_loss(model, dev_examples, mask_ratio, seed, batch_size)
        return EpochRecord(epoch, train_loss, dev_loss, {}, -dev_loss)

    loop = _EpochLoop(seed, epochs, batch_size, lr, weight_decay, patience, progress, stop_after)
    history = loop.run(model, train_examples, batch_loss, score_on_dev, "pretrain")
    return model.eval(), history


@dataclass
class _EpochLoop:
    """AdamW with warm-up + cosine decay, gradient clipping, and early stopping on a dev selection score."""

    seed: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    patience: int
    progress: bool
    stop_after: int | None = None  # last epoch to run (the schedule still spans `epochs`)

    def run(self, model: torch.nn.Module, train_examples: Sequence[ScorerExample],
            batch_loss: Callable[[ScorerBatch], torch.Tensor], score_on_dev: Callable[[int, float], EpochRecord],
            desc: str) -> list[EpochRecord]:
        """Train until `patience` epochs bring no better dev score; leaves the best epoch's weights in `model`."""
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        scheduler = _warmup_cosine(optimizer, math.ceil(len(train_examples) / self.batch_size), self.epochs)
        rng = np.random.default_rng(self.seed)
        history: list[EpochRecord] = []
        best_score, best_state, stale = -math.inf, copy.deepcopy(model.state_dict()), 0
        bar = tqdm(range(1, self.epochs + 1), desc=desc, unit="epoch", disable=not self.progress)
        for epoch in bar:
            if self.stop_after is not None and epoch > self.stop_after:
                break
            started = _now()
            model.train()
            losses = [self._step(batch_loss(batch), model, optimizer, scheduler)
                      for batch in batches(train_examples, self.batch_size, rng)]
            record = score_on_dev(epoch, float(np.mean(losses)))
            record.seconds = _now() - started
            history.append(record)
            bar.set_postfix(train=f"{record.train_loss:.4f}", dev=f"{record.dev_loss:.4f}", score=f"{record.selection_score:.3f}")
            if record.selection_score > best_score:
                best_score, best_state, stale = record.selection_score, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= self.patience:
                    break
        model.load_state_dict(best_state)
        return history

    @staticmethod
    def _step(loss: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              scheduler: torch.optim.lr_scheduler.LRScheduler) -> float:
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        return loss.item()


def _undeveloped(epoch: int, train_loss: float) -> EpochRecord:
    """The record of an epoch without dev examples: a rising selection score, so the last epoch is kept."""
    return EpochRecord(epoch, train_loss, float("nan"), {}, float(epoch))


@torch.no_grad()
def pretrain_loss(model: PhonePretrainer, examples: Sequence[ScorerExample], mask_ratio: float, seed: int = 0,
                  batch_size: int = 64) -> float:
    """Mean reconstruction loss with a fixed masking (the same every call, so epochs compare)."""
    model.eval()
    masking = torch.Generator().manual_seed(seed)
    losses = [model(b, mask_phones(b.phone_mask, mask_ratio, masking)).total.item() for b in batches(examples, batch_size)]
    return float(np.mean(losses)) if losses else float("nan")


BatchScores = tuple[np.ndarray, np.ndarray, np.ndarray]  # padded phone (B, P), word (B, W, 3), sentence (B, 5)


@torch.no_grad()
def predict(model: HierarchicalScorer, examples: Sequence[ScorerExample], batch_size: int = 64
            ) -> list[UtterancePrediction]:
    """Per-utterance predictions, in the order of `examples`."""
    model.eval()

    def run(batch: ScorerBatch) -> BatchScores:
        out = model(**batch.model_inputs())
        return out.phone.numpy(), out.word.numpy(), out.sentence.numpy()

    return predict_with(run, examples, batch_size)


@torch.no_grad()
def phone_states(model: HierarchicalScorer, examples: Sequence[ScorerExample], batch_size: int = 64) -> list[np.ndarray]:
    """The phone encoder's output per utterance, (n_phones, d_model) each, in the order of `examples`."""
    model.eval()
    by_id = {}
    for batch in batches(examples, batch_size):
        hidden = model(**batch.model_inputs()).phone_hidden.numpy()
        for i, utt_id in enumerate(batch.utt_ids):
            by_id[utt_id] = hidden[i, :int(batch.phone_mask[i].sum())]
    return [by_id[e.utt_id] for e in examples]


def predict_with(run: Callable[[ScorerBatch], BatchScores], examples: Sequence[ScorerExample], batch_size: int = 64
                 ) -> list[UtterancePrediction]:
    """Per-utterance predictions of any backend that scores a padded batch, in the order of `examples`."""
    by_id = {}
    for batch in batches(examples, batch_size):
        phone, word, sentence = run(batch)
        for i, utt_id in enumerate(batch.utt_ids):
            n, w = int(batch.phone_mask[i].sum()), int(batch.word_mask[i].sum())
            by_id[utt_id] = UtterancePrediction(utt_id, phone[i, :n], word[i, :w], sentence[i])
    return [by_id[e.utt_id] for e in examples]


@torch.no_grad()
def evaluate(model: HierarchicalScorer, examples: Sequence[ScorerExample], loss_config: LossConfig | None = None,
             batch_size: int = 64) -> tuple[float, dict[str, float]]:
    """(mean loss over batches, PCCs): keys phone_accuracy, word_<aspect>, sentence_<aspect>, where labelled."""
    model.eval()
    loss_config = loss_config or LossConfig()
    losses = [scoring_loss(model(**b.model_inputs()), b, loss_config).total.item() for b in batches(examples, batch_size)]
    predictions = predict(model, examples, batch_size)
    metrics = {"phone_accuracy": _pcc(np.concatenate([p.phone for p in predictions]),
                                      np.concatenate([e.phone_labels for e in examples]))}
    words_pred = np.concatenate([p.word for p in predictions]).reshape(-1, 3)
    words_true = np.concatenate([e.word_labels for e in examples]).reshape(-1, 3)
    metrics.update({f"word_{a}": _pcc(words_pred[:, j], words_true[:, j]) for j, a in enumerate(WORD_ASPECTS)})
    sent_pred, sent_true = np.stack([p.sentence for p in predictions]), np.stack([e.sentence_labels for e in examples])
    metrics.update({f"sentence_{a}": _pcc(sent_pred[:, j], sent_true[:, j]) for j, a in enumerate(SENTENCE_ASPECTS)})
    return (float(np.mean(losses)) if losses else float("nan")), {k: v for k, v in metrics.items() if np.isfinite(v)}


def selection_score(metrics: dict[str, float], dev_loss: float) -> float:
    """Mean dev PCC of phone accuracy, word total and sentence total (those available); -dev loss if none."""
    chosen = [metrics[k] for k in ("phone_accuracy", "word_total", "sentence_total") if k in metrics]
    return float(np.mean(chosen)) if chosen else -dev_loss


def _pcc(pred: np.ndarray, true: np.ndarray) -> float:
    valid = np.isfinite(true)
    if valid.sum() < 3 or np.std(true[valid]) == 0 or np.std(pred[valid]) == 0:
        return float("nan")
    return float(np.corrcoef(pred[valid], true[valid])[0, 1])


def _warmup_cosine(optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int,
                   floor: float = 0.05) -> torch.optim.lr_scheduler.LambdaLR:
    total = max(1, steps_per_epoch * epochs)
    warmup = max(1, min(steps_per_epoch, total // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _setup(seed: int, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)


def _now() -> float:
    return time.perf_counter()
