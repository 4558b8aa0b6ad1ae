"""Fit and measure the phone-evidence fusion (encoder/scorer/phone_evidence.py) on speechocean762.

    # per phone of every utterance: the network's calibrated score, the segmentation-free gains, the human label
    python recipes/local/phone_evidence.py gather --corpus $SO762_DIR --split dev --model fusion/models/default \
        --out /work/exp11/phone_evidence/dev.json --nj 2
    # speaker-disjoint cross-validation over those readings, then the fit on all of them -> <model>/phone_evidence.json
    python recipes/local/phone_evidence.py fit --rows /work/exp11/phone_evidence/dev.json --model fusion/models/default \
        --out docs/phone_evidence_cv.json
    # the final report on another split (read once)
    python recipes/local/phone_evidence.py evaluate --rows /work/exp11/phone_evidence/test.json \
        --model fusion/models/default --out docs/phone_evidence_test.json

The fusion must be fitted on readings the network never trained on: for the shipped model that is the dev part
of train (12 speakers), which its training and calibration left out (fusion/models/default/README.md).
Gathering uses the forced alignment and scorer as `assess` does, without the verification (these are complete
readings of their texts).
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import GroupKFold
from tqdm import tqdm

from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.scorer.phone_evidence import PhoneEvidenceFusion, design_matrix
from orthoepy.fusion.assessor import Assessor

LOW = 1.0  # a phone scored below this is reported as mispronounced (fusion.assessor.LOW_PHONE_SCORE)
MISPRONOUNCED = 0.5  # human label below this counts as mispronounced (docs/results.md)

_assessor: Assessor | None = None


def _gather_one(item: tuple) -> tuple[list[dict], dict]:
    """Per phone: the network's calibrated score, both gains, the label; per utterance: the network's word and
    sentence scores beside their labels."""
    model, utt_id, audio_path, words, labels, word_labels, sentence_labels = item
    global _assessor
    if _assessor is None:
        _assessor = Assessor.from_pretrained(model, rationale="none", verify=False)
    from orthoepy.encoder.phoneset import canonical_phones

    clip = load_audio(audio_path)
    features = _assessor.frontend.extract(clip, canonical_phones(words))
    (scored,) = _assessor.scorer.score_examples(_assessor.scorer.examples({"input": features}))
    gains = _assessor.edit_gains(clip, features)
    phones = [p for w in words for p in w]
    rows = [{"utt_id": utt_id, "phone": p, "label": labels[i], "score": float(scored.phone[i]),
             "substitute_gain": gains.substitute[i], "delete_gain": gains.delete[i],
             "word_index": features.phones[i].word_index,
             "fallback": bool(features.alignment_fallback)} for i, p in enumerate(phones)]
    utterance = {"utt_id": utt_id, "sentence": {k: float(v) for k, v in scored.sentence.items()},
                 "sentence_labels": sentence_labels,
                 "words": [{k: float(v[j]) for k, v in scored.word.items()} for j in range(len(words))],
                 "word_labels": word_labels}
    return rows, utterance


def gather(args) -> None:
    utterances = load_corpus(args.corpus, args.split)
    if args.limit:
        utterances = sorted(utterances, key=lambda u: u.utt_id)[:args.limit]
    items = [(args.model, u.utt_id, str(u.audio_path), [list(w.phones) for w in u.words], u.phone_accuracy,
              [{"accuracy": w.accuracy, "stress": w.stress, "total": w.total} for w in u.words], asdict(u.sentence))
             for u in utterances if u.phone_accuracy is not None]
    speakers = {u.utt_id: u.speaker for u in utterances}
    rows, per_utterance = [], []
    with ProcessPoolExecutor(args.nj) as pool:
        for found, utterance in tqdm(pool.map(_gather_one, items, chunksize=4), total=len(items),
                                     desc=f"gather {args.split}", unit="utt"):
            rows += [{**r, "speaker": speakers[r["utt_id"]]} for r in found]
            per_utterance.append({**utterance, "speaker": speakers[utterance["utt_id"]]})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"split": args.split, "model": args.model, "rows": rows,
                                          "utterances": per_utterance}))
    print(f"{len(items)} utterances, {len(rows)} phones -> {args.out}")


def _arrays(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    raw = json.loads(Path(path).read_text())
    rows = raw["rows"]
    X = design_matrix([r["score"] for r in rows], [r["substitute_gain"] for r in rows], [r["delete_gain"] for r in rows])
    return X, np.array([r["label"] for r in rows]), np.array([r["speaker"] for r in rows]), raw


def measures(pred: np.ndarray, labels: np.ndarray) -> dict:
    """PCC and SCC with the human phone scores, AUC (mispronounced: label < 0.5; phones scored 2 as the other
    class) and F1 of the reported flag (score < 1.0) for label < 0.5."""
    bad, good = labels < MISPRONOUNCED, labels == 2
    both = bad | good
    return {"pcc": round(float(pearsonr(pred, labels)[0]), 4), "scc": round(float(spearmanr(pred, labels)[0]), 4),
            "auc_mispronounced_vs_2": round(float(roc_auc_score(bad[both], -pred[both])), 4),
            "flag_f1": round(float(f1_score(bad, pred < LOW)), 4),
            "flag_recall": round(float((pred[bad] < LOW).mean()), 4),
            "flagged_share_of_phones_scored_2": round(float((pred[good] < LOW).mean()), 4),
            "n_phones": int(len(labels))}


def heard_measures(raw: dict) -> dict:
    """How often the segmentation-free n-best (the response's `heard`) puts the canonical phone first on phones the
    annotators scored >= 1.5, and another phone first on those scored < 0.5: the canonical phone is first exactly
    when no substitution gain is above 0."""
    gain = np.array([r["substitute_gain"] for r in raw["rows"]])
    labels = np.array([r["label"] for r in raw["rows"]])
    well, badly = labels >= 1.5, labels < MISPRONOUNCED
    return {"canonical_first_on_labels_ge_1_5": _share(gain[well] < 0),
            "another_phone_first_on_labels_lt_0_5": _share(gain[badly] > 0), "n": [int(well.sum()), int(badly.sum())]}


def _share(flags: np.ndarray) -> float | None:
    """The share of True, None for no rows."""
    return round(float(flags.mean()), 4) if flags.size else None


def fit(args) -> None:
    X, labels, speakers, raw = _arrays(args.rows)
    n_folds = min(args.folds, len(set(speakers)))
    if n_folds < 2:  # e.g. the smoke recipe's fixture: fitted, not measured
        fusion = PhoneEvidenceFusion().fit(X, labels)
        report = {"fitted_on": f"{raw['split']} ({len(labels)} phones)", "cross_validation": "none (one speaker)"}
        fusion.save(args.model, report)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(report))
        return
    out_of_fold = np.zeros(len(labels))
    per_fold = []
    for train, held in GroupKFold(n_folds).split(X, labels, speakers):
        out_of_fold[held] = PhoneEvidenceFusion().fit(X[train], labels[train]).predict(X[held])
        per_fold.append({"network": round(float(pearsonr(X[held, 0], labels[held])[0]), 4),
                         "fused": round(float(pearsonr(out_of_fold[held], labels[held])[0]), 4)})
    fusion = PhoneEvidenceFusion().fit(X, labels)
    report = {"fitted_on": f"{raw['split']} ({len(set(speakers))} speakers, {len(labels)} phones)",
              "cross_validation": f"{n_folds} speaker-disjoint folds",
              "network": measures(X[:, 0], labels), "fused_out_of_fold": measures(out_of_fold, labels),
              "per_fold_pcc": per_fold, "alpha": fusion.alpha_, "heard": heard_measures(raw),
              "command": "python recipes/local/phone_evidence.py " + " ".join(sys.argv[1:])}
    fusion.save(args.model, report)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


def evaluate(args) -> None:
    X, labels, _, raw = _arrays(args.rows)
    fusion = PhoneEvidenceFusion.load(args.model)
    if fusion is None:
        sys.exit(f"{args.model} has no phone_evidence.json: run the fit step first")
    report = {"split": raw["split"], "network": measures(X[:, 0], labels), "fused": measures(fusion.predict(X), labels),
              "command": "python recipes/local/phone_evidence.py " + " ".join(sys.argv[1:])}
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    g = steps.add_parser("gather")
    g.add_argument("--corpus", required=True)
    g.add_argument("--split", required=True, choices=("train", "dev", "test"))
    g.add_argument("--model", default="fusion/models/default")
    g.add_argument("--out", required=True)
    g.add_argument("--nj", type=int, default=1)
    g.add_argument("--limit", type=int, default=0, help="the first N utterances by id (0: all)")
    f = steps.add_parser("fit")
    f.add_argument("--rows", required=True)
    f.add_argument("--model", required=True, help="model directory to write phone_evidence.json into")
    f.add_argument("--out", required=True)
    f.add_argument("--folds", type=int, default=4)
    e = steps.add_parser("evaluate")
    e.add_argument("--rows", required=True)
    e.add_argument("--model", required=True)
    e.add_argument("--out", required=True)
    args = parser.parse_args()
    {"gather": gather, "fit": fit, "evaluate": evaluate}[args.step](args)


if __name__ == "__main__":
    main()
