"""False flags on correct synthetic readings: the network's phone scores against the phone-evidence fusion's.

Test texts of speechocean762 are read correctly by espeak-ng (voices taken in turn), aligned to their canonical
phones and scored as `assess` scores them (no verification stage). Counted: phones below 1.0 (the response's
`mispronounced`) and words with such a phone, with the network's scores and with the fused ones.

    python recipes/local/tts_controls.py --corpus $SO762_DIR --n 120 --voices en-us,en-gb,en-us+f3 \\
        --out docs/tts_controls.json

--assess: each reading goes through `Assessor.assess` with its text instead (the lexicon's pronunciations and
variants, numbers read out, no verification stage), as a user's text does; counted from the response's phones.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.phoneset import canonical_phones
from orthoepy.fusion.assessor import Assessor, fuse_phone_scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None)
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--n", type=int, default=120)
    p.add_argument("--voices", default="en-us,en-gb,en-us+f3")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True)
    p.add_argument("--assess", action="store_true", help="score each reading through Assessor.assess with its text")
    args = p.parse_args()
    assessor = Assessor.from_pretrained(args.model, rationale="none", verify=False)
    if args.assess:
        return _assessed(assessor, args)
    if assessor.phone_evidence is None:
        raise SystemExit("the model directory has no phone_evidence.json: nothing to compare")
    utterances = load_corpus(args.corpus, "test")
    random.Random(args.seed).shuffle(utterances)
    voices = args.voices.split(",")
    counts = {"readings": 0, "words": 0, "phones": 0}
    flagged = {"network": {"phones": 0, "words": 0}, "fused": {"phones": 0, "words": 0}}
    for k, utt in enumerate(tqdm(utterances[:args.n], desc="readings", unit="utt")):
        network, fused, word_index = _scores(assessor, utt, voices[k % len(voices)])
        for name, scores in (("network", network), ("fused", fused)):
            flagged[name]["phones"] += int((scores < 1.0).sum())
            flagged[name]["words"] += len(set(word_index[scores < 1.0].tolist()))
        counts["readings"] += 1
        counts["words"] += len(utt.words)
        counts["phones"] += len(network)
    report = {**counts, "flagged": flagged,
              "words_flagged_share": {n: round(f["words"] / counts["words"], 4) for n, f in flagged.items()},
              "setup": vars(args)}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


def _assessed(assessor: Assessor, args) -> None:
    utterances = load_corpus(args.corpus, "test")
    random.Random(args.seed).shuffle(utterances)
    voices = args.voices.split(",")
    counts = {"readings": 0, "words": 0, "phones": 0, "phones_flagged": 0, "words_flagged": 0}
    for k, utt in enumerate(tqdm(utterances[:args.n], desc="readings", unit="utt")):
        with tempfile.TemporaryDirectory() as folder:
            path = _speak(utt.text, voices[k % len(voices)], Path(folder))
            result = assessor.assess(path, utt.text)
        scores = [[p.score for p in w.phones] for w in result.words]
        counts["readings"] += 1
        counts["words"] += len(scores)
        counts["phones"] += sum(len(w) for w in scores)
        counts["phones_flagged"] += sum(s < 1.0 for w in scores for s in w)
        counts["words_flagged"] += sum(any(s < 1.0 for s in w) for w in scores)
    report = {**counts, "words_flagged_share": round(counts["words_flagged"] / counts["words"], 4), "setup": vars(args)}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


def _speak(text: str, voice: str, folder: Path) -> Path:
    path = folder / "reading.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    return path


def _scores(assessor: Assessor, utt, voice: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with tempfile.TemporaryDirectory() as folder:
        clip = load_audio(_speak(utt.text, voice, Path(folder)))
    features = assessor.frontend.extract(clip, canonical_phones([list(w.phones) for w in utt.words]))
    (scored,) = assessor.scorer.score_examples(assessor.scorer.examples({"input": features}))
    fused = fuse_phone_scores(scored, assessor.edit_gains(clip, features), assessor.phone_evidence)
    return np.asarray(scored.phone), np.asarray(fused.phone), np.array([p.word_index for p in features.phones])


if __name__ == "__main__":
    main()
