#!/usr/bin/env python
"""Train the fine-tuned Whisper phone recogniser (encoder/features/whisper_phone_recogniser.py) on train, report dev.

Stages, each cached under OUT so that a rerun continues where it stopped:
  OUT/align_{split}.json   pocketsphinx forced alignment of the canonical phones (as the front-end aligns), or
                           with --alignments-from the phone spans of an extracted feature store (FEATURES/<split>)
  OUT/states/<utt>.npy     float16 output of the frozen lower encoder layers (unpadded input)
  OUT/checkpoint/          training checkpoint (resumed from)
  OUT/model/               the trained recogniser (upper layers or adapters + head only)
  OUT/report.json          dev frame accuracy, heard phone = canonical, LPP correlation with phone accuracy

    taskset -c 0 python recipes/local/whisper_phone_recogniser.py --corpus $SO762_DIR --out /work/exp4/wpr --epochs 3
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from orthoepy.encoder.alignment import ForcedAligner
from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features import gop
from orthoepy.encoder.features.store import FeatureStore
from orthoepy.encoder.features.indomain_gop import OUTSIDE, frame_targets, phone_frames
from orthoepy.encoder.features.whisper_phone_recogniser import (
    PhoneRecogniserConfig, WhisperPhoneRecogniser, log_mel, train_phone_recogniser)
from orthoepy.encoder.features.whisper_torch import load_whisper_encoder
from orthoepy.encoder.phoneset import PHONE_INDEX


def main() -> None:
    args = _args()
    torch.set_num_threads(1)
    out = Path(args.out)
    config = PhoneRecogniserConfig(frozen_layers=args.frozen_layers, lora_rank=args.lora_rank, epochs=args.epochs,
                                   lr=args.lr, seed=args.seed)
    utts = {s: load_corpus(args.corpus, s)[:args.limit] for s in ("train", "dev")}
    aligned = {s: _alignments(utts[s], out / f"align_{s}.json", args.alignments_from, s) for s in utts}
    model = WhisperPhoneRecogniser(load_whisper_encoder(), config)
    states = {s: _states(model, utts[s], out / "states") for s in utts}
    targets = [_targets(states["train"][u.utt_id], aligned["train"][u.utt_id]) for u in utts["train"]]
    started = time.perf_counter()
    history = train_phone_recogniser(model, [states["train"][u.utt_id] for u in utts["train"]], targets,
                                     checkpoint_dir=out / "checkpoint")
    model.save_pretrained(out / "model")
    report = {"config": asdict(config), "n_train": len(utts["train"]), "n_dev": len(utts["dev"]),
              "train_seconds_this_run": round(time.perf_counter() - started, 1), "history": history,
              "trainable_parameters": sum(t.numel() for t in model.trainable_state_dict().values()),
              "dev": _evaluate(model, states["dev"], aligned["dev"], args.lag_frames)}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["dev"], indent=1))


def _alignments(utts, path: Path, features_root: str | None, split: str) -> dict[str, dict]:
    """utt_id -> {phones, starts, ends, scores, fallback}, computed once and stored in `path`."""
    if path.is_file():
        return json.loads(path.read_text())
    result = _stored_alignments(utts, Path(features_root) / split) if features_root else _aligned(utts, path.stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return result


def _aligned(utts, desc: str) -> dict[str, dict]:
    aligner, result = ForcedAligner(), {}
    for u in tqdm(utts, desc=f"align {desc}"):
        phones = u.canonical_phones
        a = aligner.align(load_audio(u.audio_path), phones)
        result[u.utt_id] = {"phones": [p.base for p in phones], "starts": [s.start for s in a.segments],
                            "ends": [s.end for s in a.segments], "scores": u.phone_accuracy, "fallback": a.fallback}
    return result


def _stored_alignments(utts, root: Path) -> dict[str, dict]:
    """The same records from a feature store's per-phone spans (the front-end ran the same aligner)."""
    store = FeatureStore(root)
    fallbacks, result = set(store.manifest.get("fallbacks", [])), {}
    for u in tqdm(utts, desc=f"spans {root.name}"):
        features = store.load(u.utt_id)
        if len(features.starts) != len(u.canonical_phones):
            raise SystemExit(f"{root}: {u.utt_id} has {len(features.starts)} phone spans for "
                             f"{len(u.canonical_phones)} canonical phones; was it extracted from another corpus?")
        result[u.utt_id] = {"phones": [p.base for p in u.canonical_phones],
                            "starts": [float(t) for t in features.starts], "ends": [float(t) for t in features.ends],
                            "scores": u.phone_accuracy, "fallback": u.utt_id in fallbacks}
    return result


def _states(model: WhisperPhoneRecogniser, utts, folder: Path) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    states = {}
    for u in tqdm(utts, desc="lower states"):
        path = folder / f"{u.utt_id}.npy"
        if not path.is_file():
            np.save(path, model.lower_states(log_mel(load_audio(u.audio_path).samples)))
        states[u.utt_id] = np.load(path)
    return states


def _targets(states: np.ndarray, a: dict):
    return frame_targets(len(states), a["phones"], np.array(a["starts"]), np.array(a["ends"]), a["scores"])


def _evaluate(model: WhisperPhoneRecogniser, states: dict, aligned: dict, lag: int) -> dict:
    good, bad, every, heard_good, lpp, acc = [], [], [], [], [], []
    for utt, x in tqdm(states.items(), desc="dev"):
        lp, a = model.predict_log_proba(x), aligned[utt]
        t = _targets(x, a)
        every.append(lp.argmax(1) == t.labels)
        phone_best = lp[:, :OUTSIDE].argmax(1)
        for phone, start, end, score in zip(a["phones"], a["starts"], a["ends"], a["scores"]):
            frames = phone_frames(start, end, len(lp))
            hit = phone_best[frames] == PHONE_INDEX[phone]
            (good if score >= 1.8 else bad if score <= 1.0 else []).append(hit)
            lpp.append(gop.gop_vector(lp, PHONE_INDEX[phone], frames.start, frames.stop, lag)[0])
            acc.append(score)
            if score >= 1.5:
                heard_good.append(gop.heard_nbest(lp, frames.start, frames.stop, 1, lag)[0][0] == phone)
    return {"well_pronounced_phone_frames": _mean(good), "low_scored_phone_frames": _mean(bad),
            "all_frames_incl_outside": _mean(every), "heard_is_canonical_on_phones_scored_ge_1.5": round(float(np.mean(heard_good)), 4),
            "lpp_pcc_with_phone_accuracy": round(float(np.corrcoef(lpp, acc)[0, 1]), 4), "n_phones": len(acc)}


def _mean(chunks: list[np.ndarray]) -> float:
    return round(float(np.concatenate(chunks).mean()), 4)


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--alignments-from", default=None, metavar="FEATURES",
                   help="read phone spans from FEATURES/<split> (an `orthoepy features` output) instead of aligning")
    p.add_argument("--limit", type=int, default=None, help="only the first N utterances of each split")
    p.add_argument("--epochs", type=int, default=PhoneRecogniserConfig.epochs)
    p.add_argument("--frozen-layers", type=int, default=PhoneRecogniserConfig.frozen_layers)
    p.add_argument("--lora-rank", type=int, default=0)
    p.add_argument("--lr", type=float, default=PhoneRecogniserConfig.lr)
    p.add_argument("--lag-frames", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


if __name__ == "__main__":
    main()
