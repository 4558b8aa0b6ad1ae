"""Speaker cross-validation of the scorer: fold models, their out-of-fold (OOF) predictions, their best epochs.

Each fold trains on the other folds' speakers (plus the augmented items read by those speakers, and the
non-speech items, which have no speaker) and stops early on its held-out speakers' real utterances; its
predictions for them are out-of-fold. Calibration and the MDD threshold are fitted on the OOF predictions of
the whole train split, and the shipped model is retrained on all of it for the folds' median best epoch.
A fold's results are saved in `<out>/folds/fold<k>/`, so folds can run as separate processes and a rerun
skips finished folds.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median
from typing import Sequence

import numpy as np

from ..folds import fold_of_speaker
from .augmentation import is_augmented
from .data import ScorerExample
from .losses import LossConfig, phone_class_weights
from .model import HierarchicalScorer, ScorerConfig
from .train import EpochRecord, UtterancePrediction, fit, predict, pretrain

FOLD_RESULT = "oof.json"


@dataclass(frozen=True)
class FitOptions:
    """What every fit of one plan shares (TrainingPlan's training fields)."""

    mtp: bool
    mtp_epochs: int
    epochs: int
    patience: int
    seed: int
    batch_size: int
    lr: float
    threads: int | None
    progress: bool
    correlation_on_augmented: bool = False  # LossConfig.correlation_on_augmented
    class_weights_on_augmented: bool = True  # phone class weights counted over the augmented items too


@dataclass
class FoldResult:
    """One fold's OOF predictions (its held-out real utterances, and the probe items read by its held-out
    speakers) and training histories."""

    fold: int
    n_fit: int
    predictions: list[UtterancePrediction]
    history: list[EpochRecord]
    mtp_history: list[EpochRecord] = field(default_factory=list)
    probe_predictions: list[UtterancePrediction] = field(default_factory=list)
    model: HierarchicalScorer | None = None  # the fold's network (saved beside oof.json; not loaded back)

    @property
    def best_epoch(self) -> int:
        return _best(self.history)

    @property
    def best_mtp_epoch(self) -> int | None:
        return _best(self.mtp_history) if self.mtp_history else None

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.model is not None:  # for fold ensembles; written before oof.json, which marks the fold done
            self.model.save_pretrained(directory)
        record = {"fold": self.fold, "n_fit": self.n_fit,
                  "predictions": [_prediction_record(p) for p in self.predictions],
                  "probe_predictions": [_prediction_record(p) for p in self.probe_predictions],
                  "history": [asdict(r) for r in self.history], "mtp_history": [asdict(r) for r in self.mtp_history]}
        tmp = directory / (FOLD_RESULT + ".tmp")
        tmp.write_text(json.dumps(record, default=float))
        tmp.replace(directory / FOLD_RESULT)

    @classmethod
    def load(cls, directory: Path) -> "FoldResult":
        r = json.loads((directory / FOLD_RESULT).read_text())
        return cls(r["fold"], r["n_fit"], [_prediction(p) for p in r["predictions"]],
                   [EpochRecord(**e) for e in r["history"]], [EpochRecord(**e) for e in r["mtp_history"]],
                   [_prediction(p) for p in r.get("probe_predictions", [])])


def fit_model(fit_set: Sequence[ScorerExample], held_out: Sequence[ScorerExample], config: ScorerConfig,
              options: FitOptions, stop_after: tuple[int | None, int] | None = None
              ) -> tuple[HierarchicalScorer, list[EpochRecord], list[EpochRecord]]:
    """MTP (optional) then fine-tuning, early-stopped on held_out; with held_out empty, stop_after =
    (MTP epochs, fine-tuning epochs) to run instead. Returns the model and the two histories."""
    common = dict(seed=options.seed, batch_size=options.batch_size, lr=options.lr, threads=options.threads,
                  progress=options.progress)
    mtp_stop, fit_stop = stop_after or (None, None)
    encoder_state, mtp_history = None, []
    if options.mtp:
        pretrainer, mtp_history = pretrain(fit_set, held_out, config, epochs=options.mtp_epochs,
                                           stop_after=mtp_stop, **common)
        encoder_state = pretrainer.encoder.state_dict()
    model, history = fit(fit_set, held_out, config, epochs=options.epochs, patience=options.patience,
                         loss_config=loss_config_for(fit_set, options), phone_encoder_state=encoder_state,
                         stop_after=fit_stop, **common)
    return model, history, mtp_history


def loss_config_for(fit_set: Sequence[ScorerExample], options: FitOptions) -> LossConfig:
    """The fine-tuning loss of a fit: phone class weights from the fit set (or its real utterances alone)."""
    counted = fit_set if options.class_weights_on_augmented else [e for e in fit_set if not is_augmented(e.utt_id)]
    return LossConfig(phone_class_weights=phone_class_weights(counted),
                      correlation_on_augmented=options.correlation_on_augmented)


def run_fold(k: int, train: Sequence[ScorerExample], augmented: Sequence[ScorerExample],
             speakers: dict[str, str], n_folds: int, config: ScorerConfig, options: FitOptions,
             probe: Sequence[ScorerExample] = ()) -> FoldResult:
    """Fit fold k (speakers of fold k held out) and predict its held-out real utterances, and the probe items
    (e.g. every augmented item, also those not trained on) whose speaker fold k holds out."""
    fit_set, held_out = split_fold(k, train, augmented, speakers, n_folds)
    model, history, mtp_history = fit_model(fit_set, held_out, config, options)
    fold_of = fold_of_speaker({speakers[e.utt_id] for e in train}, n_folds)
    probed = [e for e in probe if fold_of.get(speakers[e.utt_id], -1) == k]
    return FoldResult(k, len(fit_set), predict(model, held_out), history, mtp_history,
                      predict(model, probed) if probed else [], model)


def split_fold(k: int, train: Sequence[ScorerExample], augmented: Sequence[ScorerExample],
               speakers: dict[str, str], n_folds: int) -> tuple[list[ScorerExample], list[ScorerExample]]:
    """(fit set, held-out set) of fold k: real utterances by their speaker's fold; augmented items of held-out
    speakers are dropped (their audio is held out), those without a train speaker always fit.
    Raises KeyError for an example whose speaker is unknown."""
    fold_of = fold_of_speaker({speakers[e.utt_id] for e in train}, n_folds)
    held = [e for e in train if fold_of[speakers[e.utt_id]] == k]
    fit_set = [e for e in train if fold_of[speakers[e.utt_id]] != k]
    fit_set += [e for e in augmented if fold_of.get(speakers[e.utt_id], -1) != k]
    return fit_set, held


def oof_predictions(results: Sequence[FoldResult], order: Sequence[str]) -> list[UtterancePrediction]:
    """The folds' predictions in the order of `order` (utterance ids). Raises ValueError for a missing one."""
    by_id = {p.utt_id: p for r in results for p in r.predictions}
    missing = [u for u in order if u not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} utterances have no out-of-fold prediction, e.g. {missing[:3]}")
    return [by_id[u] for u in order]


def retrain_epochs(results: Sequence[FoldResult]) -> tuple[int | None, int]:
    """(MTP epochs, fine-tuning epochs) for the model fitted on all of train: the folds' median best epochs."""
    mtp = [r.best_mtp_epoch for r in results if r.best_mtp_epoch is not None]
    return (round(median(mtp)) if mtp else None), round(median(r.best_epoch for r in results))


def _prediction_record(p: UtterancePrediction) -> dict:
    return {"utt_id": p.utt_id, "phone": p.phone.tolist(), "word": p.word.tolist(), "sentence": p.sentence.tolist()}


def _prediction(r: dict) -> UtterancePrediction:
    return UtterancePrediction(r["utt_id"], np.array(r["phone"], np.float32),
                               np.array(r["word"], np.float32).reshape(-1, 3), np.array(r["sentence"], np.float32))


def _best(history: Sequence[EpochRecord]) -> int:
    return max(history, key=lambda r: r.selection_score).epoch
