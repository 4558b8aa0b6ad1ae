"""Verification benchmark: refusals, mismatches and miscues on speechocean762 recordings and synthetic audio.

Cases (all rebuilt from the corpus and espeak-ng with a fixed seed; nothing is stored but the results):
  untouched       a recording with its own text (every flag on it is a false flag)
  other_text      a recording scored against another utterance's text
  longer_text     its own text followed by another utterance's text (the added words are omissions)
  cut_word        one word's aligned audio cut out (that word is an omission)
  spliced_word    a word from another recording spliced in between two words (an insertion)
  repeated_word   one word's audio said twice (a repetition)
  replaced_word   one word's audio replaced by another word from another recording (a substitution)
  noise, tone, silence_noise, other_language   non-speech and espeak-ng speech in fr/de/es/it

Two modes:
  --mode evidence   runs only the verifier's models and stores their evidence per case (train split: the
                    thresholds are then chosen on it by speaker-disjoint cross-validation, --select)
  --mode assess     runs the whole Assessor (default thresholds) and reports what the user gets (test split)

  python recipes/local/verification_benchmark.py --corpus $SO762_DIR --split train --mode evidence --per-kind 40 --out exp/verif/train.json --select
  python recipes/local/verification_benchmark.py --corpus $SO762_DIR --split test --mode assess --per-kind 40 --out docs/verification_test.json
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from orthoepy.encoder.alignment import ForcedAligner
from orthoepy.encoder.alignment import word_spans as aligned_spans
from orthoepy.encoder.audio import Audio, AudioError, load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.lexicon import Lexicon
from orthoepy.encoder.miscues import MiscueDetector
from orthoepy.encoder.text_language import identify
from orthoepy.encoder.verification import (Evidence, NoSpeechError, ReadingVerifier, VerifierConfig,
                                           decide)
from orthoepy.fusion.diagnosis import share_attempted

CORPUS_KINDS = ("untouched", "other_text", "longer_text", "cut_word", "spliced_word", "repeated_word", "replaced_word")
SYNTHETIC_KINDS = ("noise", "tone", "silence_noise", "other_language")
# made after all the others, so that adding them leaves the earlier kinds' cases as they were
EXTRA_KINDS = ("swapped_words",)
OTHER_LANGUAGES = {"fr": "Je voudrais une tasse de café, s'il vous plaît.", "de": "Ich möchte bitte eine Tasse Kaffee.",
                   "es": "Me gustaría una taza de café, por favor.", "it": "Vorrei una tazza di caffè, per favore."}
SR = 16_000


@dataclasses.dataclass
class Case:
    kind: str
    utt_id: str
    speaker: str
    text: str
    audio: Audio
    target_word: int | None = None  # the omitted word (cut_word) or the word an insertion follows
    added_from: int | None = None  # longer_text: the first added word


def word_spans(aligner: ForcedAligner, lexicon: Lexicon, audio: Audio, text: str) -> list[tuple[float, float]] | None:
    pron = lexicon.pronounce(text)
    alignment = aligner.align(audio, pron.canonical)
    if alignment.fallback:
        return None
    return [(start, end) for start, end, _ in _segment_spans(alignment.segments)]


def _segment_spans(segments) -> list[tuple[float, float, int]]:
    return aligned_spans([s.phone.word_index for s in segments], [s.start for s in segments], [s.end for s in segments])


def build_cases(corpus: str, split: str, per_kind: int, seed: int,
                kinds: tuple[str, ...] = CORPUS_KINDS + SYNTHETIC_KINDS) -> list[Case]:
    rng = np.random.default_rng(seed)
    utts = [u for u in load_corpus(corpus, split) if len(u.text.split()) >= 3]
    rng.shuffle(utts)
    lexicon, aligner = Lexicon.from_corpus(corpus), ForcedAligner()
    pool = iter(utts)
    cases: list[Case] = []
    for kind in (k for k in CORPUS_KINDS if k in kinds):
        made = 0
        while made < per_kind:
            u, other = next(pool), utts[int(rng.integers(len(utts)))]
            case = _corpus_case(kind, u, other, rng, lexicon, aligner)
            if case is not None:
                cases.append(case)
                made += 1
    for kind in (k for k in SYNTHETIC_KINDS if k in kinds):
        cases += [_synthetic_case(kind, k, rng, utts) for k in range(max(4, per_kind // 4))]
    for kind in (k for k in EXTRA_KINDS if k in kinds):
        made = 0
        while made < per_kind:
            case = _swapped_case(next(pool), rng, lexicon, aligner)
            if case is not None:
                cases.append(case)
                made += 1
    return cases


def _swapped_case(u, rng, lexicon, aligner) -> Case | None:
    """Two neighbouring words (the first an inner word) swapped at their aligned spans; target_word = the first."""
    audio = load_audio(u.audio_path)
    spans = word_spans(aligner, lexicon, audio, u.text)
    words = lexicon.pronounce(u.text).words
    if spans is None or len(spans) < 4:
        return None
    k = int(rng.integers(1, len(spans) - 2))
    if words[k] == words[k + 1]:
        return None
    (a, b), (c, d) = ((int(t * SR) for t in spans[j]) for j in (k, k + 1))
    x = audio.samples
    return Case("swapped_words", u.utt_id, u.speaker, u.text,
                Audio(np.concatenate([x[:a], x[c:d], x[b:c], x[a:b], x[d:]])), target_word=k)


def _corpus_case(kind, u, other, rng, lexicon, aligner) -> Case | None:
    audio = load_audio(u.audio_path)
    if kind == "untouched":
        return Case(kind, u.utt_id, u.speaker, u.text, audio)
    if kind == "other_text":
        return None if other.text == u.text else Case(kind, u.utt_id, u.speaker, other.text, audio)
    if kind == "longer_text":
        n = len(lexicon.pronounce(u.text).words)
        return Case(kind, u.utt_id, u.speaker, u.text + " " + other.text, audio, added_from=n)
    spans = word_spans(aligner, lexicon, audio, u.text)
    if spans is None or len(spans) < 3:
        return None
    k = int(rng.integers(1, len(spans) - 1))  # an inner word
    a, b = (int(t * SR) for t in spans[k])
    x = audio.samples
    if kind == "cut_word":
        return Case(kind, u.utt_id, u.speaker, u.text, Audio(np.concatenate([x[:a], x[b:]])), target_word=k)
    if kind == "repeated_word":
        return Case(kind, u.utt_id, u.speaker, u.text, Audio(np.concatenate([x[:b], x[a:b], x[b:]])), target_word=k)
    other_audio = load_audio(other.audio_path)
    other_spans = word_spans(aligner, lexicon, other_audio, other.text)
    if other_spans is None:
        return None
    j = int(rng.integers(len(other_spans)))
    c, d = (int(t * SR) for t in other_spans[j])
    if kind == "replaced_word":
        other_words = lexicon.pronounce(other.text).words
        if other_words[j] == lexicon.pronounce(u.text).words[k]:
            return None
        return Case(kind, u.utt_id, u.speaker, u.text, Audio(np.concatenate([x[:a], other_audio.samples[c:d], x[b:]])),
                    target_word=k)
    gap = np.zeros(int(0.05 * SR), np.float32)
    spliced = np.concatenate([x[:b], gap, other_audio.samples[c:d], gap, x[b:]])
    return Case(kind, u.utt_id, u.speaker, u.text, Audio(spliced), target_word=k)


def _synthetic_case(kind: str, k: int, rng, utts) -> Case:
    text = utts[k % len(utts)].text
    n = int(SR * rng.uniform(1.5, 4.0))
    if kind == "noise":
        x = rng.normal(0, rng.uniform(0.02, 0.3), n)
    elif kind == "tone":
        t = np.arange(n) / SR
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 1000) * t)
    elif kind == "silence_noise":
        x = rng.normal(0, 0.003, n)
    else:
        language = list(OTHER_LANGUAGES)[k % len(OTHER_LANGUAGES)]
        text = OTHER_LANGUAGES[language]
        x = _espeak(language, text, rng)
    return Case(kind, f"{kind}{k}", f"synthetic{k % 5}", text, Audio(np.asarray(x, np.float32).clip(-1, 1)))


def _espeak(language: str, text: str, rng) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "x.wav"
        speed = str(int(rng.uniform(130, 175)))
        subprocess.run(["espeak-ng", "-v", language, "-s", speed, "-w", str(wav), text], check=True)
        return load_audio(wav).samples


# ------------------------------------------------------------------------------------------- running

def run_evidence(cases: list[Case], lexicon: Lexicon, posteriors: str | None = None) -> list[dict]:
    """The verifier's evidence per case, plus each word's aligned seconds per phone (chunked, as the Assessor aligns).
    posteriors: an .npz path to store each case's phone-recogniser frame log-probabilities in (float16, key = the
    case's index), so that new phone-gain variants can be computed offline over them (encoder.phone_gains)."""
    verifier, aligner = ReadingVerifier(lexicon=lexicon), ForcedAligner()
    records, frames = [], {}
    for index, case in enumerate(tqdm(cases, desc="evidence", unit="case")):
        pron = lexicon.pronounce(case.text)
        record = _record(case, list(pron.words))
        words, reference = list(pron.words), [tuple(p) for p in pron.phones]
        try:
            evidence = verifier.gather(case.audio, words, reference)
        except NoSpeechError:
            records.append(record | {"refused": True})
            continue
        if posteriors:
            frames[str(index)] = verifier.frame_log_probs(case.audio).astype(np.float16)
        first = decide(evidence, words, reference, verifier.config)
        chunks = [(c.start, c.end, c.first_word, c.end_word) for c in verifier.chunks(first, case.audio.duration)]
        alignment = aligner.align_chunks(case.audio, pron.canonical, chunks, verifier.spare_cuts(first))
        record |= {"evidence": dataclasses.asdict(evidence), "reference": [list(p) for p in reference],
                   "aligned": None if alignment.fallback else _aligned_words(alignment)}
        records.append(record)
    if posteriors:
        np.savez_compressed(posteriors, **frames)
    return records


def _aligned_words(alignment) -> list[list[float]]:
    return [[round(start, 3), round(end, 3), n] for start, end, n in _segment_spans(alignment.segments)]


def run_assess(cases: list[Case], corpus: str) -> list[dict]:
    from orthoepy.fusion.assessor import Assessor

    assessor = Assessor.from_pretrained(rationale="none", lexicon=Lexicon.from_corpus(corpus))
    records = []
    for case in tqdm(cases, desc="assess", unit="case"):
        try:
            result = assessor.assess(case.audio.samples, case.text, sample_rate=SR)
        except NoSpeechError:
            records.append(_record(case, []) | {"refused": True})
            continue
        except AudioError as err:
            records.append(_record(case, []) | {"refused": True, "error": str(err)})
            continue
        record = _record(case, [w.text for w in result.words])
        record |= {"total": result.sentence["total"], "completeness": result.sentence["completeness"],
                   "errors": [_verified(w) for w in result.words], "error_types": [w.error_type for w in result.words],
                   "warnings": result.verification["warnings"],
                   "matches_text": result.verification["matches_text"], "fallback": result.alignment_fallback,
                   "insertions": [[i.kind, i.after_word] for i in result.insertions], "seconds": sum(result.timings.values())}
        records.append(record)
    return records


def _verified(word) -> str:
    """The verification's verdict on a word of the response: Omission, Mispronunciation (another word) or None."""
    if word.error_type == "Omission":
        return "Omission"
    return "Mispronunciation" if word.heard_word is not None else "None"


def _record(case: Case, words: list[str]) -> dict:
    return {"kind": case.kind, "utt_id": case.utt_id, "speaker": case.speaker, "text": case.text, "words": words,
            "target_word": case.target_word, "added_from": case.added_from, "refused": False}


# ------------------------------------------------------------------------------------------- scoring

MISCUES = ("Omission", "Mispronunciation")


def outcomes_from_evidence(records: list[dict], config: VerifierConfig, detector=None) -> list[dict]:
    """Turn stored evidence into the per-case outcome the `assess` mode records (errors, insertions, share)."""
    out = []
    for r in records:
        if r["refused"]:
            out.append(r)
            continue
        evidence = _with_text_language(Evidence.from_dict(r["evidence"]), r["words"])
        aligned = None if r.get("aligned") is None else [tuple(a) for a in r["aligned"]]
        v = decide(evidence, r["words"], [tuple(p) for p in r["reference"]], config, aligned, detector)
        errors = ["None" if c.status == "read" else ("Omission" if c.status == "omitted" else "Mispronunciation")
                  for c in v.words]
        completeness = 10.0 * share_attempted([c.status for c in v.words], v.share_read, v.matches_text)
        out.append(r | {"errors": errors, "share": v.share_read, "matches_text": v.matches_text,
                        "completeness": completeness,
                        "insertions": [[i.kind, i.after_word] for i in v.insertions]})
    return out


def _with_text_language(evidence: Evidence, words: list[str]) -> Evidence:
    """Evidence stored before the text's language was checked gets the check now (it needs no audio)."""
    if evidence.text_language is not None:
        return evidence
    lexicon = _plain_lexicon()
    sources = [lexicon.pronunciations(w)[1] if w else "g2p" for w in words]
    return dataclasses.replace(evidence, text_language=identify(words, sources))


@functools.lru_cache(maxsize=1)
def _plain_lexicon() -> Lexicon:
    return Lexicon()


def annotated_metrics(outcomes: list[dict], corpus: str, split: str) -> dict:
    """The untouched readings again, judged against the annotators: flags on words they judged well read (mean
    phone accuracy >= 1.5 of 2; the word accuracy score is missing for many test words), and completeness on
    readings they scored complete (sentence completeness 10)."""
    labels = {u.utt_id: u for u in load_corpus(corpus, split)}
    untouched = [o for o in outcomes if o["kind"] == "untouched" and not o["refused"]]
    good = [(o, k) for o in untouched for k, w in enumerate(labels[o["utt_id"]].words)
            if len(labels[o["utt_id"]].words) == len(o["errors"]) and w.phone_accuracy
            and float(np.mean(w.phone_accuracy)) >= 1.5]
    complete = [o for o in untouched if labels[o["utt_id"]].sentence.completeness == 10]
    return {"false_miscue_rate_on_well_read_words": _ratio(sum(o["errors"][k] in MISCUES for o, k in good), len(good)),
            "well_read_words": len(good),
            "completeness_ge_9.5_on_readings_scored_complete": _ratio(
                sum(o["completeness"] >= 9.5 for o in complete), len(complete)),
            "readings_scored_complete": len(complete)}


def metrics(outcomes: list[dict]) -> dict:
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for o in outcomes:
        by_kind[o["kind"]].append(o)
    m: dict[str, float | int] = {}
    untouched = [o for o in by_kind["untouched"] if not o["refused"]]
    words = sum(len(o["errors"]) for o in untouched)
    m["untouched_false_miscue_rate"] = _ratio(sum(e in MISCUES for o in untouched for e in o["errors"]), words)
    m["untouched_false_insertion_rate"] = _ratio(sum(len(o["insertions"]) for o in untouched), words)
    if untouched and "completeness" in untouched[0]:
        m["untouched_completeness_ge_9.5"] = _ratio(sum(o["completeness"] >= 9.5 for o in untouched), len(untouched))
    if untouched and "share" in untouched[0]:  # evidence mode: completeness as it was before session 12 (share read)
        m["untouched_share_read_ge_0.95"] = _ratio(sum(o["share"] >= 0.95 for o in untouched), len(untouched))
    m["untouched_refused"] = _ratio(sum(o["refused"] for o in by_kind["untouched"]), len(by_kind["untouched"]))
    m["untouched_mismatch_rate"] = _ratio(sum(not o["matches_text"] for o in untouched), len(untouched))
    cut = [o for o in by_kind["cut_word"] if not o["refused"]]
    m["omission_recall"] = _ratio(sum(o["errors"][o["target_word"]] == "Omission" for o in cut), len(cut))
    m["omission_or_flag_recall"] = _ratio(sum(o["errors"][o["target_word"]] in MISCUES for o in cut), len(cut))
    replaced = [o for o in by_kind["replaced_word"] if not o["refused"]]
    m["substitution_recall"] = _ratio(sum(o["errors"][o["target_word"]] in MISCUES for o in replaced), len(replaced))
    longer = [o for o in by_kind["longer_text"] if not o["refused"]]
    added = [(o, k) for o in longer for k in range(o["added_from"], len(o["errors"]))]
    m["added_words_flagged"] = _ratio(sum(o["errors"][k] in MISCUES for o, k in added), len(added))
    for kind in ("spliced_word", "repeated_word"):
        cases = [o for o in by_kind[kind] if not o["refused"]]
        m[f"{kind}_insertion_recall"] = _ratio(sum(bool(o["insertions"]) for o in cases), len(cases))
    swapped = [o for o in by_kind.get("swapped_words", []) if not o["refused"]]
    if swapped:
        targets = [o["error_types"][o["target_word"]:o["target_word"] + 2] for o in swapped]
        m["reversal_recall"] = _ratio(sum(t == ["Reversal", "Reversal"] for t in targets), len(swapped))
        m["swapped_flagged"] = _ratio(sum(any(e not in ("None", "Monotone") for e in t) for t in targets), len(swapped))
    mismatch = [o for o in by_kind["other_text"] + by_kind["other_language"]]
    m["mismatch_flag_recall"] = _ratio(sum(o["refused"] or not o["matches_text"] for o in mismatch), len(mismatch))
    if mismatch and any("total" in o for o in mismatch):
        m["mismatch_total_le_3"] = _ratio(sum(o["refused"] or o["total"] <= 3 for o in mismatch), len(mismatch))
    nonspeech = by_kind["noise"] + by_kind["tone"] + by_kind["silence_noise"]
    m["nonspeech_refused_or_flagged"] = _ratio(sum(o["refused"] or (not o["matches_text"] and (
        o.get("total", 0) <= 1)) for o in nonspeech), len(nonspeech))
    m["cases"] = len(outcomes)
    return m


def _ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else float("nan")


# ------------------------------------------------------------------------------------------- threshold selection

GRID = {"read_probability": (0.03, 0.05, 0.1), "substitution_probability": (0.8, 0.9, 0.95),
        "insertion_probability": (0.5, 0.7, 0.9),
        # the operating point for a whole other text, set from the train distributions (docs/verification.md):
        # median forced word probability < 0.02 holds for 81% of other-text cases and 2.5% of untouched readings;
        # left free, the word-flag budget alone drives it to 0 and a recording of another sentence passes
        "mismatch_forced": (0.02,),
        "squeezed_s": (0.045,), "squeezed_forced": (0.3, 0.7), "gap_speech_s": (99.0, 0.3, 0.45, 0.6, 0.8)}
FALSE_FLAG_BUDGET = 0.03  # share of the words of untouched readings flagged (miscues + insertions)
FALSE_MISMATCH_BUDGET = 0.03  # share of untouched readings judged not to match their text (as the word budget)


def objective(m: dict) -> float:
    """Recall of the miscues, with the false flags on untouched readings held within their budgets."""
    penalty = max(0.0, m["untouched_false_miscue_rate"] + m["untouched_false_insertion_rate"] - FALSE_FLAG_BUDGET)
    penalty += max(0.0, m["untouched_mismatch_rate"] - FALSE_MISMATCH_BUDGET)
    recall = np.nanmean([m["omission_recall"], m["spliced_word_insertion_recall"], m["repeated_word_insertion_recall"],
                         m["mismatch_flag_recall"], m["added_words_flagged"]])
    return float(recall - 10.0 * penalty)


def select(records: list[dict], folds: int = 5) -> dict:
    configs = [dataclasses.replace(VerifierConfig(), **dict(zip(GRID, values))) for values in itertools.product(*GRID.values())]
    speakers = sorted({r["speaker"] for r in records})
    fold_of = {s: k % folds for k, s in enumerate(speakers)}
    held_out = []
    for k in range(folds):
        train = [r for r in records if fold_of[r["speaker"]] != k]
        test = [r for r in records if fold_of[r["speaker"]] == k]
        best = max(configs, key=lambda c: objective(metrics(outcomes_from_evidence(train, c))))
        held_out += outcomes_from_evidence(test, best)
    final = max(configs, key=lambda c: objective(metrics(outcomes_from_evidence(records, c))))
    return {"cross_validated": metrics(held_out), "chosen": {k: getattr(final, k) for k in GRID},
            "chosen_on_all_train": metrics(outcomes_from_evidence(records, final))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--mode", choices=("evidence", "assess"), default="assess")
    ap.add_argument("--per-kind", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kinds", default=",".join(CORPUS_KINDS + SYNTHETIC_KINDS),  # EXTRA_KINDS only when named
                    help="comma-separated case kinds to build (default: all)")
    ap.add_argument("--select", action="store_true", help="evidence mode: choose thresholds by speaker-disjoint CV")
    ap.add_argument("--reselect", help="evidence JSON from an earlier --mode evidence run: only choose thresholds again")
    ap.add_argument("--rescore", help="assess-mode records from an earlier run: print their metrics again, with the "
                                       "annotators' labels of --split")
    ap.add_argument("--posteriors", help="evidence mode: also store each case's phone-recogniser frame log-probabilities "
                                         "in this .npz (float16, key = case index; ~20 kB a case)")
    ap.add_argument("--detector", help="with --reselect: also the metrics with this model directory's miscues.json "
                                       "(in-sample when it was trained on the same evidence)")
    args = ap.parse_args(argv)
    if args.rescore:
        records = json.loads(Path(args.rescore).read_text())["records"]
        print(json.dumps({"metrics": metrics(records),
                          "annotated": annotated_metrics(records, args.corpus, args.split)}, indent=1))
        return
    if args.reselect:
        records = json.loads(Path(args.reselect).read_text())["records"]
        result = {"records": records, "metrics_default": metrics(outcomes_from_evidence(records, VerifierConfig()))}
        if args.detector:
            result["metrics_detector"] = metrics(outcomes_from_evidence(records, VerifierConfig(),
                                                                        MiscueDetector.load(args.detector)))
        else:
            result["selection"] = select(records)
        Path(args.out).write_text(json.dumps(result, indent=1))
        print(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=1))
        return
    cases = build_cases(args.corpus, args.split, args.per_kind, args.seed, tuple(args.kinds.split(",")))
    if args.mode == "evidence":
        records = run_evidence(cases, Lexicon.from_corpus(args.corpus), args.posteriors)
        result = {"records": records, "metrics_default": metrics(outcomes_from_evidence(records, VerifierConfig()))}
        if args.select:
            result["selection"] = select(records)
    else:
        records = run_assess(cases, args.corpus)
        result = {"metrics": metrics(records), "annotated": annotated_metrics(records, args.corpus, args.split),
                  "records": records}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    summary = {k: v for k, v in result.items() if k != "records"}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    sys.exit(main())
