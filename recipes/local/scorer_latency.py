#!/usr/bin/env python
"""Scoring latency of the network alone (no front-end, no calibration): torch vs onnxruntime, one thread each.

Usage: taskset -c 0 scorer_latency.py --model MODEL_DIR --features STORE_DIR [--n 100] [--out JSON]
Batch 1: per-utterance mean and p95 milliseconds. Batched: all n utterances at batch 32, utterances per second.
Warm-up runs are excluded. Uses MODEL_DIR/scorer.onnx when present, else exports to a temporary file.
With fewer than n utterances in the store, they are cycled.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from orthoepy.encoder.features.store import FeatureStore  # noqa: E402
from orthoepy.encoder.scorer.data import ScorerExample  # noqa: E402
from orthoepy.encoder.scorer.onnx_export import ONNX_FILE, OnnxScorerModel, export_onnx  # noqa: E402
from orthoepy.encoder.scorer.pipeline import Scorer  # noqa: E402
from orthoepy.encoder.scorer.train import predict  # noqa: E402

BATCH_SIZE = 32
WARMUP = 3

Predict = Callable[[Sequence[ScorerExample], int], object]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model directory from train-scorer")
    p.add_argument("--features", required=True, help="feature store directory (one split)")
    p.add_argument("--n", type=int, default=100, help="utterances to time")
    p.add_argument("--out", help="JSON file for the figures")
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    scorer = Scorer.from_pretrained(args.model, backend="torch")
    examples = load_examples(scorer, args.features, args.n)
    with tempfile.TemporaryDirectory() as scratch:
        onnx_path = Path(args.model) / ONNX_FILE
        if not onnx_path.is_file():
            onnx_path = Path(scratch) / ONNX_FILE
            export_onnx(scorer.model, onnx_path)
        onnx_model = OnnxScorerModel(onnx_path, providers=["CPUExecutionProvider"], threads=1)
        backends: dict[str, Predict] = {"torch": lambda ex, bs: predict(scorer.model, ex, bs),
                                        "onnxruntime": onnx_model.predict}
        rows = [{"backend": name, **time_backend(run, examples)} for name, run in backends.items()]
    print(markdown_table(rows, len(examples), sum(e.n_phones for e in examples) / len(examples)))
    if args.out:
        Path(args.out).write_text(json.dumps({"n": len(examples), "batch_size": BATCH_SIZE, "threads": 1,
                                              "rows": rows}, indent=1))


def load_examples(scorer: Scorer, store_dir: str, n: int) -> list[ScorerExample]:
    features = dict(itertools.islice(FeatureStore(store_dir), n))
    if not features:
        raise SystemExit(f"{store_dir}: no utterances")
    examples = scorer.examples(features)
    # cycled copies get distinct ids: predictions are keyed by utt_id
    return [replace(e, utt_id=f"{e.utt_id}#{i}") for i, e in zip(range(n), itertools.cycle(examples))]


def time_backend(run: Predict, examples: Sequence[ScorerExample]) -> dict[str, float]:
    for example in examples[:WARMUP]:
        run([example], 1)
    run(examples[:BATCH_SIZE], BATCH_SIZE)
    per_utterance_ms = []
    for example in examples:
        start = time.perf_counter()
        run([example], 1)
        per_utterance_ms.append(1000 * (time.perf_counter() - start))
    start = time.perf_counter()
    run(examples, BATCH_SIZE)
    batched_s = time.perf_counter() - start
    return {"batch1_mean_ms": round(float(np.mean(per_utterance_ms)), 2),
            "batch1_p95_ms": round(float(np.percentile(per_utterance_ms, 95)), 2),
            f"batch{BATCH_SIZE}_utt_per_s": round(len(examples) / batched_s, 1)}


def markdown_table(rows: list[dict], n: int, mean_phones: float) -> str:
    lines = [f"{n} utterances (mean {mean_phones:.1f} phones), 1 thread, warm-up excluded", "",
             f"| backend | batch 1 mean (ms) | batch 1 p95 (ms) | batch {BATCH_SIZE} (utt/s) |", "|---|---:|---:|---:|"]
    lines += [f"| {r['backend']} | {r['batch1_mean_ms']} | {r['batch1_p95_ms']} | {r[f'batch{BATCH_SIZE}_utt_per_s']} |"
              for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
