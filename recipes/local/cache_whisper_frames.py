"""Cache Whisper encoder frames (float16 .npy, (T, dims) at 20 ms) for every utterance of the chosen splits.

    python recipes/local/cache_whisper_frames.py --corpus $SO762_DIR --splits train dev test --out /work/exp3/whisper_frames

With --items (recipes/local/augment_features.py's items.json) also the augmented items' recordings that are
not corpus utterances (non-speech), named by their source id. Reruns skip utterances whose file exists. One thread: the machine is shared.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.whisper import WhisperFeatures
from orthoepy.encoder.scorer.augmentation import load_augmented, source_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=None)
    parser.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--whisper", default="base")
    parser.add_argument("--items", default=None, help="augmented items.json: frames of their non-corpus recordings too")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    whisper = WhisperFeatures(model=args.whisper, cpu_threads=1)
    for split in args.splits:
        utts = load_corpus(args.corpus, split)
        start = time.perf_counter()
        for i, utt in enumerate(utts):
            target = out / f"{utt.utt_id}.npy"
            if not target.exists():
                frames = whisper.encoder_frames(load_audio(utt.audio_path))
                np.save(target, frames.astype(np.float16))
            if i % 250 == 0:
                print(f"{split}: {i}/{len(utts)} {time.perf_counter() - start:.0f}s", flush=True)
        print(f"{split}: done, {len(utts)} utterances, {time.perf_counter() - start:.0f}s", flush=True)
    if args.items:
        corpus_ids = {u.utt_id for u in load_corpus(args.corpus)}
        for item in load_augmented(args.items):
            target = out / f"{source_id(item.utt_id)}.npy"
            if source_id(item.utt_id) not in corpus_ids and not target.exists():
                np.save(target, whisper.encoder_frames(load_audio(item.audio_path)).astype(np.float16))


if __name__ == "__main__":
    main()
