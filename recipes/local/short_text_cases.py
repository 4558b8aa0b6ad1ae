#!/usr/bin/env python
"""Single words and pairs read alone (a drill), by espeak-ng: each read as written and as another word.

A correct reading must count as read with a total like any correct reading; another word must be flagged and
score low. Prints one line per case (total, completeness, per word: error type and accuracy) and, with --out,
writes them as JSON.

    python recipes/local/short_text_cases.py --out docs/short_text_cases.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

# (what espeak-ng reads, the text given)
CASES = (("cat", "cat"), ("dog", "cat"), ("asked", "asked"), ("ask", "asked"), ("walked", "walked"),
         ("walk", "walked"), ("house", "house"), ("window", "window"), ("yellow", "window"), ("apple", "apple"),
         ("orange", "apple"), ("good morning", "good morning"), ("good evening", "good morning"),
         ("thank you", "thank you"), ("hello there", "thank you"))


def main() -> None:
    args = _args()
    from orthoepy.fusion.assessor import Assessor

    assessor = Assessor.from_pretrained(args.model, rationale="none")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for spoken, text in CASES:
            path = Path(folder) / "case.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), spoken], check=True)
            result = assessor.assess(path, text)
            rows.append({"spoken": spoken, "text": text, "total": result.sentence["total"],
                         "completeness": result.sentence["completeness"],
                         "words": [[w.text, w.error_type, w.accuracy] for w in result.words]})
            print(f"{spoken:>13} for {text:<13} total {rows[-1]['total']:4.1f}  completeness "
                  f"{rows[-1]['completeness']:4.1f}  {rows[-1]['words']}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model directory (default: the shipped one)")
    p.add_argument("--out", default=None)
    return p.parse_args()


if __name__ == "__main__":
    main()
