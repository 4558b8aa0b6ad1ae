#!/usr/bin/env python
"""Issue 13's faithfulness measures beyond self-consistency, from stored `evaluate-rationales` results.

For every system of an evaluation file (docs/rationales_eval.json), each example's score sheet is rebuilt from
the stored response, and both the model's first text (no guard) and the returned text (after the guard) are
evaluated again: quoted words that are not in the text (issue 13 asks for none), and the share of texts that
blame the worst word and, where a phone scores below 1, the lowest such phone. No model runs.

    python recipes/local/rationale_measures.py docs/rationales_eval.json --out docs/rationales_measures.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

from orthoepy.fusion.rationale import sheet_from_words
from orthoepy.rationalizer.faithfulness import FaithfulnessEvaluator, summarize

KEPT = ("faithful_fraction", "extra_words", "worst")


def sheet_of(response: dict):
    words = [SimpleNamespace(**{**w, "phones": [SimpleNamespace(**p) for p in w["phones"]]})
             for w in response["words"]]
    return sheet_from_words(response["text"], response["sentence"], words)


def measures(examples: list[dict], evaluator: FaithfulnessEvaluator) -> dict:
    sheets = [sheet_of(e["response"]) for e in examples]
    out = {}
    for name, texts in (("generated", [e["generated"] for e in examples]),
                        ("returned", [e["returned"]["text"] for e in examples])):
        summary = summarize([evaluator.evaluate(t, s) for t, s in zip(texts, sheets)])
        out[name] = {k: summary[k] for k in KEPT}
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("evaluation", help="an evaluate-rationales JSON (with its examples)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    stored = json.loads(Path(args.evaluation).read_text())
    evaluator = FaithfulnessEvaluator()
    result = {"evaluation": args.evaluation, "split": stored["split"], "n": stored["n"],
              "systems": {name: measures(examples, evaluator) for name, examples in stored["examples"].items()}}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
