#!/usr/bin/env python3
"""Feature stores for the rationalizer alone, as a packaged model's front-end computes them (in-domain GOP included):
OUT/train for the utterances `orthoepy train-rationalizer` draws, OUT/test for the seeded sample
`orthoepy evaluate-rationales` draws. A shortcut when the full stage-1 stores are not at hand; unlike stage 1, the
train utterances' in-domain GOP comes from the packaged recogniser (fitted on all train speakers), not cross-fitted.

usage: rationalizer_features.py --corpus DIR --model MODEL_DIR --out DIR [--n-sft 360] [--n-pairs 64] [--limit 100]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.store import extract_utterances
from orthoepy.encoder.scorer.pipeline import Scorer
from orthoepy.fusion.assessor import frontend_config
from orthoepy.fusion.rationale_sources import sample_utterances
from orthoepy.rationalizer.pipeline import RationalizerRecipe, choose_utterances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="speechocean762 directory (default: $SO762_DIR)")
    parser.add_argument("--model", required=True, help="packaged model directory (its front-end configuration)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--n-sft", type=int, default=RationalizerRecipe.n_sft)
    parser.add_argument("--n-pairs", type=int, default=RationalizerRecipe.n_pairs)
    parser.add_argument("--limit", type=int, default=100, help="evaluation sample size (evaluate-rationales --limit)")
    parser.add_argument("--seed", type=int, default=0, help="as --seed of both commands")
    parser.add_argument("--nj", type=int, default=2)
    args = parser.parse_args()
    config = frontend_config(Scorer.from_pretrained(args.model))
    train = load_corpus(args.corpus, "train")
    sft_ids, pair_ids = choose_utterances([u.utt_id for u in train],
                                          RationalizerRecipe(n_sft=args.n_sft, n_pairs=args.n_pairs, seed=args.seed))
    chosen = set(sft_ids + pair_ids)
    extract_utterances([u for u in train if u.utt_id in chosen], Path(args.out) / "train", config, nj=args.nj)
    test = sample_utterances(load_corpus(args.corpus, "test"), args.limit, args.seed)
    extract_utterances(test, Path(args.out) / "test", config, nj=args.nj)


if __name__ == "__main__":
    main()
