#!/usr/bin/env python
"""Refit a scorer's per-aspect calibration on its dev predictions, after measuring the methods by cross-fitting.

1. Raw dev predictions of the model (torch network, as `orthoepy train-scorer` calibrates) on a dev feature store.
2. Speaker-disjoint cross-fitting over dev: for each of 5 speaker folds, the isotonic and the smooth (pchip)
   maps are fitted on the other 4 folds' predictions and applied to the held-out fold; PCC / SCC / MSE per
   aspect of raw, isotonic and pchip, and the number of distinct sentence totals (to 0.01).
3. Unless --measure-only: the chosen method (default pchip) refitted on all dev predictions (the data the
   model's previous maps were fitted on) is written to MODEL/calibration.json, and the mispronunciation
   threshold in MODEL/scorer.json is re-chosen on the new calibrated dev phone scores, as train-scorer does.
   The network, scaler.npz and scorer.onnx are untouched (calibration is applied outside the ONNX graph).

    python recipes/local/recalibrate.py --model fusion/models/default --features /work/exp/feats/dev \
        --corpus $SO762_DIR --report /work/exp/recalibrate.json

Dev features must be extracted with the model's front-end (for the shipped model, with its in-domain recogniser):
    orthoepy features --corpus $SO762_DIR --split dev --out /work/exp/feats/dev --nj 1 \
        --groups likelihood_gop,posterior_gop,whisper,prosody,indomain_gop \
        --indomain-gop-dir fusion/models/default/indomain_gop
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from orthoepy.encoder.corpus import SENTENCE_ASPECTS, WORD_ASPECTS, load_corpus
from orthoepy.encoder.folds import speaker_folds
from orthoepy.encoder.features.store import FeatureStore
from orthoepy.encoder.scorer.calibration import METHODS, AspectCalibrator
from orthoepy.encoder.scorer.data import build_examples
from orthoepy.encoder.scorer.metrics import aspect_table
from orthoepy.encoder.scorer.pipeline import (
    BUNDLE_FILE, CALIBRATION_FILE, Scorer, fit_calibration, label_dict, prediction_dict)
from orthoepy.encoder.scorer.train import predict


def dev_predictions(model_dir: Path, features_dir: Path, corpus: str | None):
    """Raw predictions, labels and the speaker of every element, one array per aspect."""
    scorer = Scorer.from_pretrained(model_dir, backend="torch")
    utterances = load_corpus(corpus, "dev")
    speaker_of = {u.utt_id: u.speaker for u in utterances}
    examples = scorer.scaler.transform(
        build_examples(FeatureStore(features_dir), utterances, scorer.groups, scorer.utterance_columns))
    raw, labels = prediction_dict(predict(scorer.model, examples)), label_dict(examples)
    ids = [e.utt_id for e in examples]
    owner = {"phone": np.concatenate([[e.utt_id] * len(e.phone_labels) for e in examples]),
             **{f"word_{a}": np.concatenate([[e.utt_id] * len(e.word_labels) for e in examples]) for a in WORD_ASPECTS},
             **{f"sentence_{a}": np.array(ids) for a in SENTENCE_ASPECTS}}
    return scorer, raw, labels, owner, {u: speaker_of[u] for u in ids}


def cross_fitted(raw: dict, labels: dict, owner: dict, utt_speakers: dict, method: str, n_folds: int) -> dict:
    """Out-of-fold calibrated predictions: each speaker fold mapped by a calibrator fitted on the other folds."""
    out = {aspect: np.full(values.shape, np.nan) for aspect, values in raw.items()}
    for fold in speaker_folds(utt_speakers, n_folds):
        held = set(fold.held_out_ids)
        mask = {aspect: np.isin(owner[aspect], list(held)) for aspect in raw}
        calibrator = AspectCalibrator(method=method).fit({a: raw[a][~m] for a, m in mask.items()},
                                                         {a: labels[a][~m] for a, m in mask.items()})
        mapped = calibrator.transform({a: raw[a][m] for a, m in mask.items()})
        for aspect, m in mask.items():
            out[aspect][m] = mapped[aspect]
    return out


def within_fold(columns: dict[str, dict], labels: dict, owner: dict, utt_speakers: dict, n_folds: int) -> dict:
    """PCC / SCC per aspect computed inside each held-out fold (one map per fold, as in deployment), averaged.

    Pooling the folds (the main table) also scores how much the maps differ from fold to fold; within a fold a
    strictly increasing map keeps the raw ranking exactly, a step function ties it."""
    per_fold = []
    for fold in speaker_folds(utt_speakers, n_folds):
        mask = {aspect: np.isin(owner[aspect], list(fold.held_out_ids)) for aspect in labels}
        per_fold.append({name: aspect_table({a: preds[a][mask[a]] for a in preds}, {a: labels[a][mask[a]] for a in preds})
                         for name, preds in columns.items()})
    def mean(values):  # a correlation is None where a fold's scores are constant (a step function can do that)
        return float(np.nanmean([np.nan if v is None else v for v in values]))
    return {name: {aspect: {k: mean([f[name][aspect][k] for f in per_fold]) for k in ("pcc", "scc")}
                   for aspect in per_fold[0][name]} for name in columns}


def within_text(metrics: dict) -> str:
    names = list(metrics)
    lines = ["| aspect | " + " | ".join(f"{n} PCC | {n} SCC" for n in names) + " |", "|---|" + "---|" * (2 * len(names))]
    for aspect in metrics["raw"]:
        lines.append(f"| {aspect} | " + " | ".join(
            f"{metrics[n][aspect]['pcc']:.3f} | {metrics[n][aspect]['scc']:.3f}" for n in names) + " |")
    return "\n".join(lines)


def distinct(values: np.ndarray) -> int:
    return int(np.unique(np.round(values[np.isfinite(values)], 2)).size)


def table(columns: dict[str, dict], labels: dict) -> tuple[dict, str]:
    metrics = {name: aspect_table(preds, labels) for name, preds in columns.items()}
    lines = ["| aspect | " + " | ".join(f"{n} PCC | {n} SCC | {n} MSE" for n in columns) + " |",
             "|---|" + "---|" * (3 * len(columns))]
    for aspect in metrics["raw"]:
        cells = [f"{metrics[n][aspect]['pcc']:.3f} | {metrics[n][aspect]['scc']:.3f} | {metrics[n][aspect]['mse']:.3f}"
                 for n in columns]
        lines.append(f"| {aspect} | " + " | ".join(cells) + " |")
    lines.append("| distinct sentence totals (0.01) | " + " | ".join(
        f"{distinct(columns[n]['sentence_total'])} | | " for n in columns) + "|")
    return metrics, "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="scorer model directory (rewritten in place)")
    parser.add_argument("--features", required=True, help="dev feature store of the model's front-end")
    parser.add_argument("--corpus", default=None, help="speechocean762 directory (default: $SO762_DIR)")
    parser.add_argument("--method", choices=METHODS, default="pchip", help="calibration to write (default: pchip)")
    parser.add_argument("--folds", type=int, default=5, help="speaker folds for the cross-fitted measurement")
    parser.add_argument("--report", help="JSON file for the measurements")
    parser.add_argument("--measure-only", action="store_true", help="measure, do not rewrite the model")
    args = parser.parse_args()
    model_dir = Path(args.model)

    scorer, raw, labels, owner, utt_speakers = dev_predictions(model_dir, Path(args.features), args.corpus)
    print(f"{len(utt_speakers)} dev utterances, {len(set(utt_speakers.values()))} speakers, "
          f"{raw['phone'].size} phones, model calibration: "
          f"{sorted({info['method'] for info in scorer.calibrator.fitted_.values()})}")

    # the model's own maps and a refit of its method on all dev: equal when the features reproduce its dev predictions
    shipped = scorer.calibrator.transform(raw)
    refit = AspectCalibrator(method=scorer.calibrator.method).fit(raw, labels).transform(raw)
    reproduce = max(float(np.nanmax(np.abs(shipped[a] - refit[a]))) for a in raw)
    print(f"max |model's calibration - {scorer.calibrator.method} refit on these dev predictions| = {reproduce:.3g}")

    columns = {"raw": raw, **{m: cross_fitted(raw, labels, owner, utt_speakers, m, args.folds)
                              for m in ("isotonic", "pchip")}}
    metrics, text = table(columns, labels)
    print(f"\ncross-fitted over {args.folds} speaker folds of dev, folds pooled:\n{text}")
    within = within_fold(columns, labels, owner, utt_speakers, args.folds)
    print(f"\nthe same, PCC / SCC inside each held-out fold, mean over folds:\n{within_text(within)}")

    calibrator, threshold, report = fit_calibration(raw, labels, args.method)
    in_sample = calibrator.transform(raw)
    summary = {
        "n_utterances": len(utt_speakers), "folds": args.folds, "reproduce_max_abs_diff": reproduce,
        "cross_fitted": metrics, "cross_fitted_within_fold_mean": within,
        "distinct_sentence_totals": {
            **{f"cross_fitted_{n}": distinct(p["sentence_total"]) for n, p in columns.items()},
            "model_calibration_all_dev": distinct(shipped["sentence_total"]),
            f"{args.method}_all_dev": distinct(in_sample["sentence_total"])},
        "refit": {"method": args.method, "mdd_threshold": threshold, "dev_in_sample": report},
    }
    print(f"\ndistinct sentence totals: {summary['distinct_sentence_totals']}")
    print(f"{args.method} refitted on all dev: MDD threshold {threshold:.4f} (was {scorer.mdd_threshold:.4f}), "
          f"dev F1 {report['mdd']['f1']:.3f}")
    if args.report:
        Path(args.report).write_text(json.dumps(summary, indent=1, default=float))
    if args.measure_only:
        return
    (model_dir / CALIBRATION_FILE).write_text(json.dumps(calibrator.to_dict()))
    bundle = json.loads((model_dir / BUNDLE_FILE).read_text())
    bundle["mdd_threshold"] = threshold
    (model_dir / BUNDLE_FILE).write_text(json.dumps(bundle, indent=1))
    print(f"-> {model_dir / CALIBRATION_FILE}, mdd_threshold in {model_dir / BUNDLE_FILE}")


if __name__ == "__main__":
    main()
