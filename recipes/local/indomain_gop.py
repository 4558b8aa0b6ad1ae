#!/usr/bin/env python
"""Train the in-domain phone recogniser (encoder/features/indomain_gop.py) and add its feature group to a store.

Train features are cross-fitted over speaker folds of the train split (dev speakers are never used for
fitting); dev and test features come from one recogniser fitted on the whole train split, which is also the
one a scorer trained on these features ships with. Writes
  OUT/models/{fold0..,all}/   recognisers
  OUT/features/{split}/       copies of the input stores with the `indomain_gop` block added
  OUT/recogniser_report.json  frame accuracy per split, training losses, parameter count
  AUG/features_indomain/      with --augmented AUG (recipes/local/augment_features.py): the augmented items' store
                              with the block added, from their source recording's out-of-fold posteriors (the
                              same arrays as the source's own features; non-speech items: the all-train recogniser)

    python recipes/local/indomain_gop.py --corpus $SO762_DIR --features /work/exp/features \
        --frames /work/exp3/whisper_frames --out /work/exp3
(frames from recipes/local/cache_whisper_frames.py)
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from orthoepy.encoder.corpus import Utterance, load_corpus
from orthoepy.encoder.features.frontend import PhoneFeatures
from orthoepy.encoder.features.indomain_gop import (
    FEATURE_NAMES, OUTSIDE, FrameTargets, InDomainRecogniser, RecogniserConfig, cross_fit, frame_targets, phone_features)
from orthoepy.encoder.features.records import FeatureBlock
from orthoepy.encoder.features.store import MANIFEST, FeatureStore
from orthoepy.encoder.scorer.augmentation import source_id

GROUP = "indomain_gop"


def main() -> None:
    args = _args()
    torch.set_num_threads(1)
    config = RecogniserConfig(epochs=args.epochs, seed=args.seed)
    labels = {u.utt_id: u for u in load_corpus(args.corpus)}
    stores = {s: FeatureStore(Path(args.features) / s) for s in args.splits}
    feats = {s: {u: f for u, f in stores[s]} for s in args.splits}
    frames = {s: {u: np.load(Path(args.frames) / f"{u}.npy") for u in feats[s]} for s in args.splits}
    out, report = Path(args.out), {"config": asdict(config), "n_folds": args.folds}
    started = time.perf_counter()
    if args.load:  # dev/test stores for recognisers fitted by an earlier run (OUT/models/all)
        full = InDomainRecogniser.from_pretrained(out / "models" / "all")
        for split in args.splits:
            _write_store(stores[split], feats[split], {u: full.predict_log_proba(x) for u, x in frames[split].items()},
                         out / "features" / split, out / "models" / "all")
        return
    train_targets = {u: _targets(frames["train"][u], f, labels[u], config) for u, f in feats["train"].items()}
    speakers = {u: labels[u].speaker for u in feats["train"]}
    log_probs = {"train": {}}
    n_folds = min(args.folds, len(set(speakers.values())))  # tiny corpora (the CI fixture) have few speakers
    oof, fold_models = cross_fit(frames["train"], train_targets, speakers, config, n_folds, progress=True)
    log_probs["train"] = oof
    for k, model in enumerate(fold_models):
        model.save_pretrained(out / "models" / f"fold{k}")
    print("fit on all of train", flush=True)
    full = InDomainRecogniser(config, progress=True).fit(list(frames["train"].values()), list(train_targets.values()))
    full.save_pretrained(out / "models" / "all")
    for split in args.splits:
        if split != "train":
            log_probs[split] = {u: full.predict_log_proba(x) for u, x in frames[split].items()}
    report.update(n_folds=n_folds, n_parameters=full.n_parameters, fit_seconds=round(time.perf_counter() - started, 1),
                  losses={"all": full.history_, **{f"fold{k}": m.history_ for k, m in enumerate(fold_models)}})
    report["frame_accuracy"] = {s: _frame_accuracy(log_probs[s], feats[s], labels, frames[s], config) for s in args.splits}
    for split in args.splits:
        _write_store(stores[split], feats[split], log_probs[split], out / "features" / split, out / "models" / "all")
    if args.augmented:
        _write_augmented(Path(args.augmented), log_probs["train"], full, Path(args.frames), out / "models" / "all")
    (out / "recogniser_report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["frame_accuracy"], indent=1))


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None)
    p.add_argument("--features", required=True, help="folder with train/ dev/ test/ feature stores")
    p.add_argument("--frames", required=True, help="cached Whisper frames, <utt_id>.npy")
    p.add_argument("--out", required=True)
    p.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=RecogniserConfig.epochs)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--load", action="store_true",
                   help="write the stores of --splits (not train) with OUT/models/all from an earlier run; fit nothing")
    p.add_argument("--augmented", default=None, help="folder of recipes/local/augment_features.py (needs train in --splits)")
    return p.parse_args()


def _targets(frames: np.ndarray, f: PhoneFeatures, utt: Utterance, config: RecogniserConfig) -> FrameTargets:
    return frame_targets(len(frames), [p.base for p in f.phones], f.starts, f.ends, utt.phone_accuracy, config)


def _frame_accuracy(log_probs: dict, feats: dict, labels: dict, frames: dict, config: RecogniserConfig) -> dict:
    """Share of frames whose best phone class is the canonical phone: in well-scored phones (>= 1.8) and in
    low-scored ones (<= 1, where a low share is what one wants), and of all frames incl. the outside class."""
    good, bad, every = [], [], []
    for u, lp in log_probs.items():
        t = _targets(frames[u], feats[u], labels[u], config)
        best = lp.argmax(axis=1)
        every.append(best == t.labels)
        phone_best = lp[:, :OUTSIDE].argmax(axis=1)
        scores = _frame_scores(feats[u], labels[u], len(lp))
        good.append((phone_best == t.labels)[scores >= 1.8])
        bad.append((phone_best == t.labels)[(scores <= 1.0) & (t.labels != OUTSIDE)])
    return {"well_pronounced_phone_frames": round(float(np.concatenate(good).mean()), 4),
            "low_scored_phone_frames": round(float(np.concatenate(bad).mean()), 4),
            "all_frames_incl_outside": round(float(np.concatenate(every).mean()), 4)}


def _frame_scores(f: PhoneFeatures, utt: Utterance, n_frames: int) -> np.ndarray:
    from orthoepy.encoder.features.indomain_gop import phone_frames
    scores = np.full(n_frames, np.nan)
    for s, e, a in zip(f.starts, f.ends, utt.phone_accuracy):
        scores[phone_frames(float(s), float(e), n_frames)] = a
    return scores


def _write_store(store: FeatureStore, feats: dict, log_probs: dict, out_dir: Path, recogniser_dir: Path) -> None:
    (out_dir / "utts").mkdir(parents=True, exist_ok=True)
    for u, f in feats.items():
        values, _, _ = phone_features(log_probs[u], [p.base for p in f.phones], f.starts, f.ends)
        replace(f, blocks={**f.blocks, GROUP: FeatureBlock(FEATURE_NAMES, values)}).save(out_dir / "utts" / f"{u}.npz")
    manifest = dict(store.manifest)
    groups = [g for g in manifest["config"]["groups"] if g != GROUP] + [GROUP]
    manifest["config"] = {**manifest["config"], "groups": groups, "indomain_gop_dir": str(recogniser_dir.resolve())}
    manifest["groups"] = {**manifest["groups"], GROUP: len(FEATURE_NAMES)}
    manifest.pop("config_key", None)  # these features were not extracted by one FrontEnd run: no cache key
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))


def _write_augmented(folder: Path, train_log_probs: dict, full: InDomainRecogniser, frames_dir: Path,
                     recogniser_dir: Path) -> None:
    store = FeatureStore(folder / "features")
    feats = {u: f for u, f in store}
    log_probs = {}
    for u in feats:
        source = source_id(u)
        log_probs[u] = (train_log_probs[source] if source in train_log_probs
                        else full.predict_log_proba(np.load(frames_dir / f"{source}.npy")))
    _write_store(store, feats, log_probs, folder / "features_indomain", recogniser_dir)


if __name__ == "__main__":
    main()
