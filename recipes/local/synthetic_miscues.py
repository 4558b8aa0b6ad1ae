#!/usr/bin/env python
"""Miscues read naturally by a synthetic voice: what the verification benchmark's splices cannot show.

The verification benchmark (verification_benchmark.py) cuts and splices speechocean762 recordings; a reader who
skips, repeats or adds a word says the sentence in one breath instead. Here espeak-ng reads each sentence below as
written (untouched), with one inner word left out (omitted), with one word said twice (repeated) and with an
extra word put in (inserted), and the whole Assessor scores each against the sentence as written. Reported: the
share of left-out words flagged (as Omission, or any error), of repetitions and insertions reported anywhere and
at their gap, and on the untouched readings the false miscues (words flagged unread or heard as another word, and
insertions, per word of the text) and the words with any error type (the scorer's Mispronunciation included).

    python recipes/local/synthetic_miscues.py --out docs/synthetic_miscues.json     # ~5 min here

The sentences are the project's own; the voices are espeak-ng's English ones at a few speeds.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

SENTENCES = (
    "My sister reads a book every night",
    "We walked to the station in the rain",
    "The children played football after school",
    "He bought some fresh bread this morning",
    "Please open the window before you leave",
    "Our teacher gave us a difficult test",
    "They are going to visit their grandmother",
    "I usually drink a cup of green tea",
    "The little dog was sleeping under the table",
    "She wants to learn how to swim",
    "We have dinner together on Sunday evenings",
    "The train to London was late again",
    "My father works in a big hospital",
    "Can you help me carry these boxes",
    "The weather was cold and windy yesterday",
    "He forgot his keys at the office",
)
EXTRA_WORDS = ("really", "very", "the", "just", "then", "big")
VOICES = ("en-us", "en", "en-us+m3", "en+f2")


def variants(sentence: str, rng: np.random.Generator) -> list[dict]:
    words = sentence.split()
    k = int(rng.integers(1, len(words) - 1))  # an inner word
    extra = str(rng.choice(EXTRA_WORDS))
    return [
        {"kind": "untouched", "spoken": words, "target": None},
        {"kind": "omitted", "spoken": words[:k] + words[k + 1:], "target": k},
        {"kind": "repeated", "spoken": words[:k + 1] + [words[k]] + words[k + 1:], "target": k},
        {"kind": "inserted", "spoken": words[:k + 1] + [extra] + words[k + 1:], "target": k},
    ]


def speak(text: str, voice: str, speed: int, folder: Path) -> Path:
    wav = folder / f"{abs(hash((text, voice, speed)))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    return wav


def outcome(assessment, case: dict) -> dict:
    flags = [w.error_type != "None" for w in assessment.words]
    miscues = [w.error_type == "Omission" or w.heard_word is not None for w in assessment.words]
    insertions = list(assessment.insertions)
    k = case["target"]
    return {"kind": case["kind"], "text_words": len(assessment.words), "flags": int(sum(flags)),
            "miscue_flags": int(sum(miscues)), "error_types": [w.error_type for w in assessment.words],
            "insertions": len(insertions),
            "target_flagged": None if k is None or case["kind"] != "omitted" else bool(flags[k]),
            "target_omission": None if k is None or case["kind"] != "omitted"
            else assessment.words[k].error_type == "Omission",
            "insertion_at_gap": None if k is None or case["kind"] == "omitted"
            else any(i.after_word in (k, k + 1) for i in insertions),
            "completeness": assessment.sentence["completeness"], "total": assessment.sentence["total"]}


def summary(rows: list[dict]) -> dict:
    def share(values):
        values = [v for v in values if v is not None]
        return round(float(np.mean(values)), 3) if values else None

    by = {k: [r for r in rows if r["kind"] == k] for k in ("untouched", "omitted", "repeated", "inserted")}
    untouched_words = sum(r["text_words"] for r in by["untouched"])
    return {
        "cases": {k: len(v) for k, v in by.items()},
        "false_miscues_per_untouched_word": round(sum(r["miscue_flags"] + r["insertions"] for r in by["untouched"])
                                                  / max(1, untouched_words), 3),
        "any_flag_per_untouched_word": round(sum(r["flags"] for r in by["untouched"]) / max(1, untouched_words), 3),
        "untouched_completeness_10": share([r["completeness"] >= 9.95 for r in by["untouched"]]),
        "omitted_word_flagged": share([r["target_flagged"] for r in by["omitted"]]),
        "omitted_word_omission": share([r["target_omission"] for r in by["omitted"]]),
        "repetition_reported_anywhere": share([r["insertions"] > 0 for r in by["repeated"]]),
        "repetition_reported_at_gap": share([r["insertion_at_gap"] for r in by["repeated"]]),
        "insertion_reported_anywhere": share([r["insertions"] > 0 for r in by["inserted"]]),
        "insertion_reported_at_gap": share([r["insertion_at_gap"] for r in by["inserted"]]),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default=None, help="model directory (default: the shipped one)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from orthoepy.fusion.assessor import Assessor

    assessor = Assessor.from_pretrained(args.model, rationale="none")
    rng = np.random.default_rng(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        cases = [(s, c, VOICES[i % len(VOICES)], int(rng.integers(140, 180)))
                 for i, s in enumerate(SENTENCES) for c in variants(s, rng)]
        for sentence, case, voice, speed in tqdm(cases, desc="synthetic miscues", unit="case"):
            wav = speak(" ".join(case["spoken"]), voice, speed, Path(folder))
            rows.append({**outcome(assessor.assess(str(wav), sentence), case), "sentence": sentence,
                         "spoken": " ".join(case["spoken"]), "voice": voice, "speed": speed})
    report = {"summary": summary(rows), "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
