#!/usr/bin/env python
"""Choose the pitch-range threshold below which a reading is flagged Monotone, by speaker-disjoint CV on train.

The statistic is the front-end's own utterance summary `f0_range_st`: the 5-95 percentile range of F0 in
semitones over the voiced frames between the first and the last aligned phone (encoder/features/prosody.py).
speechocean762 has no monotone labels, so the positives are made from the train readings themselves: each reading
resynthesised by PSOLA (Praat's Manipulation, through parselmouth) with its pitch contour compressed towards its
median, to 0% ("flat") and to 25% of its excursions ("compressed"); the negatives are the readings as recorded.
Per held-out fold of speakers, the threshold is the `--budget` quantile of the other folds' recorded readings (at
most that share of real readings flagged); recall and the false-flag rate are counted on the held-out fold. The
shipped threshold is that quantile over all train readings. Readings with under `--min-voiced-s` of voiced
frames are left out (no decision is taken on them at run time either).

    python recipes/local/monotone_threshold.py --corpus $SO762_DIR --features /work/exp4/features/train \\
        --out docs/monotone.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import parselmouth
from parselmouth.praat import call
from tqdm import tqdm

from orthoepy.encoder.audio import Audio, load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.prosody import (FRAME_STEP_S, PITCH_CEILING_HZ, PITCH_FLOOR_HZ, compute_contours,
                                               summarise_contours)
from orthoepy.encoder.features.store import FeatureStore
from orthoepy.encoder.folds import fold_of_speaker

COMPRESSIONS = {"flat": 0.0, "compressed": 0.25}


def main() -> None:
    args = _args()
    store = FeatureStore(args.features)
    utts = [u for u in load_corpus(args.corpus, "train") if u.utt_id in set(store.utt_ids)][:args.limit]
    rows = [row for u in tqdm(utts, desc="readings") if (row := _row(u, store, args.min_voiced_s)) is not None]
    folds = fold_of_speaker(sorted({r["speaker"] for r in rows}))
    report = {"setup": {"n_readings": len(rows), "left_out_short": len(utts) - len(rows), "budget": args.budget,
                        "min_voiced_s": args.min_voiced_s, "statistic": "f0_range_st (5-95 percentile, semitones)"},
              "folds": [_fold(rows, folds, k, args.budget) for k in range(max(folds.values()) + 1)]}
    recorded = np.array([r["recorded"] for r in rows])
    report["cv_mean"] = {k: round(float(np.mean([f[k] for f in report["folds"]])), 4)
                         for k in report["folds"][0] if k != "fold"}
    report["threshold_st"] = round(float(np.quantile(recorded, args.budget)), 3)
    report["recorded_range_st_quantiles"] = {q: round(float(np.quantile(recorded, float(q))), 2)
                                             for q in ("0.01", "0.02", "0.05", "0.5")}
    for kind in COMPRESSIONS:
        report[f"{kind}_range_st_median"] = round(float(np.median([r[kind] for r in rows])), 2)
    flagged = recorded < report["threshold_st"]
    prosodic = np.array([r["prosodic"] for r in rows])
    report["prosodic_label_mean"] = {"flagged": round(float(prosodic[flagged].mean()), 2) if flagged.any() else None,
                                     "not_flagged": round(float(prosodic[~flagged].mean()), 2)}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "folds"}, indent=1))


def _row(u, store: FeatureStore, min_voiced_s: float) -> dict | None:
    features = store.load(u.utt_id)
    start, end = float(features.starts[0]), float(features.ends[-1])
    audio = load_audio(u.audio_path)
    recorded = summarise_contours(compute_contours(audio), start, end)
    if recorded["f0_voiced_ratio"] * (end - start) < min_voiced_s:
        return None
    row = {"utt_id": u.utt_id, "speaker": u.speaker, "recorded": recorded["f0_range_st"],
           "prosodic": u.sentence.prosodic}
    for kind, factor in COMPRESSIONS.items():
        row[kind] = summarise_contours(compute_contours(compress_pitch(audio, factor)), start, end)["f0_range_st"]
    return row


def compress_pitch(audio: Audio, factor: float) -> Audio:
    """The recording resynthesised (PSOLA) with its F0 contour moved towards its median: st -> m + factor (st - m)."""
    sound = parselmouth.Sound(audio.samples.astype(np.float64), audio.sample_rate)
    manipulation = call(sound, "To Manipulation", FRAME_STEP_S, PITCH_FLOOR_HZ, PITCH_CEILING_HZ)
    tier = call(manipulation, "Extract pitch tier")
    values = np.array([call(tier, "Get value at index", i + 1) for i in range(call(tier, "Get number of points"))])
    if not len(values):
        return audio
    median = float(np.median(12 * np.log2(values / 100.0)))
    call(tier, "Formula", f"100 * 2 ^ (({median} + {factor} * (12 * log2(self / 100) - {median})) / 12)")
    call([tier, manipulation], "Replace pitch tier")
    out = call(manipulation, "Get resynthesis (overlap-add)")
    return Audio(np.clip(out.values[0], -1, 1).astype(np.float32), audio.sample_rate)


def _fold(rows: list[dict], folds: dict[str, int], k: int, budget: float) -> dict:
    train = np.array([r["recorded"] for r in rows if folds[r["speaker"]] != k])
    held = [r for r in rows if folds[r["speaker"]] == k]
    threshold = float(np.quantile(train, budget))
    result = {"fold": k, "threshold_st": round(threshold, 3),
              "false_flag_rate": round(float(np.mean([r["recorded"] < threshold for r in held])), 4)}
    for kind in COMPRESSIONS:
        result[f"{kind}_recall"] = round(float(np.mean([r[kind] < threshold for r in held])), 4)
    return result


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None)
    p.add_argument("--features", required=True, help="the train split's feature store (for the aligned spans)")
    p.add_argument("--budget", type=float, default=0.02, help="share of recorded readings that may be flagged")
    p.add_argument("--min-voiced-s", type=float, default=0.5)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--out", required=True)
    return p.parse_args()


if __name__ == "__main__":
    main()
