#!/usr/bin/env python
"""Speed of Whisper-base's encoder converted to PyTorch (encoder/features/whisper_torch.py) against CTranslate2.

One thread, the same unpadded log-mel input (a fixture utterance repeated and cut to --seconds), median of
--repeats timed runs after two warm-up runs. Also reports the per-frame cosine of each against CT2 float32.

    taskset -c 0 python recipes/local/whisper_torch_speed.py --audio ../shared/data/speechocean762/fixture/000360378.flac
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    args = _args()
    torch.set_num_threads(1)
    import ctranslate2
    from faster_whisper import WhisperModel

    from orthoepy.encoder.audio import load_audio
    from orthoepy.encoder.features.whisper import _assembled_base_model, default_cache_dir
    from orthoepy.encoder.features.whisper_phone_recogniser import log_mel
    from orthoepy.encoder.features.whisper_torch import encode, load_whisper_encoder

    samples = load_audio(args.audio).samples
    samples = np.resize(samples, int(args.seconds * 16000))  # repeats the utterance up to the length asked
    mel = log_mel(samples)[None]
    model_dir = str(_assembled_base_model(default_cache_dir()))
    encoder = load_whisper_encoder()
    ct2 = {c: WhisperModel(model_dir, device="cpu", compute_type=c, cpu_threads=1) for c in ("int8", "float32")}
    view = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel))

    def run_ct2(kind):
        return np.asarray(ct2[kind].model.encode(view, to_cpu=True))[0]

    def run_torch():
        with torch.no_grad():
            return encode(encoder, torch.from_numpy(mel))[0].numpy()

    reference = run_ct2("float32")
    report = {"seconds": args.seconds, "mel_frames": mel.shape[-1], "threads": torch.get_num_threads()}
    for name, fn in (("torch_float32", run_torch), ("ct2_int8", lambda: run_ct2("int8")),
                     ("ct2_float32", lambda: run_ct2("float32"))):
        out = fn()
        report[name] = {"median_s": round(_median_time(fn, args.repeats), 4), "min_cosine": round(float(_cos(out, reference).min()), 5),
                        "mean_cosine": round(float(_cos(out, reference).mean()), 5)}
    print(json.dumps(report, indent=1))


def _median_time(fn, repeats: int) -> float:
    fn(), fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=20)
    return p.parse_args()


if __name__ == "__main__":
    main()
