"""The text judgement end to end, with and without the phone recogniser's check (`VerifierConfig.read_text_lpr`).

Cases from one split (dev by default: its 12 speakers are held out from the shipped scorer and miscue detectors):
every recording with its own text (a reading), every recording with the text of the recording 37 places on (another
text), and espeak-ng speech in French, German, Spanish and Italian (recipes/local/text_lpr_threshold.py's sentences,
two speeds) with English texts of the split (another language). Each case runs through the whole Assessor with the
check on; where the check can have changed the judgement (`verification.text_check_applies`), once more without it.
Reported per kind: the share judged not to match the text, the share with total <= 3, and for readings the sentence
total's PCC and MSE against the labels. Only rates and our own totals are written (no labels).

    python recipes/local/text_judgement.py --corpus $SO762_DIR --work exp/text_judgement --nj 2 \\
        --out docs/text_judgement_dev.json          # ~20 min here (520 cases; a rerun resumes from --work)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from text_lpr_threshold import FOREIGN, _espeak  # noqa: E402

from orthoepy.encoder.audio import load_audio  # noqa: E402
from orthoepy.encoder.corpus import load_corpus, resolve_corpus_dir  # noqa: E402
from orthoepy.encoder.lexicon import Lexicon  # noqa: E402
from orthoepy.encoder.verification import text_check_applies  # noqa: E402

OTHER_TEXT_OFFSET = 37
KINDS = ("reading", "other_text", "other_language")


def cases(corpus: Path, split: str) -> list[tuple]:
    """(kind, case id, label or None, audio path or (language, sentence, speed), text), in a fixed order."""
    utts = sorted(load_corpus(corpus, split), key=lambda u: u.utt_id)
    out = [("reading", u.utt_id, u.sentence.total, str(u.audio_path), u.text) for u in utts]
    for i, u in enumerate(utts):
        other = utts[(i + OTHER_TEXT_OFFSET) % len(utts)]
        if other.text != u.text:
            out.append(("other_text", u.utt_id, None, str(u.audio_path), other.text))
    for language, sentences in FOREIGN.items():
        for j, sentence in enumerate(sentences):
            for s, speed in enumerate((135, 165)):
                out.append(("other_language", f"{language}{j}-{speed}", None, (language, sentence, speed),
                            utts[(7 * j + s) % len(utts)].text))
    return out


def run_part(corpus: Path, split: str, part: int, parts: int, work: Path) -> None:
    from orthoepy.fusion.assessor import Assessor

    path = work / f"part{part}.jsonl"
    done = {json.loads(line)["id"] for line in path.open()} if path.exists() else set()
    assessor = Assessor.from_pretrained(rationale="none", lexicon=Lexicon.from_corpus(corpus))
    kept = _keep_verifications(assessor.verifier)
    with_check = assessor.verifier.config
    without = replace(with_check, read_text_lpr=None)
    with path.open("a") as out:
        for kind, case_id, label, audio, text in cases(corpus, split)[part::parts]:
            if f"{kind}:{case_id}" in done:
                continue
            clip = _espeak(*audio) if kind == "other_language" else load_audio(audio)
            row = {"id": f"{kind}:{case_id}", "kind": kind, "label": label}
            row["on"] = _assess(assessor, with_check, clip, text)
            may_differ = text_check_applies(kept[-1].evidence, with_check)
            row["off"] = _assess(assessor, without, clip, text) if may_differ else row["on"]
            out.write(json.dumps(row) + "\n")
            out.flush()


def _keep_verifications(verifier) -> list:
    """Wraps the verifier's `verify` so that each first-pass verification (with its evidence and reference) is kept."""
    kept, verify = [], verifier.verify

    def keeping(audio, words, reference):
        verification = verify(audio, words, reference)
        kept.append(SimpleNamespace(evidence=verification.evidence, reference=reference))
        return verification

    verifier.verify = keeping
    return kept


def _assess(assessor, config, clip, text: str) -> dict:
    assessor.verifier.config = config
    result = assessor.assess(clip.samples, text, sample_rate=clip.sample_rate)
    return {"total": result.sentence["total"], "match": result.verification["matches_text"]}


def summarise(rows: list[dict]) -> dict:
    report = {}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            continue
        entry = {"n": len(mine)}
        for mode in ("off", "on"):
            entry[f"judged_another_text_{mode}"] = round(float(np.mean([not r[mode]["match"] for r in mine])), 4)
            entry[f"total_le_3_{mode}"] = round(float(np.mean([r[mode]["total"] <= 3 for r in mine])), 4)
            if kind == "reading":
                x, y = np.array([r[mode]["total"] for r in mine]), np.array([r["label"] for r in mine])
                entry[f"total_pcc_{mode}"] = round(float(pearsonr(x, y)[0]), 4)
                entry[f"total_mse_{mode}"] = round(float(np.mean((x - y) ** 2)), 3)
        entry["changed"] = [{"id": r["id"], "off": r["off"], "on": r["on"]} for r in mine if r["off"] != r["on"]]
        report[kind] = entry
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="speechocean762 directory (default: $SO762_DIR)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--work", required=True, help="folder for the per-worker rows (a rerun resumes)")
    parser.add_argument("--nj", type=int, default=1)
    parser.add_argument("--part", type=int, help=argparse.SUPPRESS)  # one worker's share (run by --nj)
    parser.add_argument("--out")
    args = parser.parse_args()
    corpus, work = resolve_corpus_dir(args.corpus), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.part is not None:
        run_part(corpus, args.split, args.part, args.nj, work)
        return
    workers = [subprocess.Popen([sys.executable, __file__, "--corpus", str(corpus), "--split", args.split,
                                 "--work", str(work), "--nj", str(args.nj), "--part", str(k)]) for k in range(args.nj)]
    if any(w.wait() for w in workers):
        sys.exit("a worker failed; rerun to resume")
    rows = [json.loads(line) for path in sorted(work.glob("part*.jsonl")) for line in path.open()]
    report = {"split": args.split, "cases": len(rows), **summarise(rows)}
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
