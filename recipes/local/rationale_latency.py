#!/usr/bin/env python3
"""Rationale generation latency of a trained rationalizer on this CPU: LoRA merged or apart, plain greedy vs
prompt-lookup decoding, PyTorch vs onnxruntime.

usage: rationale_latency.py --corpus DIR --features DIR/test --model MODEL_DIR --rationalizer DIR --out FILE
       [--limit 30] [--seed 1] [--threads 1] [--lookup 0,5,10] [--backends onnxruntime] [--no-apart]
Greedy decoding throughout; prompt lookup only proposes tokens copied from the prompt, which the model verifies,
and the onnxruntime decoder runs the same greedy loop, so neither should change the text ("same text": identical to
the first variant's text).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.scorer.pipeline import Scorer
from orthoepy.fusion.rationale_eval import rationale_cases, sample_utterances
from orthoepy.rationalizer.model import Rationalizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--corpus", "--features", "--model", "--rationalizer", "--out"):
        parser.add_argument(name, required=name != "--corpus")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1, help="which utterances are drawn (fusion.rationale_sources)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lookup", default="0,5,10", help="prompt_lookup_num_tokens values (0 = plain greedy)")
    parser.add_argument("--backends", default="", help="decoders besides PyTorch, e.g. onnxruntime (plain greedy)")
    parser.add_argument("--no-apart", action="store_true", help="leave out the variant with the LoRA apart")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scorer = Scorer.from_pretrained(args.model)
    cases = rationale_cases(scorer, sample_utterances(load_corpus(args.corpus, args.split), args.limit, args.seed),
                            args.features, Path(args.model).name)
    served = Rationalizer.from_pretrained(args.rationalizer)  # LoRA merged, as served
    variants = [(f"LoRA merged, {_decoding(k)}", served, k) for k in (int(x) for x in args.lookup.split(","))]
    for backend in filter(None, args.backends.split(",")):
        variants.append((f"LoRA merged, {backend}, plain greedy",
                         Rationalizer.from_pretrained(args.rationalizer, backend=backend), 0))
    if not args.no_apart:
        variants.append(("LoRA apart, plain greedy", Rationalizer.from_pretrained(args.rationalizer, merge=False), 0))
    rows, reference = [], None
    for name, rationalizer, lookup in variants:
        rationalizer.settings.prompt_lookup_tokens = lookup
        rationalizer.explain(cases[0].sheet, cases[0].word_states)  # warm-up
        runs = [rationalizer.explain(c.sheet, c.word_states) for c in cases]
        texts = [r.text for r in runs]
        reference = reference or texts  # the first variant: merged, plain greedy unless --lookup starts otherwise
        seconds = [r.seconds for r in runs]
        rows.append({"name": name, "mean_s": float(np.mean(seconds)), "p95_s": float(np.percentile(seconds, 95)),
                     "mean_new_tokens": float(np.mean([r.new_tokens for r in runs])),
                     "tokens_per_s": float(np.sum([r.new_tokens for r in runs]) / np.sum(seconds)),
                     "same_text": float(np.mean([a == b for a, b in zip(texts, reference)]))})
        print(rows[-1], flush=True)
    Path(args.out).write_text(json.dumps({"n": len(cases), "threads": args.threads, "rows": rows}, indent=1))


def _decoding(lookup: int) -> str:
    return "plain greedy" if lookup == 0 else f"prompt lookup {lookup}"


if __name__ == "__main__":
    main()
