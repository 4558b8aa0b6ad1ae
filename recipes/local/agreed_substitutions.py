#!/usr/bin/env python
"""How often both Whisper transcriptions hear the same other word in a word's place, on stored train evidence,
and how the annotators scored those words (speechocean762 word accuracy, 0-10).

    python recipes/local/agreed_substitutions.py --corpus $SO762_DIR \
        --evidence exp/verif/train80c.json exp/verif/train80s2.json exp/verif/train_replaced.json

For each forced-probability bound: the share of words of untouched readings flagged, of cut words and of replaced
words (verification_benchmark.py case kinds), and the annotators' mean accuracy of the flagged untouched words.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.verification import Evidence, VerifierConfig, _agreed_substitutions, _in_place


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--evidence", nargs="+", required=True)
    args = ap.parse_args(argv)
    records = [r for path in args.evidence for r in json.loads(Path(path).read_text())["records"]
               if not r.get("refused") and r["kind"] in ("untouched", "cut_word", "replaced_word")]
    labels = {u.utt_id: u for u in load_corpus(args.corpus, "train")}
    for bound in (0.003, 0.01, 0.03, 0.1):
        config = VerifierConfig(agreed_forced=bound)
        flagged: dict[str, list[bool]] = {}
        accuracy = []
        for r in records:
            evidence, reference = Evidence.from_dict(r["evidence"]), [tuple(p) for p in r["reference"]]
            agreed = _agreed_substitutions(evidence, r["words"], reference,
                                           _in_place(reference, list(evidence.prompted)), config)
            if r["kind"] == "untouched":
                flagged.setdefault("untouched", []).extend(agreed)
                words = labels[r["utt_id"]].words
                if len(words) == len(agreed):
                    accuracy += [w.accuracy for w, a in zip(words, agreed) if a]
            else:
                flagged.setdefault(r["kind"], []).append(agreed[r["target_word"]])
        print(json.dumps({"agreed_forced": bound, **{k: round(float(np.mean(v)), 4) for k, v in flagged.items()},
                          "untouched_flagged_words": int(sum(flagged["untouched"])),
                          "their_mean_annotator_accuracy": round(float(np.mean(accuracy)), 2) if accuracy else None,
                          "their_share_scored_below_7": round(float(np.mean(np.array(accuracy) < 7)), 3)
                          if accuracy else None}))


if __name__ == "__main__":
    main()
