#!/usr/bin/env python
"""Seconds the reading verification spends per stage, on the fixture utterances (or any folder of FLAC + scores.json).

    python recipes/local/verification_latency.py [--fixture ../shared/data/speechocean762/fixture] [--out F.json]

Stages of `ReadingVerifier.gather`: VAD + Whisper encoder + language ID, free transcription, forced text,
prompted transcription, doubled-word forcing, the phone recogniser's posteriors (shared with the front end in the
Assessor) and its CTC gains (encoder/phone_gains.py). Run on an idle machine; median and p95 per stage are printed.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.lexicon import Lexicon
from orthoepy.encoder.verification import ReadingVerifier, _window_of_words, _windows, word_times

DEFAULT_FIXTURE = Path(__file__).resolve().parents[3] / "shared" / "data" / "speechocean762" / "fixture"


def stages(verifier: ReadingVerifier, audio, words, reference) -> dict[str, float]:
    marks, t = {}, time.perf_counter()

    def mark(name):
        nonlocal t
        now = time.perf_counter()
        marks[name], t = now - t, now

    segments = verifier.speech_segments(audio)
    windows = _windows(segments, audio.duration)
    encoded = [verifier._encode(audio, w) for w in windows]
    verifier._language(encoded[0][0])
    mark("vad_encode_language")
    heard = [h for (enc, frames), w in zip(encoded, windows) for h in verifier._transcribe(enc, frames, w[0])[0]]
    mark("free_transcription")
    verifier._forced(encoded, windows, words, reference, heard)
    mark("forced_text")
    owner = _window_of_words(reference, heard, windows)
    prompted = [h for k, ((enc, frames), w) in enumerate(zip(encoded, windows))
                for h in verifier._transcribe_prompted(enc, frames, w[0],
                                                       [words[i] for i in range(len(words)) if owner[i] == k])]
    mark("prompted_transcription")
    verifier._doubled(encoded, words, owner)
    mark("doubled_words")
    verifier._phone_recogniser.frame_posteriors(audio)
    mark("phone_posteriors")  # in the Assessor the front end reuses them (one cached pass)
    verifier._phone_gains(audio, reference, owner, windows, word_times(reference, [heard, prompted], audio.duration))
    mark("phone_gains")
    return marks


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fixture", default=str(DEFAULT_FIXTURE))
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    fixture = Path(args.fixture)
    scores = json.loads((fixture / "scores.json").read_text())
    lexicon = Lexicon()
    verifier = ReadingVerifier(lexicon=lexicon)
    rows = []
    for k, (utt, entry) in enumerate(sorted(scores.items())):
        reading = lexicon.pronounce(entry["text"])
        timing = stages(verifier, load_audio(fixture / f"{utt}.flac"), list(reading.words),
                        [tuple(p) for p in reading.phones])
        if k > 0:  # the first call pays one-off start-up costs
            rows.append(timing)
    summary = {name: {"median_s": round(float(np.median([r[name] for r in rows])), 3),
                      "p95_s": round(float(np.percentile([r[name] for r in rows], 95)), 3)} for name in rows[0]}
    summary["total"] = {"median_s": round(float(np.median([sum(r.values()) for r in rows])), 3),
                        "p95_s": round(float(np.percentile([sum(r.values()) for r in rows], 95)), 3)}
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({"utterances": len(rows), "stages": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
