"""The phone recogniser's check of the text detector: `VerifierConfig.read_text_lpr`, fitted on train.

The text detector (encoder/miscues.py) weighs Whisper's evidence, and Whisper misses accented readings of names and
letters: on dev, 3 of the first 116 untouched readings were judged "another text" and scored 0 (one labelled 8).
The phone recogniser has no language model: the text's log posterior ratio per phone (encoder.phone_gains.text_lpr)
stays near 0 for a reading of the text, accented or not, and falls by several nats a phone for another text. A
recording is then never judged another text when its text LPR is at or above the threshold.

Cases (train split; nothing is stored but the report's rates and percentiles): each sampled recording with its own
text (a reading) and with another utterance's text (not one), the same two with white noise at 10, 5 or 0 dB SNR,
and espeak-ng speech in French, German, Spanish and Italian with English train texts (not one). The threshold is the
value that at most `--budget` of each kind of not-a-reading cases reach (the largest of the kinds' upper quantiles),
so the check lets through at most that share of what the text detector catches. Reported over 5 speaker-disjoint
folds (encoder/folds.py: the threshold fitted on four folds' cases, counted on the fifth's), then fitted on all of
them.

    python recipes/local/text_lpr_threshold.py --corpus $SO762_DIR --n 800 --out docs/text_lpr_threshold.json   # ~8 min
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from orthoepy.encoder.audio import Audio, load_audio
from orthoepy.encoder.corpus import load_corpus, resolve_corpus_dir
from orthoepy.encoder.features.posterior_gop import FRAME_SECONDS, PosteriorGOP
from orthoepy.encoder.folds import fold_of_speaker
from orthoepy.encoder.lexicon import Lexicon
from orthoepy.encoder.phone_gains import phone_ids, text_lpr

NOT_READINGS = ("other_text", "other_text_noisy", "other_language")
# white noise: the recogniser's posteriors flatten, and the text LPR of a text that was not read rises toward a
# reading's (a newcomer's -5 dB copy of a fixture recording reached -1.8 against another text)
NOISY_SNR_DB = (10.0, 5.0, 0.0)
FOREIGN = {
    "fr": ["Je voudrais une tasse de café, s'il vous plaît.", "Le train part à huit heures du matin.",
           "Nous avons visité le musée hier après-midi.", "Il fait très froid dans la montagne en hiver.",
           "Ma sœur travaille dans une grande banque à Paris."],
    "de": ["Ich möchte bitte eine Tasse Kaffee.", "Der Zug fährt um acht Uhr morgens ab.",
           "Wir haben gestern das Museum besucht.", "Im Winter ist es in den Bergen sehr kalt.",
           "Meine Schwester arbeitet bei einer großen Bank."],
    "es": ["Me gustaría una taza de café, por favor.", "El tren sale a las ocho de la mañana.",
           "Ayer por la tarde visitamos el museo.", "En invierno hace mucho frío en la montaña.",
           "Mi hermana trabaja en un banco muy grande."],
    "it": ["Vorrei una tazza di caffè, per favore.", "Il treno parte alle otto del mattino.",
           "Ieri pomeriggio abbiamo visitato il museo.", "In inverno fa molto freddo in montagna.",
           "Mia sorella lavora in una grande banca."],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="speechocean762 directory (default: $SO762_DIR)")
    parser.add_argument("--n", type=int, default=800, help="train recordings sampled")
    parser.add_argument("--budget", type=float, default=0.01, help="share of not-a-reading cases let through")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    corpus = resolve_corpus_dir(args.corpus)
    rng = np.random.default_rng(args.seed)
    utts = load_corpus(corpus, "train")
    sample = [utts[i] for i in sorted(rng.choice(len(utts), min(args.n, len(utts)), replace=False))]
    lexicon, recogniser = Lexicon.from_corpus(corpus), PosteriorGOP()
    rows = []
    for u in tqdm(sample, desc="train recordings"):
        other = next(o for o in (utts[int(i)] for i in rng.permutation(len(utts))) if o.text != u.text)
        audio = load_audio(u.audio_path)
        log_probs = recogniser.frame_log_probs(audio)
        rows.append(_row(u.speaker, "reading", u.sentence.total, log_probs, lexicon, u.text))
        rows.append(_row(u.speaker, "other_text", u.sentence.total, log_probs, lexicon, other.text))
        noisy = recogniser.frame_log_probs(_with_noise(audio, float(rng.choice(NOISY_SNR_DB)), rng))
        rows.append(_row(u.speaker, "reading_noisy", u.sentence.total, noisy, lexicon, u.text))
        rows.append(_row(u.speaker, "other_text_noisy", u.sentence.total, noisy, lexicon, other.text))
    for k, (language, sentence) in enumerate(tqdm([(la, s) for la, ss in FOREIGN.items() for s in ss for _ in (0, 1)],
                                                  desc="other languages")):
        audio = _espeak(language, sentence, int(rng.uniform(130, 175)))
        text = sample[int(rng.integers(len(sample)))].text
        rows.append(_row(f"synthetic{k % 5}", "other_language", None, recogniser.frame_log_probs(audio), lexicon, text))
    report = summarise(rows, args.budget)  # rates and percentiles only: no corpus labels or ids are written
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


def _row(speaker: str, kind: str, label, log_probs: np.ndarray, lexicon: Lexicon, text: str) -> dict:
    words = [list(p) for p in lexicon.pronounce(text).phones]
    value = text_lpr(log_probs, phone_ids(words), [0] * len(words), [(0.0, len(log_probs) * FRAME_SECONDS)],
                     FRAME_SECONDS)
    return {"speaker": speaker, "kind": kind, "label": label, "text_lpr": value}


def _with_noise(audio: Audio, snr_db: float, rng) -> Audio:
    """White noise added at `snr_db` dB below the recording's mean power."""
    x = audio.samples.astype(np.float64)
    noise = rng.normal(size=len(x)) * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))
    return Audio(np.clip(x + noise, -1, 1).astype(np.float32), audio.sample_rate)


def _espeak(language: str, text: str, speed: int) -> Audio:
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "x.wav"
        subprocess.run(["espeak-ng", "-v", language, "-s", str(speed), "-w", str(wav), text], check=True)
        return load_audio(wav)


def threshold(values: list[float], budget: float) -> float:
    """The smallest value on a 0.001 grid that at most `budget` of `values` reach (above their upper quantile)."""
    ordered = np.sort(np.asarray(values, float))
    allowed = int(np.floor(budget * len(ordered)))
    if not len(ordered):
        return float("inf")
    return float(np.floor(ordered[len(ordered) - allowed - 1] * 1000 + 1) / 1000)


def kind_threshold(rows: list[dict], budget: float) -> float:
    """The largest of the not-a-reading kinds' thresholds: each kind on its own lets through at most `budget`
    (pooled, the 800 other texts would hide the 40 other-language recordings, which come closest to readings)."""
    return max(threshold([r["text_lpr"] for r in rows if r["kind"] == kind], budget)
               for kind in NOT_READINGS if any(r["kind"] == kind for r in rows))


def summarise(rows: list[dict], budget: float) -> dict:
    rows = [r for r in rows if r["text_lpr"] is not None]
    fold_of = fold_of_speaker({r["speaker"] for r in rows})
    folds = []
    for k in sorted(set(fold_of.values())):
        t = kind_threshold([r for r in rows if fold_of[r["speaker"]] != k], budget)
        held = [r for r in rows if fold_of[r["speaker"]] == k]
        folds.append({"fold": k, "threshold": round(t, 3), **_rates(held, t)})
    t = kind_threshold(rows, budget)
    percentiles = {kind: np.round(np.percentile([r["text_lpr"] for r in rows if r["kind"] == kind],
                                                [0, 1, 5, 50, 95, 99, 100]), 2).tolist()
                   for kind in ("reading", "reading_noisy") + NOT_READINGS if any(r["kind"] == kind for r in rows)}
    return {"budget": budget, "threshold": round(t, 3), "cross_validated": _mean_rates(folds), "folds": folds,
            "in_sample": _rates(rows, t), "text_lpr_percentiles_0_1_5_50_95_99_100": percentiles}


def _rates(rows: list[dict], t: float) -> dict:
    """Share of each kind at or above t (for readings: let through as readings whatever Whisper heard)."""
    out = {}
    for kind in ("reading", "reading_noisy") + NOT_READINGS:
        values = [r["text_lpr"] for r in rows if r["kind"] == kind]
        out[f"{kind}_at_or_above"] = round(float(np.mean(np.asarray(values) >= t)), 4) if values else None
        out[f"{kind}_n"] = len(values)
    poor = [r["text_lpr"] for r in rows if r["kind"] == "reading" and r["label"] is not None and r["label"] <= 4]
    out["reading_label_le_4_at_or_above"] = round(float(np.mean(np.asarray(poor) >= t)), 4) if poor else None
    out["reading_label_le_4_n"] = len(poor)
    return out


def _mean_rates(folds: list[dict]) -> dict:
    keys = [k for k in folds[0] if k.endswith("_at_or_above")]
    values = {k: [f[k] for f in folds if f[k] is not None] for k in keys}
    return {k: round(float(np.mean(v)), 4) if v else None for k, v in values.items()}


if __name__ == "__main__":
    main()
