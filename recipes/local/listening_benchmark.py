#!/usr/bin/env python
"""Does a scorer listen? Altered texts of speechocean762 recordings, scored beside the recordings' own texts.

Items (encoder/scorer/augmentation.py, drawn with --seed from --split): phones replaced by confusable ones in
well-read words (1-3 per item), a word of another text inserted (never read), the recording scored against
another speaker's text, and non-speech. Features come from the model's own front-end configuration (its
in-domain recogniser included), so this measures what the API returns from the scorer (without the
verification stage, which adds its own flags). Also: how many distinct sentence totals --spread of the split's
utterances get (to 0.01).

    python recipes/local/listening_benchmark.py --corpus $SO762_DIR --split test --model fusion/models/default \
        --work /work/exp4/listening --out docs/listening_test.json --nj 2

Reruns are served from the feature cache. Checks and thresholds: encoder/scorer/listening.py.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.store import FeatureStore, extract_utterances
from orthoepy.encoder.scorer.augmentation import AugmentationPlan, TargetSlopes, augment, mismatched
from orthoepy.encoder.scorer.listening import listening_report, spread_report
from orthoepy.encoder.scorer.pipeline import Scorer, calibrated_scores, predict
from orthoepy.fusion.assessor import frontend_config


def main() -> None:
    args = _args()
    scorer = Scorer.from_pretrained(args.model, backend="torch")
    utts = load_corpus(args.corpus, args.split)
    rng = np.random.default_rng(args.seed)
    sampled = [utts[i] for i in sorted(rng.choice(len(utts), min(args.spread, len(utts)), replace=False))]
    chosen = sampled[:args.n]
    slopes = TargetSlopes.fit(load_corpus(args.corpus, "train"))
    plan = AugmentationPlan(substitution=1.0, omission=args.omission, mismatch=0.0, nonspeech=args.nonspeech,
                            seed=args.seed)
    work = Path(args.work)
    items = augment(chosen, plan, slopes, work / "audio") + _mismatches(utts, args.mismatch, rng)
    config = frontend_config(scorer)
    extract_utterances(items, work / "items", config, nj=args.nj)
    extract_utterances(sampled, work / "sources", config, nj=args.nj)
    features = {**dict(FeatureStore(work / "items")), **dict(FeatureStore(work / "sources"))}
    examples = scorer.examples(features)
    scores = calibrated_scores(scorer, predict(scorer.model, examples))
    report = listening_report({u.utt_id: u for u in items}, {u.utt_id: u for u in utts}, scores)
    report["distinct_sentence_totals"] = spread_report(np.array([scores[u.utt_id].sentence_total for u in sampled]))
    report["setup"] = {"model": str(args.model), "split": args.split, "n_substitution_sources": len(chosen),
                       "plan": asdict(plan), "n_mismatch": args.mismatch, "seed": args.seed,
                       "frontend_groups": list(config.groups)}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def _mismatches(utts, n: int, rng: np.random.Generator):
    """n recordings, each against the text of a recording of another speaker with another text."""
    out = []
    for i in rng.choice(len(utts), min(n, len(utts)), replace=False):
        u = utts[int(i)]
        while True:
            other = utts[int(rng.integers(len(utts)))]
            if other.speaker != u.speaker and other.text != u.text:
                break
        out.append(mismatched(u, other, f"{u.utt_id}~mismatch"))
    return out


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None)
    p.add_argument("--split", default="test")
    p.add_argument("--model", required=True)
    p.add_argument("--work", required=True, help="folder for the items' audio and feature stores")
    p.add_argument("--out", required=True)
    p.add_argument("--spread", type=int, default=500, help="recordings scored with their own texts (distinct totals)")
    p.add_argument("--n", type=int, default=300, help="of those, recordings whose texts get substitutions")
    p.add_argument("--omission", type=float, default=0.34, help="share of those that also get an unread word")
    p.add_argument("--mismatch", type=int, default=200)
    p.add_argument("--nonspeech", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=None)
    return p.parse_args()


if __name__ == "__main__":
    main()
