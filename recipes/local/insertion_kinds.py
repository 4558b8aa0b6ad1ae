#!/usr/bin/env python
"""How the insertions found on stored train evidence are named (Insertion / Repetition), by case kind and place.

    python recipes/local/insertion_kinds.py --evidence exp/verif/train80c.json exp/verif/train80s2.json

Runs the shipped decisions (`decide` with the model directory's miscue detectors) on the evidence records of
`verification_benchmark.py --mode evidence` and counts, for repeated-word, spliced-word and untouched cases, the
insertions at the case's gap and elsewhere by kind. No model runs; a few seconds.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verification_benchmark import outcomes_from_evidence  # noqa: E402

from orthoepy.encoder.miscues import MiscueDetector  # noqa: E402
from orthoepy.encoder.verification import VerifierConfig  # noqa: E402

KINDS = ("repeated_word", "spliced_word", "untouched")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evidence", nargs="+", required=True)
    ap.add_argument("--model", default=str(Path(__file__).resolve().parents[2] / "fusion" / "models" / "default"))
    args = ap.parse_args(argv)
    records = [r for path in args.evidence for r in json.loads(Path(path).read_text())["records"] if r["kind"] in KINDS]
    outcomes = outcomes_from_evidence(records, VerifierConfig(), MiscueDetector.load(args.model))
    counts = collections.Counter()
    for o in outcomes:
        if o.get("refused"):
            continue
        for kind, after in o["insertions"]:
            place = "at its gap" if o["kind"] != "untouched" and after == o["target_word"] else "elsewhere"
            counts[f"{o['kind']} / {place} / {kind}"] += 1
    print(json.dumps(dict(sorted(counts.items())), indent=1))


if __name__ == "__main__":
    main()
