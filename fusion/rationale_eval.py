"""`orthoepy evaluate-rationales`: how faithful the rationales are, on a corpus split.

For each utterance of a (seeded) sample: the scorer's calibrated scores and diagnosis become the score sheet the
rationalizer is given; each system writes its rationale with no guard; the faithfulness evaluator compares it
with that sheet (self-consistency) and with the sheet of the human labels (gold agreement). The guard's outcome
(model / model_constrained / rubric) and the generation latency are recorded too.

Gold on the test split: the corpus has no word labels there, so a gold word's accuracy is 5 x the mean of its
labelled phone accuracies (rationalizer.sheets); phone and sentence gold are the labels themselves.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..encoder.corpus import load_corpus
from ..encoder.scorer.phone_evidence import PhoneEvidenceFusion
from ..encoder.scorer.pipeline import Scorer, network_fingerprint
from ..rationalizer.faithfulness import FaithfulnessEvaluator, summarize
from .rationale import RATIONALE_SOURCES, RationaleGuard
from .rationale_sources import RationaleCase, rationale_cases, sample_utterances

RUBRIC_SYSTEM = "rubric"  # the deterministic writer, as a reference row


def evaluate_rationales(corpus_dir: str | Path | None, split: str, model_dir: str | Path,
                        systems: dict[str, str | Path], out: str | Path, features_dir: str | Path | None = None,
                        limit: int | None = 100, seed: int = 0, progress: bool = True, nj: int = 1,
                        exclude: Sequence[str] = ()) -> dict:
    """systems: name -> rationalizer directory (or RUBRIC_SYSTEM for the rubric writer).
    exclude: utterance ids left out before sampling (a rationalizer's own training utterances, for a held-out
    evaluation on train)."""
    scorer = Scorer.from_pretrained(model_dir)
    left_out = set(exclude)
    utterances = sample_utterances([u for u in load_corpus(corpus_dir, split) if u.utt_id not in left_out], limit, seed)
    cases = rationale_cases(scorer, utterances, features_dir, Path(model_dir).name, nj,
                            phone_evidence=PhoneEvidenceFusion.load(model_dir))
    result = {"split": split, "n": len(cases), "seed": seed, "excluded": len(left_out),
              "utt_ids": [c.utterance.utt_id for c in cases],
              "systems": {}, "examples": {}}
    for name, directory in systems.items():
        guard = _guard(directory, network_fingerprint(model_dir))
        outcome = _run_system(name, guard, cases, progress)
        result["systems"][name] = outcome["summary"]
        result["examples"][name] = outcome["examples"]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1, default=float))
    return result


def _guard(directory: str | Path, scorer_fingerprint: str) -> RationaleGuard:
    if str(directory) == RUBRIC_SYSTEM:
        return RationaleGuard(None)
    from ..rationalizer.model import Rationalizer

    return RationaleGuard(Rationalizer.from_pretrained(directory, scorer_fingerprint=scorer_fingerprint))


def _run_system(name: str, guard: RationaleGuard, cases: Sequence[RationaleCase], progress: bool) -> dict:
    evaluator = FaithfulnessEvaluator(guard.rubric)
    self_reports, gold_reports, seconds, tokens, sources, examples = [], [], [], [], [], []
    for case in tqdm(cases, desc=f"rationales ({name})", unit="utt", disable=not progress):
        if guard.rationalizer is None:
            text, result = guard.writer.write(case.sheet), guard.explain(case.sheet, None)
        else:
            first = guard.rationalizer.explain(case.sheet, case.word_states)
            text, result = first.text, guard.explain(case.sheet, case.word_states, first=first)
            seconds.append(first.seconds)
            tokens.append(first.new_tokens)
        self_reports.append(evaluator.evaluate(text, case.sheet))
        gold_reports.append(evaluator.evaluate(text, case.gold))
        sources.append(result.source)
        examples.append({"utt_id": case.utterance.utt_id,  # no human labels: the file may go to docs/
                         "generated": text, "returned": asdict(result), "response": case.assessment.to_dict()
                         | {"rationale": asdict(result)}})
    summary = {"self": summarize(self_reports), "gold": summarize(gold_reports),
               "guard": {s: sources.count(s) for s in RATIONALE_SOURCES}}
    if seconds:
        summary["latency"] = {"mean_s": float(np.mean(seconds)), "p50_s": float(np.median(seconds)),
                              "p95_s": float(np.percentile(seconds, 95)), "mean_new_tokens": float(np.mean(tokens)),
                              "tokens_per_s": float(np.sum(tokens) / np.sum(seconds))}
    return {"summary": summary, "examples": examples}
