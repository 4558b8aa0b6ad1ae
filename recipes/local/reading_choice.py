#!/usr/bin/env python
"""How often `assess` picks the reading of a number that was actually spoken (encoder/variants.py).

Each case is a text with a number and the ways it can be read; espeak-ng speaks each way (written out in words),
and the assessment of the text with the number must come back with those words. Prints and writes the share of
readings picked right, per voice, and every miss.

    python recipes/local/reading_choice.py --out docs/reading_choice.json [--voices en-us,en-gb]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from tqdm import tqdm

from orthoepy.fusion.assessor import Assessor

CASES = (
    ("I was born in 1990.", ("nineteen ninety", "nineteen hundred ninety", "one thousand nine hundred ninety")),
    ("He came in 1905.", ("nineteen oh five", "nineteen hundred five", "one thousand nine hundred five")),
    ("It happened in 1066.", ("ten sixty six", "one thousand sixty six")),
    ("We met in 2005.", ("two thousand five", "two thousand and five")),
    ("It costs $5.50 today.", ("five dollars fifty", "five fifty", "five dollars fifty cents")),
    ("The train leaves at 10:30.", ("ten thirty",)),
    ("She finished 3rd in the race.", ("third",)),
    ("There were 250 people.", ("two hundred fifty", "two hundred and fifty")),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default="en-us,en-gb")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    assessor = Assessor.from_pretrained(rationale="none", verify=False)
    jobs = [(text, spoken, voice) for text, ways in CASES for spoken in ways for voice in args.voices.split(",")]
    hits, misses = 0, []
    for text, spoken, voice in tqdm(jobs, desc="readings", unit="reading"):
        said = _spoken_text(text, spoken)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "reading.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), said], check=True, capture_output=True)
            words = [w.text for w in assessor.assess(path, text).words]
        expected = _words(said)
        hits += words == expected
        if words != expected:
            misses.append({"text": text, "voice": voice, "said": said, "picked": " ".join(words)})
    report = {"readings": len(jobs), "picked_right": hits, "share": round(hits / len(jobs), 3), "misses": misses,
              "voices": args.voices}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


def _spoken_text(text: str, spoken: str) -> str:
    """The text with its number (the one token holding a digit) replaced by the words spoken."""
    return " ".join(spoken if any(c.isdigit() for c in token) else token for token in text.split())


def _words(text: str) -> list[str]:
    return [w.strip(".,").upper() for w in text.replace("-", " ").split() if w.strip(".,")]


if __name__ == "__main__":
    main()
