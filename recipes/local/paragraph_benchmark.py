"""Long readings: synthetic paragraphs (espeak-ng) of 20 s to 5 min through the whole Assessor.

Reports per paragraph: duration, alignment fallback, chunks, words flagged, UnexpectedBreak at sentence ends,
and the real-time factor of the whole assessment (rationale off).

    python recipes/local/paragraph_benchmark.py --corpus $SO762_DIR --out docs/paragraphs.json
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.fusion.assessor import Assessor

TARGETS_S = (20, 60, 120, 300)
WORDS_PER_SECOND = 2.4  # espeak-ng at 150 words per minute, with sentence pauses


def paragraph(sentences: list[str], seconds: float) -> str:
    words, chosen = 0, []
    for s in sentences:
        if words >= seconds * WORDS_PER_SECOND:
            break
        chosen.append(s.capitalize() + ".")
        words += len(s.split())
    return " ".join(chosen)


def synthesise(text: str, folder: Path) -> Path:
    wav = folder / f"p{abs(hash(text)) % 10**8}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
    return wav


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    sentences = sorted({u.text.lower() for u in load_corpus(args.corpus, "test") if len(u.text.split()) >= 5})
    assessor = Assessor.from_pretrained(rationale="none")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for k, target in enumerate(TARGETS_S):
            text = paragraph(sentences[k * 40:], target)
            wav = synthesise(text, Path(folder))
            duration = load_audio(wav).duration
            started = time.perf_counter()
            result = assessor.assess(str(wav), text)
            seconds = time.perf_counter() - started
            ends = {i for i, p in enumerate(text.split()) if p.endswith(".")}
            flagged = [w.error_type for w in result.words if w.error_type != "None"]
            rows.append({"target_s": target, "duration_s": round(duration, 1), "words": len(result.words),
                         "fallback": result.alignment_fallback, "flagged": len(flagged),
                         "flag_types": sorted(set(flagged)),
                         "unexpected_break_after_full_stop": sum(
                             w.error_type == "UnexpectedBreak" and (i - 1) in ends for i, w in enumerate(result.words)),
                         "completeness": result.sentence["completeness"], "seconds": round(seconds, 1),
                         "rtf": round(seconds / duration, 3)})
            print(json.dumps(rows[-1]))
    Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
