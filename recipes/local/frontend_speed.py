#!/usr/bin/env python
"""Wall time and real-time factor of each front-end stage, one process, one thread.

Usage: taskset -c 0 frontend_speed.py --corpus DIR --split test --n 100 [--out docs/frontend_speed.json]
Model loading is timed separately and excluded from the per-utterance figures.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402

from tqdm import tqdm  # noqa: E402

from orthoepy.encoder.audio import load_audio  # noqa: E402
from orthoepy.encoder.corpus import load_corpus  # noqa: E402
from orthoepy.encoder.features.frontend import FrontEnd, FrontEndConfig  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--whisper", default="base")
    p.add_argument("--out")
    args = p.parse_args()

    start = time.perf_counter()
    frontend = FrontEnd(FrontEndConfig(whisper_size=args.whisper))
    load_s = time.perf_counter() - start
    utterances = load_corpus(args.corpus, args.split)[: args.n]
    totals: dict[str, float] = defaultdict(float)
    audio_s = 0.0
    for utt in tqdm(utterances, desc="timing", unit="utt"):
        t0 = time.perf_counter()
        audio = load_audio(utt.audio_path)
        totals["audio decode"] += time.perf_counter() - t0
        features = frontend.extract(audio, utt.canonical_phones)
        for stage, seconds in features.timings.items():
            totals[stage] += seconds
        audio_s += audio.duration
    totals["whole front-end"] = sum(totals.values())
    rows = [{"stage": k, "seconds": round(v, 2), "ms_per_utt": round(1000 * v / len(utterances), 1), "rtf": round(v / audio_s, 4)}
            for k, v in totals.items()]
    print(f"{len(utterances)} {args.split} utterances, {audio_s:.1f} s of audio (mean {audio_s / len(utterances):.2f} s); model load {load_s:.1f} s")
    print("| stage | total s | ms / utterance | RTF |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['stage']} | {r['seconds']} | {r['ms_per_utt']} | {r['rtf']} |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"n": len(utterances), "audio_seconds": round(audio_s, 1), "model_load_s": round(load_s, 1), "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
