#!/usr/bin/env python
"""Synthetic phone substitutions: does the front-end hear them and does the scorer score them down?

Each case is a speechocean762 text read by espeak-ng from phoneme input twice: as written (the control) and with
one phone of one word replaced by a typical L2 substitute (TH->S, V->B, L->R, ... SUBSTITUTIONS) or, for
"deletion" cases, with the word's final consonant left out. Both are scored against the written text with the
model's own front-end and scorer (no verification stage). At the target phone it reports:
- heard top-1 / top-3: the response's `heard_nbest` (the segmentation-free n-best, encoder/phone_gains.py) names
  the substitute (`segment_heard_top1/3`: the n-best pooled over the aligned segment, as responses gave before); with
  --recogniser, also the fine-tuned Whisper phone recogniser's n-best over the phones (`recogniser_top1/3`) and
  its LPP (`whisper_recogniser_lpp_below_control`), on the same aligned segment;
- GOP below the control: the LPP of the canonical phone (posterior_gop, and indomain_gop where the model has it)
  is lower than in the control reading;
- scores: the target phone below 1.0, the word's other phones at 1.5 or more (in the substituted reading), the
  target phone scored below the control's; scores as `assess` gives them (the network's fused with the
  phone-evidence fusion where the model has one; `network_score_below_1`: the network's alone).

    python recipes/local/substitution_benchmark.py --corpus $SO762_DIR --model fusion/models/default \\
        --per-pair 14 --out docs/substitution_benchmark.json

espeak-ng's `-x` codes of each word are edited at the target phone; a case is used only where the target
phone occurs once in the word, both in the corpus's canonical phones and in espeak's codes.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

# ARPAbet -> espeak-ng (en-us) phoneme codes, for the phones this benchmark edits
ESPEAK = {"TH": "T", "DH": "D", "V": "v", "W": "w", "L": "l", "R": "r", "N": "n", "Z": "z", "SH": "S", "S": "s",
          "F": "f", "T": "t", "D": "d", "B": "b", "K": "k", "G": "g", "P": "p",
          "IY": "i:", "IH": "I", "AE": "a", "EH": "E", "UW": "u:", "UH": "U"}
SUBSTITUTIONS = (("TH", "S"), ("TH", "F"), ("DH", "D"), ("DH", "Z"), ("V", "B"), ("V", "W"), ("W", "V"),
                 ("L", "R"), ("R", "L"), ("N", "L"), ("Z", "S"), ("SH", "S"), ("IY", "IH"), ("AE", "EH"),
                 ("UW", "UH"))
DELETABLE = ("T", "D", "K", "S", "Z", "P", "B", "G", "V", "F")  # final consonants left out in deletion cases
# a code must not be read inside a longer one: S in tS (CH), Z in dZ (JH), a in aI/aU, i: in i@, u: in u@
_CODE = {"S": r"(?<!t)S", "Z": r"(?<!d)Z", "a": r"a(?![IU#])", "D": r"D", "T": r"T", "n": r"n", "l": r"l(?!:)"}


@dataclass(frozen=True)
class Case:
    case_id: str
    kind: str  # "TH->S", ..., or "deletion"
    utt_id: str
    text: str
    word_phones: tuple[tuple[str, ...], ...]  # canonical ARPAbet per word (corpus labels)
    target: int  # flat index of the target canonical phone
    control_codes: str  # espeak-ng phoneme input of the written text
    altered_codes: str


def main() -> None:
    args = _args()
    from orthoepy.encoder.corpus import load_corpus
    utts = load_corpus(args.corpus, args.split)
    cases = build_cases(utts, args.per_pair, args.seed)
    results = run_cases(cases, args.model, args.recogniser)
    report = summarise(results)
    report["setup"] = {"model": str(args.model), "split": args.split, "per_pair": args.per_pair, "seed": args.seed,
                       "n_cases": len(results)}
    Path(args.out).write_text(json.dumps({**report, "cases": results}, indent=1))
    print(json.dumps(report, indent=1))


# ------------------------------------------------------------------------------------------------ cases

@lru_cache(maxsize=None)
def espeak_codes(word: str) -> str:
    """espeak-ng's phoneme codes of one word (en-us), e.g. THINK -> T'INk."""
    out = subprocess.run(["espeak-ng", "-q", "-x", "-v", "en-us", word.lower()], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip().replace(" ", "")


def find_code(codes: str, phone: str) -> list[tuple[int, int]]:
    """(start, end) of each occurrence of `phone`'s espeak code in a word's codes."""
    code = ESPEAK[phone]
    pattern = _CODE.get(code, re.escape(code))
    return [(m.start(), m.end()) for m in re.finditer(pattern, codes)]


def edit_word(codes: str, phone: str, substitute: str | None) -> str | None:
    """The word's codes with its one `phone` replaced by `substitute` (None: left out); None if not exactly once."""
    spans = find_code(codes, phone)
    if len(spans) != 1:
        return None
    start, end = spans[0]
    return codes[:start] + ("" if substitute is None else ESPEAK[substitute]) + codes[end:]


def build_cases(utts, per_pair: int, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    kinds = [f"{a}->{b}" for a, b in SUBSTITUTIONS] + ["deletion"]
    cases = []
    for kind in kinds:
        order = rng.permutation(len(utts))
        found = 0
        for i in order:
            case = _case(utts[int(i)], kind, rng, f"{kind}-{found}")
            if case is not None:
                cases.append(case)
                found += 1
                if found == per_pair:
                    break
    return cases


def _case(utt, kind: str, rng, case_id: str) -> Case | None:
    words = [tuple(p.rstrip("012") for p in w.phones) for w in utt.words]
    options = []
    for w, phones in enumerate(words):
        if kind == "deletion":
            if len(phones) > 2 and phones[-1] in DELETABLE and phones.count(phones[-1]) == 1:
                options.append((w, len(phones) - 1, phones[-1], None))
        else:
            source, substitute = kind.split("->")
            if phones.count(source) == 1:
                options.append((w, phones.index(source), source, substitute))
    rng.shuffle(options)
    for w, position, phone, substitute in options:
        codes = [espeak_codes(word.text) for word in utt.words]
        if kind == "deletion" and not codes[w].rstrip("'_,:").endswith(ESPEAK[phone]):
            continue
        edited = edit_word(codes[w], phone, substitute)
        if edited is None:
            continue
        target = sum(len(p) for p in words[:w]) + position
        altered = codes[:w] + [edited] + codes[w + 1:]
        return Case(case_id, kind, utt.utt_id, utt.text, tuple(tuple(x.phones) for x in utt.words), target,
                    " ".join(codes), " ".join(altered))
    return None


# ------------------------------------------------------------------------------------------------ running

def synthesise(codes: str, path: Path) -> None:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), f"[[{codes}]]"], check=True,
                   capture_output=True)


def run_cases(cases: list[Case], model: str, recogniser_dir: str | None = None) -> list[dict]:
    from orthoepy.encoder.audio import load_audio
    from orthoepy.encoder.features.frontend import FrontEnd
    from orthoepy.encoder.phoneset import PHONES, canonical_phones
    from orthoepy.encoder.scorer.pipeline import Scorer
    from orthoepy.encoder.scorer.phone_evidence import PhoneEvidenceFusion
    from orthoepy.fusion.assessor import aligned_edit_gains, frontend_config, fuse_phone_scores

    scorer = Scorer.from_pretrained(model, backend="torch")
    frontend = FrontEnd(frontend_config(scorer))
    fusion = PhoneEvidenceFusion.load(model)
    recogniser = None
    if recogniser_dir:
        from orthoepy.encoder.features.whisper_phone_recogniser import WhisperPhoneRecogniser
        recogniser = WhisperPhoneRecogniser.from_pretrained(recogniser_dir)
    out = []
    with tempfile.TemporaryDirectory() as folder:
        for case in tqdm(cases, desc="cases", unit="case"):
            phones = canonical_phones([list(w) for w in case.word_phones])
            readings = {}
            for name, codes in (("control", case.control_codes), ("altered", case.altered_codes)):
                path = Path(folder) / f"{name}.wav"
                synthesise(codes, path)
                audio = load_audio(path)
                features = frontend.extract(audio, phones)
                scored = scorer.score({case.case_id: features})[0]
                gains = aligned_edit_gains(frontend.groups["posterior_gop"], audio, features)
                fused = scored if fusion is None else fuse_phone_scores(scored, gains, fusion)
                at = _at_target(features, fused, case.target)
                readings[name] = {**at, "segment_heard_nbest": at["heard_nbest"],
                                  "heard_nbest": [[PHONES[i], round(p, 3)] for i, p in gains.nbest[case.target]],
                                  "network_score": round(float(scored.phone[case.target]), 3),
                                  "substitute_gain": gains.substitute[case.target],
                                  "delete_gain": gains.delete[case.target],
                                  "edit_heard": PHONES[gains.heard[case.target]]}
                if recogniser is not None:
                    readings[name].update(_recognised(recogniser, audio, features, case.target))
            out.append({"case_id": case.case_id, "kind": case.kind, "utt_id": case.utt_id, "text": case.text,
                        "target": case.target, "canonical": phones[case.target].base, **readings,
                        "codes": {"control": case.control_codes, "altered": case.altered_codes}})
    return out


def _at_target(features, scored, i: int) -> dict:
    word = features.phones[i].word_index
    others = [j for j, p in enumerate(features.phones) if p.word_index == word and j != i]
    heard = features.heard[i] if features.heard else None
    return {"score": round(float(scored.phone[i]), 3),
            "word_other_scores": [round(float(scored.phone[j]), 3) for j in others],
            "sentence_total": round(float(scored.sentence["total"]), 2),
            "heard_nbest": [[b, round(p, 3)] for b, p in heard.nbest] if heard else [],
            "lpp": {g: round(float(b.values[i, b.names.index("lpp")]), 4)
                    for g, b in features.blocks.items() if "lpp" in b.names}}


def _recognised(recogniser, audio, features, i: int) -> dict:
    """The fine-tuned recogniser's phone n-best and LPP over the target phone's aligned frames."""
    from orthoepy.encoder.features import gop
    from orthoepy.encoder.features.indomain_gop import OUTSIDE, phone_frames
    from orthoepy.encoder.features.whisper_phone_recogniser import log_mel
    from orthoepy.encoder.phoneset import PHONE_INDEX, PHONES

    log_post = recogniser.predict_log_proba(recogniser.lower_states(log_mel(audio.samples)))
    frames = phone_frames(float(features.starts[i]), float(features.ends[i]), len(log_post))
    nbest = gop.heard_nbest(log_post[:, :OUTSIDE], frames.start, frames.stop, 3, labels=PHONES)
    lpp = gop.gop_vector(log_post, PHONE_INDEX[features.phones[i].base], frames.start, frames.stop)[0]
    return {"recogniser_nbest": [[b, round(p, 3)] for b, p in nbest], "recogniser_lpp": round(float(lpp), 4)}


# ------------------------------------------------------------------------------------------------ summary

def summarise(results: list[dict]) -> dict:
    rows: dict[str, list[dict]] = {}
    for r in results:
        rows.setdefault(r["kind"], []).append(_outcome(r))
        rows.setdefault("all substitutions" if r["kind"] != "deletion" else "all deletions", []).append(_outcome(r))
    return {"by_kind": {k: _rates(v) for k, v in sorted(rows.items())}}


def _outcome(r: dict) -> dict:
    substitute = r["kind"].split("->")[1] if "->" in r["kind"] else None
    heard = [b for b, _ in r["altered"]["heard_nbest"]]
    outcome = {"score_below_1": r["altered"]["score"] < 1.0,
               "network_score_below_1": r["altered"].get("network_score", r["altered"]["score"]) < 1.0,
               "score_below_control": r["altered"]["score"] < r["control"]["score"],
               "word_others_at_least_1_5": all(s >= 1.5 for s in r["altered"]["word_other_scores"]),
               "control_at_least_1_5": r["control"]["score"] >= 1.5}
    for group, value in r["altered"]["lpp"].items():
        outcome[f"{group}_lpp_below_control"] = value < r["control"]["lpp"][group]
    if substitute is not None and heard:
        outcome["heard_top1"] = heard[0] == substitute
        outcome["heard_top3"] = substitute in heard
    segment = [b for b, _ in r["altered"].get("segment_heard_nbest", [])]
    if substitute is not None and segment:
        outcome["segment_heard_top1"] = segment[0] == substitute
        outcome["segment_heard_top3"] = substitute in segment
    if r["control"].get("heard_nbest"):
        outcome["control_heard_canonical"] = r["control"]["heard_nbest"][0][0] == r["canonical"]
    if "substitute_gain" in r["altered"]:
        outcome["substitute_gain_above_control"] = r["altered"]["substitute_gain"] > r["control"]["substitute_gain"]
        outcome["delete_gain_above_control"] = r["altered"]["delete_gain"] > r["control"]["delete_gain"]
        if substitute is not None:
            outcome["edit_heard_top1"] = r["altered"]["edit_heard"] == substitute
    if "recogniser_nbest" in r["altered"]:
        recognised = [b for b, _ in r["altered"]["recogniser_nbest"]]
        outcome["whisper_recogniser_lpp_below_control"] = r["altered"]["recogniser_lpp"] < r["control"]["recogniser_lpp"]
        outcome["recogniser_control_top1_canonical"] = r["control"]["recogniser_nbest"][0][0] == r["canonical"]
        if substitute is not None:
            outcome["recogniser_top1"] = recognised[0] == substitute
            outcome["recogniser_top3"] = substitute in recognised
    return outcome


def _rates(outcomes: list[dict]) -> dict:
    keys = sorted({k for o in outcomes for k in o})
    return {"n": len(outcomes), **{k: round(float(np.mean([o[k] for o in outcomes if k in o])), 3) for k in keys}}


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None)
    p.add_argument("--split", default="test")
    p.add_argument("--model", required=True)
    p.add_argument("--per-pair", type=int, default=14, help="cases per substitution (and of deletions)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--recogniser", default=None, help="a fine-tuned Whisper phone recogniser folder to measure too")
    p.add_argument("--out", required=True)
    return p.parse_args()


if __name__ == "__main__":
    main()
