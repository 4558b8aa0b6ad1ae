#!/usr/bin/env python
"""What Whisper's language identification adds to the text judgement, on stored verification evidence.

    python recipes/local/language_rule.py --model fusion/models/default \
        --evidence exp/verif/train80c.json exp/verif/train80s2.json --out docs/language_rule.json

Per case kind (verification_benchmark.py): how many recordings language identification calls another language
(p >= non_english_probability), how many the text judgement (the model's text detector) calls not a reading of
their text, and how many only the language identification does. Up to session 14 such a recording had every word
unread; now language identification only names what the text judgement found (encoder.verification.decide).
The detector was fitted on these train cases, so its own counts are in-sample; the language identification is not
fitted at all.
"""
from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from orthoepy.encoder.miscues import MiscueDetector
from orthoepy.encoder.verification import Evidence, VerifierConfig, _not_english


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="model directory with miscues.json")
    ap.add_argument("--evidence", nargs="+", required=True)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    detector, config = MiscueDetector.load(args.model), VerifierConfig()
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for path in args.evidence:
        for r in json.loads(Path(path).read_text())["records"]:
            if r.get("refused") or not r.get("evidence"):
                continue
            evidence, reference = Evidence.from_dict(r["evidence"]), [tuple(p) for p in r["reference"]]
            language = _not_english(evidence.language, evidence.language_probability, config)
            other = bool(evidence.forced) and detector.other_text(evidence, reference) >= detector.text.threshold
            c = counts[r["kind"]]
            c.update(cases=1, language_identification=language, text_detector=other,
                     language_identification_only=language and not other)
    report = {k: dict(v) for k, v in sorted(counts.items())}
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"evidence": args.evidence, "by_kind": report}, indent=1) + "\n")


if __name__ == "__main__":
    main()
