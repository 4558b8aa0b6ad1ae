#!/usr/bin/env python
"""Seconds a whole `assess` takes (reading, verification, front-end, scorer, rationale) on the fixture utterances.

    python recipes/local/assess_latency.py [--model DIR] [--rationale model] [--threads 2] [--out F.json]
        [--fixture ../shared/data/speechocean762/fixture]

One Assessor, loaded once and warmed up on the first utterance (not timed); then every fixture utterance is
assessed once through the Python API, as the service does. Prints and writes median / p95 / mean per stage
(the response's `timings`) and of the whole call, and how many rationales each source wrote. Run on an idle
machine: the issue's speed target is stated for one.
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from orthoepy.fusion.assessor import Assessor

DEFAULT_FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "data" / "speechocean762" / "fixture"


def summary(values: list[float]) -> dict[str, float]:
    return {"median_s": round(float(np.median(values)), 3), "p95_s": round(float(np.percentile(values, 95)), 3),
            "mean_s": round(float(np.mean(values)), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--rationale", default="model", choices=("auto", "model", "rubric", "none"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    parser.add_argument("--fixture", default=str(DEFAULT_FIXTURE))
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    fixture = Path(args.fixture)
    labels = json.loads((fixture / "scores.json").read_text())
    items = [(fixture / f"{utt}.flac", entry["text"]) for utt, entry in sorted(labels.items())
             if (fixture / f"{utt}.flac").is_file()]
    if len(items) < 2:
        raise SystemExit(f"{fixture}: fewer than two utterances with audio")
    assessor = Assessor.from_pretrained(args.model, rationale=args.rationale)
    assessor.warm_up()  # as the service does at startup: lazy model loads, the number reader's import
    assessor.assess(*items[0])  # first-call allocations
    totals, stages, sources = [], {}, Counter()
    for path, text in items[1:]:
        started = time.perf_counter()
        result = assessor.assess(path, text)
        totals.append(time.perf_counter() - started)
        for stage, seconds in result.timings.items():
            stages.setdefault(stage, []).append(float(seconds))
        if result.rationale is not None:
            sources[result.rationale.source] += 1
    report = {"utterances": len(totals), "rationale": args.rationale, "threads": args.threads,
              "model": args.model or "shipped", "assess": summary(totals),
              "stages": {k: summary(v) for k, v in stages.items()}, "rationale_sources": dict(sources)}
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
