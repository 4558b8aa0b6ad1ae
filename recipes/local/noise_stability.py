"""How far white noise moves the sentence total, with the anchored alignment off and on (docs/frontend.md).

Each fixture utterance is assessed clean and with white noise at 30 and 20 dB SNR (seeded by the utterance id),
once with `Assessor.anchored_alignment` off and once on, with the shipped verification settings. Reported: the mean
|total(noisy) - total(clean)| and how many changes exceed 1 and 2 points, per setting, and every utterance's totals.

    python recipes/local/noise_stability.py --fixture ../shared/data/speechocean762/fixture \
        --out docs/noise_stability.json          # ~10 min here (32 utterances x 3 signals x 2 settings)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from orthoepy.fusion.assessor import Assessor

SNR_DB = (30, 20)


def with_noise(x: np.ndarray, snr_db: float, rng) -> np.ndarray:
    return (x + rng.normal(size=len(x)) * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", required=True, help="folder with <id>.flac and scores.json (texts)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    fixture = Path(args.fixture)
    texts = {k: v["text"] for k, v in json.loads((fixture / "scores.json").read_text()).items()}
    assessor = Assessor.from_pretrained(rationale="none")
    rows = []
    for uid in tqdm(sorted(texts), desc="fixture"):
        x, rate = sf.read(fixture / f"{uid}.flac", dtype="float32")
        rng = np.random.default_rng(int(uid))
        signals = {"clean": x, **{str(snr): with_noise(x, snr, rng) for snr in SNR_DB}}
        row = {"id": uid}
        for setting in ("off", "on"):
            assessor.anchored_alignment = setting == "on"
            row[setting] = {k: assessor.assess(y, texts[uid], sample_rate=rate).sentence["total"]
                            for k, y in signals.items()}
        rows.append(row)
    report = {"snr_db": list(SNR_DB), **{setting: summary(rows, setting) for setting in ("off", "on")}, "rows": rows}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}, indent=1))


def summary(rows: list[dict], setting: str) -> dict:
    changes = np.array([abs(r[setting][str(snr)] - r[setting]["clean"]) for r in rows for snr in SNR_DB])
    return {"mean_abs_change": round(float(changes.mean()), 3), "changes_over_1": int((changes > 1).sum()),
            "changes_over_2": int((changes > 2).sum())}


if __name__ == "__main__":
    main()
