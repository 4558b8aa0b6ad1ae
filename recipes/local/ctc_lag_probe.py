#!/usr/bin/env python
"""How far the CTC recogniser's spikes lag the aligner: pool each phone's posteriors over frames shifted by k.

Usage: ctc_lag_probe.py --corpus DIR --features STORE_DIR [--split dev] [--max-shift 4]
Reports, per (margin, shift), how often the heard phone equals the canonical one on well-pronounced phones
(label >= 1.5), how often it differs on badly pronounced ones (label < 1), and the Pearson correlation of the
canonical phone's log posterior (LPP) with phone accuracy. Frames are chosen by posterior_gop.segment_frames,
as the feature group chooses them; the first row is the features' own window (margin 1, no shift).
"""
from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
from tqdm import tqdm

from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.posterior_gop import FRAME_SECONDS, POOL_SMOOTHING, PosteriorGOP, segment_frames
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
    print("| margin | shift (20 ms frames) | heard = canonical (label >= 1.5) | heard != canonical (label < 1) "
          "| LPP PCC |\n|---|---|---|---|---|")
    for margin, shift in [(1, 0)] + [(0, k) for k in range(args.max_shift + 1)]:
        match, miss, lpp, accuracy = _pool(utterances, margin, shift)
        print(f"| {margin} | {shift} | {np.mean(match):.3f} | {np.mean(miss):.3f} | "
              f"{np.corrcoef(lpp, accuracy)[0, 1]:.3f} |")


def _pool(utterances, margin: int, shift: int):
    match, miss, lpp, accuracy = [], [], [], []
    for phone_post, features, labels in utterances:
        for i, phone in enumerate(features.phones):
            segment = SimpleNamespace(start=features.starts[i], end=features.ends[i])
            mass = phone_post[segment_frames(segment, phone_post.shape[0], FRAME_SECONDS, margin, shift)].sum(axis=0)
            mass = (mass + POOL_SMOOTHING) / (mass + POOL_SMOOTHING).sum()
            lpp.append(np.log(mass[PHONE_INDEX[phone.base]]))
            accuracy.append(labels[i])
            heard_canonical = PHONES[int(mass.argmax())] == phone.base
            if labels[i] >= 1.5:
                match.append(heard_canonical)
            elif labels[i] < 1:
                miss.append(not heard_canonical)
    return match, miss, lpp, accuracy


if __name__ == "__main__":
    main()
