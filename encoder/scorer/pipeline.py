"""The scorer as one trained bundle: feature selection, scaling, the network, calibration, the MDD threshold.

`train_scorer` runs the whole training recipe on a feature store (train + dev); `Scorer` saves, loads
and scores. Model selection, calibration and the detection threshold use either the dev split
(validation="dev", the earlier recipe) or speaker cross-validation over train (validation="folds",
encoder/scorer/crossval.py: out-of-fold calibration, the shipped model retrained on all of train), never test.
Error-augmented items (encoder/scorer/augmentation.py) join the training side only.
"""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

from ..corpus import SENTENCE_ASPECTS, WORD_ASPECTS, Utterance, load_corpus
from ..features.frontend import PhoneFeatures
from ..features.store import FeatureStore
from .calibration import DEFAULT_METHOD, AspectCalibrator
from .data import FeatureScaler, ScorerExample, build_examples, chosen_groups, unlabelled_example
from .handcrafted import HandcraftedSelector
from .listening import Scores, listening_report
from .metrics import MISPRONOUNCED_BELOW, aspect_table, choose_threshold, mispronounced, mispronunciation_detection
from .model import HierarchicalScorer, ScorerConfig, ScorerEnsemble, load_network
from .onnx_export import ONNX_FILE, OnnxScorerModel, onnx_fingerprint, weights_fingerprint
from .augmentation import load_augmented
from .crossval import FOLD_RESULT, FitOptions, FoldResult, fit_model, oof_predictions, retrain_epochs, run_fold
from .train import UtterancePrediction, phone_states, predict

BUNDLE_FILE, SCALER_FILE, CALIBRATION_FILE, HANDCRAFTED_FILE = "scorer.json", "scaler.npz", "calibration.json", "handcrafted.json"
REPORT_FILE = "training_report.json"
RECOGNISER_DIR = "indomain_gop"  # the in-domain recogniser, inside a model directory that uses its group
Backend = Literal["auto", "torch", "onnx"]
BACKENDS = ("auto", "torch", "onnx")


class ModelDirectoryError(ValueError):
    """A model directory is missing or incomplete; the message says which file."""


@dataclass(frozen=True)
class TrainingPlan:
    seed: int = 0
    mtp: bool = True
    handcrafted: bool = True
    n_handcrafted: int = 112
    groups: tuple[str, ...] | None = None  # None = every group in the store
    # defaults: the best of three configurations on dev (docs/results.md)
    mtp_epochs: int = 10
    epochs: int = 40
    patience: int = 5  # fine-tuning epochs without a better dev score before stopping
    lr: float = 3e-4
    dropout: float = 0.3  # in the encoders and on the input features
    batch_size: int = 32
    threads: int | None = None
    progress: bool = True
    calibration: str = DEFAULT_METHOD  # "pchip" (smooth, strictly increasing) or "isotonic" (step function)
    validation: str = "dev"  # "dev" or "folds" (speaker cross-validation over train)
    n_folds: int = 5
    only_fold: int | None = None  # with "folds": fit this fold only, save its OOF predictions, and stop
    augmented_items: str | None = None  # items.json of recipes/local/augment_features.py
    augmented_features: str | None = None  # their feature store (same groups as the train store)
    augment_share: float = 1.0  # share of the augmented items used (a seeded draw)
    calibrate_on_augmented: bool = True  # with folds: the maps also see the augmented items' OOF predictions
    augmented_calibration_weight: float = 1.0  # weight of an augmented item against a real utterance in those maps
    augmented_support_quantile: float = 0.0  # augmented items below this quantile of real outputs weigh 1
    augmented_weight_levels: tuple[str, ...] = ("phone", "word", "sentence")  # where the two above apply
    feature_clip: float | None = 5.0  # standardised features clipped to +-this (FeatureScaler); None = no clipping
    reuse_network: bool = False  # with folds: keep out_dir's trained network, refit calibration and reports only
    correlation_on_augmented: bool = False  # the loss's pcc terms also see the augmented items (LossConfig)
    class_weights_on_augmented: bool = True  # phone class weights counted over the augmented items too


@dataclass
class ScoredUtterance:
    """Calibrated scores of one utterance (raw network outputs beside them)."""

    utt_id: str
    phone: np.ndarray  # (n,) 0-2
    word: dict[str, np.ndarray]  # aspect -> (n_words,) 0-10
    sentence: dict[str, float]  # aspect -> 0-10
    raw: UtterancePrediction


class Scorer:
    """A trained scorer bundle, loaded with `from_pretrained(dir)`, saved with `save_pretrained(dir)`.

    The network runs in torch, or in onnxruntime when `onnx_model` (the same weights, exported) is given;
    the torch model is kept either way for its config.
    """

    def __init__(self, model: HierarchicalScorer, scaler: FeatureScaler, handcrafted: HandcraftedSelector | None,
                 calibrator: AspectCalibrator, mdd_threshold: float, onnx_model: OnnxScorerModel | None = None,
                 frontend_config: dict | None = None):
        self.model, self.scaler, self.handcrafted = model.eval(), scaler, handcrafted
        self.calibrator, self.mdd_threshold = calibrator, mdd_threshold
        self.onnx_model = onnx_model
        self.frontend_config = frontend_config  # the feature store's FrontEndConfig, as a dict; None = defaults

    @property
    def backend(self) -> str:
        return "torch" if self.onnx_model is None else "onnx"

    @property
    def groups(self) -> tuple[str, ...] | None:
        return self.model.config.groups

    @property
    def utterance_columns(self) -> list[int]:
        return [] if self.handcrafted is None else [int(i) for i in self.handcrafted.selected_indices_]

    def examples(self, features: dict[str, PhoneFeatures]) -> list[ScorerExample]:
        return self.scaler.transform(
            unlabelled_example(u, f, self.groups, self.utterance_columns) for u, f in features.items())

    def score_examples(self, examples: Sequence[ScorerExample]) -> list[ScoredUtterance]:
        raw = predict(self.model, examples) if self.onnx_model is None else self.onnx_model.predict(examples)
        return self.calibrated(raw)

    def calibrated(self, raw: Sequence[UtterancePrediction]) -> list[ScoredUtterance]:
        """The network's raw predictions (e.g. out-of-fold ones) through this bundle's calibration."""
        return _split_by_utterance(raw, self.calibrator.transform(prediction_dict(raw)))

    def phone_states(self, examples: Sequence[ScorerExample]) -> list[np.ndarray]:
        """The phone encoder's states, (n_phones, d_model) per utterance: what the rationalizer hears.

        Always from the torch network (the ONNX graph returns scores only); a few ms per utterance.
        """
        return phone_states(self.model, examples)

    def score(self, features: dict[str, PhoneFeatures]) -> list[ScoredUtterance]:
        return self.score_examples(self.examples(features))

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the bundle; with the ONNX backend its graph too. A scorer.onnx of other weights is removed."""
        directory = Path(directory)
        self.model.save_pretrained(directory)
        self._save_onnx(directory / ONNX_FILE)
        self.scaler.save(directory / SCALER_FILE)
        (directory / CALIBRATION_FILE).write_text(json.dumps(self.calibrator.to_dict()))
        if self.handcrafted is not None:
            (directory / HANDCRAFTED_FILE).write_text(json.dumps(self.handcrafted.to_dict()))
        bundle = {"mdd_threshold": self.mdd_threshold, "frontend": _carry_recogniser(self.frontend_config, directory)}
        (directory / BUNDLE_FILE).write_text(json.dumps(bundle, indent=1))

    def _save_onnx(self, path: Path) -> None:
        if self.onnx_model is not None:
            if not path.exists() or not path.samefile(self.onnx_model.path):
                shutil.copyfile(self.onnx_model.path, path)
        elif path.is_file() and onnx_fingerprint(path) != weights_fingerprint(self.model):
            path.unlink()  # exported from other weights: loading it would score with the wrong network

    @classmethod
    def from_pretrained(cls, directory: str | Path, backend: Backend = "auto") -> "Scorer":
        """backend: "auto" = onnxruntime when the directory has scorer.onnx, else torch; "torch"; "onnx" (needs the file)."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        directory = Path(directory)
        for name in (BUNDLE_FILE, SCALER_FILE, CALIBRATION_FILE, "config.json", "model.pt"):
            if not (directory / name).is_file():
                raise ModelDirectoryError(f"{directory} is not a scorer model directory: {name} is missing")
        onnx_path = directory / ONNX_FILE
        if backend == "onnx" and not onnx_path.is_file():
            raise ModelDirectoryError(f"{directory}: {ONNX_FILE} is missing (create it with "
                                      f"`orthoepy export-onnx --model {directory}`)")
        try:
            bundle = json.loads((directory / BUNDLE_FILE).read_text())
            handcrafted_file = directory / HANDCRAFTED_FILE
            handcrafted = HandcraftedSelector.from_dict(json.loads(handcrafted_file.read_text())) if handcrafted_file.is_file() else None
            model = load_network(directory)
            scorer = cls(model, FeatureScaler.load(directory / SCALER_FILE), handcrafted,
                         AspectCalibrator.from_dict(json.loads((directory / CALIBRATION_FILE).read_text())),
                         float(bundle["mdd_threshold"]),
                         frontend_config=_resolve_recogniser(bundle.get("frontend"), directory))
        except (ValueError, KeyError, RuntimeError, OSError, EOFError, TypeError, AttributeError,
                pickle.UnpicklingError) as err:
            raise ModelDirectoryError(f"{directory}: a model file is corrupt ({type(err).__name__}: {err})") from None
        if backend != "torch" and onnx_path.is_file():
            scorer.onnx_model = _load_onnx(onnx_path, model)
        return scorer


def network_fingerprint(directory: str | Path) -> str:
    """The first 16 hex digits of the SHA-256 of a model directory's network weights (model.pt): what a
    rationalizer trained on this scorer's phone states records. Raises ModelDirectoryError without model.pt."""
    path = Path(directory) / "model.pt"
    if not path.is_file():
        raise ModelDirectoryError(f"{directory} is not a scorer model directory: model.pt is missing")
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _load_onnx(path: Path, model: HierarchicalScorer) -> OnnxScorerModel:
    try:
        onnx_model = OnnxScorerModel(path)
    except Exception as err:  # onnxruntime's errors (InvalidProtobuf, NoSuchFile, ...) derive from Exception only
        raise ModelDirectoryError(f"{path} is corrupt ({type(err).__name__}: {err})") from None
    if onnx_model.fingerprint != weights_fingerprint(model):
        raise ModelDirectoryError(f"{path} was exported from other weights than model.pt: re-run "
                                  f"`orthoepy export-onnx --model {path.parent}` or load with backend='torch'")
    return onnx_model


def train_scorer(features_dir: str | Path, corpus_dir: str | Path | None, out_dir: str | Path,
                 plan: TrainingPlan = TrainingPlan()) -> Scorer | None:
    """Train on features_dir/train (+ augmented items), select and calibrate on features_dir/dev or on speaker
    folds of train, save the bundle to out_dir. Returns None when plan.only_fold ran one fold only."""
    if plan.validation not in ("dev", "folds"):
        raise ValueError(f"validation must be 'dev' or 'folds', not {plan.validation!r}")
    if plan.reuse_network and plan.validation != "folds":
        raise ValueError("reuse_network (--recalibrate-only) needs validation='folds' (the fold results to refit on)")
    features_dir, out_dir = Path(features_dir), Path(out_dir)
    utterances = load_corpus(corpus_dir)
    train_store, dev_store = FeatureStore(features_dir / "train"), FeatureStore(features_dir / "dev")
    handcrafted = _select_handcrafted(train_store, utterances, plan) if plan.handcrafted else None
    columns = [] if handcrafted is None else [int(i) for i in handcrafted.selected_indices_]
    train = build_examples(train_store, utterances, plan.groups, columns)
    dev = build_examples(dev_store, utterances, plan.groups, columns)
    augmented_items = _augmented_items(plan)
    probe = (build_examples(FeatureStore(plan.augmented_features), augmented_items, plan.groups, columns)
             if augmented_items else [])
    scaler = FeatureScaler.fit(train, plan.feature_clip)  # real utterances only: non-speech items would shift the moments
    train, dev, probe = scaler.transform(train), scaler.transform(dev), scaler.transform(probe)
    augmented = _trained_share(probe, plan)
    config = ScorerConfig(phone_feature_dim=train[0].features.shape[1], n_utterance_features=len(columns),
                          dropout=plan.dropout, input_dropout=plan.dropout, groups=plan.groups)
    options = FitOptions(plan.mtp, plan.mtp_epochs, plan.epochs, plan.patience, plan.seed, plan.batch_size, plan.lr,
                         plan.threads, plan.progress, plan.correlation_on_augmented, plan.class_weights_on_augmented)
    speakers = {**{u.utt_id: u.speaker for u in utterances}, **{u.utt_id: u.speaker for u in augmented_items}}
    extra = None
    if plan.validation == "folds":
        fitted = _cross_validated(train, augmented, probe, speakers, config, options, plan, out_dir)
        if fitted is None:
            return None
        model, histories, oof, probe_oof = fitted
        raw, labels = prediction_dict(oof), label_dict(train)
        if plan.calibrate_on_augmented and probe_oof:
            by_id = {e.utt_id: e for e in probe}
            extra = (prediction_dict(probe_oof), label_dict([by_id[p.utt_id] for p in probe_oof]))
    else:
        model, history, mtp_history = fit_model(train + augmented, dev, config, options)
        histories = {"mtp_history": [asdict(r) for r in mtp_history], "history": [asdict(r) for r in history]}
        raw, labels, probe_oof = prediction_dict(predict(model, dev)), label_dict(dev), []
    calibrator, threshold, calibration_report = fit_calibration(raw, labels, plan.calibration, extra,
                                                                plan.augmented_calibration_weight,
                                                                plan.augmented_support_quantile,
                                                                plan.augmented_weight_levels)
    scorer = Scorer(model, scaler, handcrafted, calibrator, threshold)
    # inference must extract features the same way
    scorer.frontend_config = _used_frontend(train_store.manifest["config"],
                                            chosen_groups(train_store.manifest["groups"], plan.groups))
    out_dir.mkdir(parents=True, exist_ok=True)
    scorer.save_pretrained(out_dir)
    report = {"plan": asdict(plan), "n_train": len(train), "n_augmented": len(augmented), "n_dev": len(dev),
              **histories, **_held_out_reports(plan, calibration_report, scorer, dev)}
    if probe_oof:
        report["cv_listening"] = listening_report({u.utt_id: u for u in augmented_items},
                                                  {u.utt_id: u for u in utterances},
                                                  calibrated_scores(scorer, oof + probe_oof))
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=1, default=float))
    return scorer


def _augmented_items(plan: TrainingPlan) -> list[Utterance]:
    """The augmented items that have features (none without a file)."""
    if not plan.augmented_items:
        return []
    if not plan.augmented_features:
        raise ValueError("augmented_items needs augmented_features (their feature store)")
    present = set(FeatureStore(plan.augmented_features).utt_ids)
    return [u for u in load_augmented(plan.augmented_items) if u.utt_id in present]


def _trained_share(examples: list[ScorerExample], plan: TrainingPlan) -> list[ScorerExample]:
    """A seeded draw of plan.augment_share of the augmented examples: those trained on (all are probed)."""
    keep = np.random.default_rng(plan.seed).random(len(examples)) < plan.augment_share
    return [e for e, k in zip(examples, keep) if k]


def calibrated_scores(scorer: "Scorer", predictions: Sequence[UtterancePrediction]) -> dict[str, Scores]:
    """Calibrated phone, word-accuracy and sentence-total scores by utterance id, for listening_report."""
    return {s.utt_id: Scores(s.phone, s.word["accuracy"], s.sentence["total"]) for s in scorer.calibrated(predictions)}


def _cross_validated(train, augmented, probe, speakers, config, options, plan, out_dir):
    """Fold results (run or loaded), then the model fitted on all of train; None after plan.only_fold."""
    folds = [plan.only_fold] if plan.only_fold is not None else range(plan.n_folds)
    results = []
    for k in folds:
        directory = out_dir / "folds" / f"fold{k}"
        if (directory / FOLD_RESULT).is_file():
            results.append(FoldResult.load(directory))
            continue
        result = run_fold(k, train, augmented, speakers, plan.n_folds, config, options, probe)
        result.save(directory)
        results.append(result)
    if plan.only_fold is not None:
        return None
    if plan.reuse_network:
        model, histories = _trained_network(out_dir)
    else:
        stop = retrain_epochs(results)
        model, history, mtp_history = fit_model(train + augmented, [], config, options, stop_after=stop)
        histories = {"folds": [{"fold": r.fold, "n_fit": r.n_fit, "best_epoch": r.best_epoch,
                                "best_mtp_epoch": r.best_mtp_epoch,
                                "history": [asdict(e) for e in r.history]} for r in results],
                     "retrain_epochs": {"mtp": stop[0], "fit": stop[1]},
                     "mtp_history": [asdict(r) for r in mtp_history], "history": [asdict(r) for r in history]}
    probe_oof = [p for r in results for p in r.probe_predictions]
    return model, histories, oof_predictions(results, [e.utt_id for e in train]), probe_oof


def _trained_network(out_dir: Path) -> tuple[HierarchicalScorer | ScorerEnsemble, dict]:
    """The network an earlier run saved in out_dir and its training histories (for plan.reuse_network)."""
    if not (out_dir / "model.pt").is_file() or not (out_dir / REPORT_FILE).is_file():
        raise ModelDirectoryError(f"{out_dir}: no trained network to reuse (model.pt and {REPORT_FILE} are needed)")
    previous = json.loads((out_dir / REPORT_FILE).read_text())
    keys = ("folds", "retrain_epochs", "mtp_history", "history")
    return load_network(out_dir), {k: previous[k] for k in keys if k in previous}


def _held_out_reports(plan: TrainingPlan, calibration_report: dict, scorer: "Scorer", dev) -> dict:
    """With folds: the OOF (cross-validated) report and dev scored by the shipped model (used for nothing);
    with dev: the dev report."""
    if plan.validation == "dev":
        return {"dev": calibration_report}
    raw = prediction_dict(predict(scorer.model, dev))
    dev_report = calibration_report_of(raw, label_dict(dev), scorer.calibrator, scorer.mdd_threshold, plan.calibration)
    return {"cv": calibration_report, "dev": dev_report}


def _used_frontend(config: dict, used_groups: tuple[str, ...]) -> dict:
    """The store's front-end config, less the in-domain group when the scorer does not use it (no recogniser to ship)."""
    if "indomain_gop" in used_groups or "indomain_gop" not in config.get("groups", ()):
        return config
    return {**config, "groups": [g for g in config["groups"] if g != "indomain_gop"], "indomain_gop_dir": None}


def _carry_recogniser(config: dict | None, directory: Path) -> dict | None:
    """The front-end config as saved: the in-domain recogniser copied into the model directory, named relatively."""
    if not config or not config.get("indomain_gop_dir"):
        return config
    source, target = directory / config["indomain_gop_dir"], directory / RECOGNISER_DIR  # an absolute source stays so
    if not target.exists() or not source.samefile(target):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    return {**config, "indomain_gop_dir": RECOGNISER_DIR}


def _resolve_recogniser(config: dict | None, directory: Path) -> dict | None:
    if not config or not config.get("indomain_gop_dir"):
        return config
    return {**config, "indomain_gop_dir": str((directory / config["indomain_gop_dir"]).resolve())}


def _select_handcrafted(store: FeatureStore, utterances: list[Utterance], plan: TrainingPlan) -> HandcraftedSelector:
    labels = {u.utt_id: u for u in utterances}
    pools, targets, names = [], [], None
    for utt_id, features in store:
        pools.append(features.utterance.values[0])
        names = features.utterance.names
        targets.append([np.nan if getattr(labels[utt_id].sentence, a) is None else getattr(labels[utt_id].sentence, a)
                        for a in SENTENCE_ASPECTS])
    n = min(plan.n_handcrafted, len(names))
    return HandcraftedSelector(n_features=n, random_state=plan.seed).fit(np.stack(pools), np.array(targets, float), names)


def fit_calibration(raw: dict[str, np.ndarray], labels: dict[str, np.ndarray], method: str = DEFAULT_METHOD,
                    extra: tuple[dict, dict] | None = None, extra_weight: float = 1.0,
                    support_quantile: float = 0.0, weighted_levels: tuple[str, ...] = ("phone", "word", "sentence")
                    ) -> tuple[AspectCalibrator, float, dict]:
    """The calibrator and the MDD threshold (on calibrated phone scores) fitted on held-out predictions (dev, or
    out-of-fold over train), and their report. `extra` (raw, labels) joins the maps' fit only: its points below the
    `support_quantile` quantile of the real raw outputs (per aspect; where real readings are scarce) weigh 1, the
    others `extra_weight`, against 1 for a real point; in aspects of levels outside `weighted_levels` ("phone",
    "word", "sentence") every extra point weighs 1. The threshold and the report stay on raw/labels."""
    fit_raw, fit_labels, weights = raw, labels, None
    if extra is not None:  # e.g. augmented items: raw outputs and targets the real utterances rarely reach
        fit_raw = {a: np.concatenate([raw[a], extra[0][a]]) for a in raw}
        fit_labels = {a: np.concatenate([labels[a], extra[1][a]]) for a in labels}
        weights = {a: np.r_[np.ones(np.size(raw[a])), _extra_weights(raw[a], extra[0][a], extra_weight,
                                                                     support_quantile)]
                   for a in raw if a.split("_")[0] in weighted_levels}  # other aspects: every point weighs 1
    calibrator = AspectCalibrator(method=method).fit(fit_raw, fit_labels, weights)
    threshold = _detection_threshold(calibrator.transform(raw)["phone"], labels["phone"])
    return calibrator, threshold, calibration_report_of(raw, labels, calibrator, threshold, method)


def _extra_weights(real: np.ndarray, extra: np.ndarray, weight: float, support_quantile: float) -> np.ndarray:
    finite = np.asarray(real, dtype=np.float64)[np.isfinite(real)]
    floor = np.quantile(finite, support_quantile) if support_quantile > 0 and finite.size else -np.inf
    return np.where(np.asarray(extra) < floor, 1.0, weight)


def calibration_report_of(raw: dict[str, np.ndarray], labels: dict[str, np.ndarray], calibrator: AspectCalibrator,
                          threshold: float, method: str) -> dict:
    """PCC/SCC/MSE of raw and calibrated predictions per aspect, and MDD at the threshold (calibrated phones)."""
    calibrated = calibrator.transform(raw)
    return {"raw": aspect_table(raw, labels), "calibrated": aspect_table(calibrated, labels),
            "mdd": mispronunciation_detection(calibrated["phone"], labels["phone"], threshold),
            "calibration": method}


def _detection_threshold(phone_scores: np.ndarray, phone_labels: np.ndarray) -> float:
    """The dev-F1-best threshold; the class boundary itself where dev lacks one of the classes (tiny corpora)."""
    flagged = mispronounced(phone_labels[np.isfinite(phone_labels)])
    if flagged.all() or not flagged.any():
        return MISPRONOUNCED_BELOW
    return choose_threshold(phone_scores, phone_labels)


def prediction_dict(predictions: Sequence[UtterancePrediction]) -> dict[str, np.ndarray]:
    """Flatten per-utterance predictions into one array per aspect (phones and words concatenated)."""
    words = np.concatenate([p.word for p in predictions]).reshape(-1, len(WORD_ASPECTS))
    sentences = np.stack([p.sentence for p in predictions])
    return {"phone": np.concatenate([p.phone for p in predictions]),
            **{f"word_{a}": words[:, j] for j, a in enumerate(WORD_ASPECTS)},
            **{f"sentence_{a}": sentences[:, j] for j, a in enumerate(SENTENCE_ASPECTS)}}


def label_dict(examples: Sequence[ScorerExample]) -> dict[str, np.ndarray]:
    words = np.concatenate([e.word_labels for e in examples]).reshape(-1, len(WORD_ASPECTS))
    sentences = np.stack([e.sentence_labels for e in examples])
    return {"phone": np.concatenate([e.phone_labels for e in examples]),
            **{f"word_{a}": words[:, j] for j, a in enumerate(WORD_ASPECTS)},
            **{f"sentence_{a}": sentences[:, j] for j, a in enumerate(SENTENCE_ASPECTS)}}


def _split_by_utterance(raw: Sequence[UtterancePrediction], calibrated: dict[str, np.ndarray]) -> list[ScoredUtterance]:
    out, phone_at, word_at = [], 0, 0
    for i, p in enumerate(raw):
        n, w = len(p.phone), len(p.word)
        out.append(ScoredUtterance(
            p.utt_id, calibrated["phone"][phone_at:phone_at + n],
            {a: calibrated[f"word_{a}"][word_at:word_at + w] for a in WORD_ASPECTS},
            {a: float(calibrated[f"sentence_{a}"][i]) for a in SENTENCE_ASPECTS}, p))
        phone_at, word_at = phone_at + n, word_at + w
    return out
