#!/usr/bin/env python
"""How far the CTC recogniser's spikes lag the aligner: pool each phone's posteriors over frames shifted by k.

Usage: ctc_lag_probe.py --corpus DIR --features STORE_DIR [--split dev] [--max-shift 4]
Reports, per shift, how often the heard phone equals the canonical one on well-pronounced phones (label >= 1.5)
and the Pearson correlation of the canonical phone's log posterior (LPP) with phone accuracy.
"""
from __future__ import annotations

import argparse

import numpy as np
from tqdm import tqdm

from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.posterior_gop import FRAME_SECONDS, POOL_SMOOTHING, PosteriorGOP
from orthoepy.encoder.features.store import FeatureStore
from orthoepy.encoder.phoneset import PHONE_INDEX, PHONES


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--features", required=True, help="feature store of the split (for the aligned segments)")
    p.add_argument("--split", default="dev")
    p.add_argument("--max-shift", type=int, default=4)
    args = p.parse_args()
    group, labels = PosteriorGOP(), {u.utt_id: u for u in load_corpus(args.corpus, args.split)}
    utterances = [(group.frame_posteriors(load_audio(labels[u].audio_path)).phone, f, np.array(labels[u].phone_accuracy))
                  for u, f in tqdm(FeatureStore(args.features), desc="posteriors")]
    print("| shift (20 ms frames) | heard = canonical (label >= 1.5) | LPP PCC |\n|---|---|---|")
    for shift in range(args.max_shift + 1):
        match, lpp, accuracy = _pool(utterances, shift)
        print(f"| {shift} | {np.mean(match):.3f} | {np.corrcoef(lpp, accuracy)[0, 1]:.3f} |")


def _pool(utterances, shift: int):
    match, lpp, accuracy = [], [], []
    for phone_post, features, labels in utterances:
        frames = phone_post.shape[0]
        for i, phone in enumerate(features.phones):
            start = min(int(features.starts[i] / FRAME_SECONDS) + shift, frames - 1)
            end = min(max(start + 1, int(np.ceil(features.ends[i] / FRAME_SECONDS)) + shift), frames)
            mass = phone_post[start:end].sum(axis=0) + POOL_SMOOTHING
            mass /= mass.sum()
            lpp.append(np.log(mass[PHONE_INDEX[phone.base]]))
            accuracy.append(labels[i])
            if labels[i] >= 1.5:
                match.append(PHONES[int(mass.argmax())] == phone.base)
    return match, lpp, accuracy


if __name__ == "__main__":
    main()
