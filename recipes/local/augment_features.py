#!/usr/bin/env python
"""Error-augmented training data (encoder/scorer/augmentation.py): altered texts of train recordings and
non-speech, their labels, and their features, extracted exactly as at inference.

Writes
  OUT/items.json         the augmented utterance records (ids "<source>~<kind>", altered phones and labels)
  OUT/audio/             the non-speech recordings
  OUT/features/          a feature store of the items (manifest.json, utts/*.npz)
  OUT/slopes.json        the target slopes fitted on the train labels

    python recipes/local/augment_features.py --corpus $SO762_DIR --out /work/exp4/augmented --nj 2

Rerunnable: the items are re-drawn identically (--seed) and extraction is served from the feature cache.
The in-domain group is added afterwards by recipes/local/indomain_gop.py --augmented OUT.
"""
from __future__ import annotations

import argparse
import collections
import json
from dataclasses import asdict
from pathlib import Path

from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.frontend import FrontEndConfig
from orthoepy.encoder.features.store import extract_utterances
from orthoepy.encoder.scorer.augmentation import AugmentationPlan, TargetSlopes, augment, save_augmented


def main() -> None:
    args = _args()
    train = load_corpus(args.corpus, "train")
    slopes = TargetSlopes.fit(train)
    plan = AugmentationPlan(substitution=args.substitution, max_substitutions=args.max_substitutions,
                            omission=args.omission, mismatch=args.mismatch, nonspeech=args.nonspeech, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    items = augment(train, plan, slopes, out / "audio")
    save_augmented(items, out / "items.json")
    (out / "slopes.json").write_text(json.dumps({"plan": asdict(plan), "slopes": asdict(slopes)}, indent=1))
    print("items:", dict(collections.Counter(i.utt_id.split("~")[-1] if "~" in i.utt_id else "?" for i in items)))
    manifest = extract_utterances(items, out / "features", FrontEndConfig(), nj=args.nj)
    print(f"extracted {len(manifest['utterances'])} of {len(items)}; failures: {len(manifest['failures'])}")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--nj", type=int, default=None)
    defaults = AugmentationPlan()
    p.add_argument("--substitution", type=float, default=defaults.substitution)
    p.add_argument("--max-substitutions", type=int, default=defaults.max_substitutions)
    p.add_argument("--omission", type=float, default=defaults.omission)
    p.add_argument("--mismatch", type=float, default=defaults.mismatch)
    p.add_argument("--nonspeech", type=int, default=defaults.nonspeech)
    p.add_argument("--seed", type=int, default=defaults.seed)
    return p.parse_args()


if __name__ == "__main__":
    main()
