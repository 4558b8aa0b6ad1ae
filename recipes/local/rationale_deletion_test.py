#!/usr/bin/env python
"""Deletion test of the rationales (issue 13): silence the word a rationale blames and assess again.

A rationale that blames a word should be about that word's audio: replace the audio of the first word it blames
by silence (its aligned span), assess the edited recording, and the word's total must move (by at least
`--min-change` points) or the word must now be reported missing (Omission). As a control, the same is done to a
word the rationale does not blame (the first well-read word, a seeded choice among them): silencing it should move
the blamed word's score much less. The rationale comes from the shipped guard (`--rationale auto`: the model's
text when faithful, else the rubric's), so the blamed words are the ones a learner reads.

    python recipes/local/rationale_deletion_test.py --corpus $SO762_DIR --split test --limit 40 \
        --out docs/rationales_deletion.json            # ~15 min here with the model's rationale
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from tqdm import tqdm

from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.verification import NoSpeechError
from orthoepy.fusion.assessor import Assessor
from orthoepy.fusion.rationale_sources import sample_utterances
from orthoepy.rationalizer.mentions import parse_rationale
from orthoepy.rationalizer.rubric import word_key


def blamed_index(assessment) -> int | None:
    """The index of the first word of the text the rationale blames (None: it blames none)."""
    keys = [word_key(w.text) for w in assessment.words]
    for mention in parse_rationale(assessment.rationale.text if assessment.rationale else "").blamed_words:
        if mention.word in keys:
            return keys.index(mention.word)
    return None


def silenced(samples: np.ndarray, word, rate: int) -> np.ndarray:
    """The samples with the word's aligned span (its first phone's start to its last phone's end) set to 0."""
    out = samples.copy()
    out[int(word.phones[0].start * rate):int(word.phones[-1].end * rate)] = 0.0
    return out


def after_silencing(assessor: Assessor, samples, rate: int, text: str, word, index: int) -> dict:
    try:
        again = assessor.assess(silenced(samples, word, rate), text, sample_rate=rate)
    except NoSpeechError:
        return {"total": 0.0, "error_type": "Omission", "refused": True}
    return {"total": again.words[index].total, "error_type": again.words[index].error_type}


def moved(before: float, after: dict, min_change: float) -> bool:
    return abs(after["total"] - before) >= min_change or after["error_type"] == "Omission"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rationale", default="auto", choices=("auto", "model", "rubric"))
    ap.add_argument("--min-change", type=float, default=1.0, help="points of the word's total (0-10)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    with_rationale = Assessor.from_pretrained(rationale=args.rationale)
    plain = Assessor.from_pretrained(rationale="none")
    rng = random.Random(args.seed)
    rows = []
    for u in tqdm(sample_utterances(load_corpus(args.corpus, args.split), args.limit, args.seed), unit="utt"):
        audio = load_audio(u.audio_path)
        try:
            first = with_rationale.assess(audio.samples, u.text, sample_rate=audio.sample_rate)
        except NoSpeechError:  # refused as it stands: nothing to blame
            rows.append({"utt_id": u.utt_id, "source": None, "blamed": None, "refused": True})
            continue
        k = blamed_index(first)
        row = {"utt_id": u.utt_id, "source": first.rationale.source if first.rationale else None, "blamed": k}
        if k is not None:
            word = first.words[k]
            after = after_silencing(plain, audio.samples, audio.sample_rate, u.text, word, k)
            others = [j for j, w in enumerate(first.words) if j != k and w.error_type == "None"]
            row |= {"word": word.text, "before": word.total, "after": after, "moved": moved(word.total, after,
                                                                                               args.min_change)}
            if others:
                j = rng.choice(others)
                control = after_silencing(plain, audio.samples, audio.sample_rate, u.text, first.words[j], k)
                row |= {"control_word": first.words[j].text, "control_after": control,
                        "control_moved": moved(word.total, control, args.min_change)}
        rows.append(row)
    tested = [r for r in rows if r["blamed"] is not None]
    controls = [r for r in tested if "control_moved" in r]
    summary = {"split": args.split, "n": len(rows), "seed": args.seed, "rationale": args.rationale,
               "min_change": args.min_change, "texts_blaming_a_word": len(tested),
               "blamed_word_moved": round(sum(r["moved"] for r in tested) / len(tested), 3) if tested else None,
               "blamed_word_moved_when_another_word_is_silenced":
                   round(sum(r["control_moved"] for r in controls) / len(controls), 3) if controls else None,
               "sources": {s: sum(r["source"] == s for r in rows) for s in {r["source"] for r in rows}}}
    print(json.dumps(summary, indent=1))
    Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
