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
import random
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from ..encoder.corpus import Utterance, load_corpus
from ..encoder.features.store import FeatureStore, extract_utterances
from ..encoder.scorer.pipeline import Scorer
from ..rationalizer.data import heard_by_position, pool_words
from ..rationalizer.faithfulness import FaithfulnessEvaluator, summarize
from ..rationalizer.records import ScoreSheet
from ..rationalizer.sheets import sheet_from_labels
from .assessor import Assessment, _assessment, _frontend_config
from .rationale import RATIONALE_SOURCES, RationaleGuard, sheet_from_words

RUBRIC_SYSTEM = "rubric"  # the deterministic writer, as a reference row


def evaluate_rationales(corpus_dir: str | Path | None, split: str, model_dir: str | Path,
                        systems: dict[str, str | Path], out: str | Path, features_dir: str | Path | None = None,
                        limit: int | None = 100, seed: int = 0, progress: bool = True, nj: int = 1) -> dict:
    """systems: name -> rationalizer directory (or RUBRIC_SYSTEM for the rubric writer)."""
    scorer = Scorer.from_pretrained(model_dir)
    utterances = _sample(load_corpus(corpus_dir, split), limit, seed)
    cases = _cases(scorer, utterances, features_dir, Path(model_dir).name, nj)
    result = {"split": split, "n": len(cases), "seed": seed, "utt_ids": [c.utterance.utt_id for c in cases],
              "systems": {}, "examples": {}}
    for name, directory in systems.items():
        guard = _guard(directory)
        outcome = _run_system(name, guard, cases, progress)
        result["systems"][name] = outcome["summary"]
        result["examples"][name] = outcome["examples"]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1, default=float))
    return result


class _Case:
    """One utterance: its labels, the response built from the scorer, the sheets and the audio states."""

    def __init__(self, utterance: Utterance, assessment: Assessment, word_states: np.ndarray, gold: ScoreSheet):
        self.utterance, self.assessment, self.word_states, self.gold = utterance, assessment, word_states, gold
        self.sheet = sheet_from_words(assessment.text, assessment.sentence, assessment.words)


def _sample(utterances: list[Utterance], limit: int | None, seed: int) -> list[Utterance]:
    if limit is None or limit >= len(utterances):
        return utterances
    return sorted(random.Random(seed).sample(utterances, limit), key=lambda u: u.utt_id)


def _cases(scorer: Scorer, utterances: list[Utterance], features_dir, model_name: str, nj: int) -> list[_Case]:
    with tempfile.TemporaryDirectory() as scratch:
        if features_dir is None:  # extract as the model was trained
            extract_utterances(utterances, scratch, _frontend_config(scorer), nj=nj)
            store = FeatureStore(scratch)
        else:
            store = FeatureStore(features_dir)
        features = {u.utt_id: store.load(u.utt_id) for u in utterances}
    examples = scorer.examples(features)
    scored, states = scorer.score_examples(examples), scorer.phone_states(examples)
    cases = []
    for utterance, s, phone_states in zip(utterances, scored, states):
        f = features[utterance.utt_id]
        assessment = _assessment(utterance.text, [w.text for w in utterance.words], f, s, model_name, {})
        word_index = [p.word_index for p in f.phones]
        heard = heard_by_position(word_index, [h.base for h in f.heard] if f.heard else None)
        cases.append(_Case(utterance, assessment, pool_words(phone_states, word_index, len(utterance.words)),
                           sheet_from_labels(utterance, heard=heard)))
    return cases


def _guard(directory: str | Path) -> RationaleGuard:
    if str(directory) == RUBRIC_SYSTEM:
        return RationaleGuard(None)
    from ..rationalizer.model import Rationalizer

    return RationaleGuard(Rationalizer.from_pretrained(directory))


def _run_system(name: str, guard: RationaleGuard, cases: Sequence[_Case], progress: bool) -> dict:
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
        examples.append({"utt_id": case.utterance.utt_id, "human_total": case.utterance.sentence.total,
                         "generated": text, "returned": asdict(result), "response": case.assessment.to_dict()
                         | {"rationale": asdict(result)}})
    summary = {"self": summarize(self_reports), "gold": summarize(gold_reports),
               "guard": {s: sources.count(s) for s in RATIONALE_SOURCES}}
    if seconds:
        summary["latency"] = {"mean_s": float(np.mean(seconds)), "p50_s": float(np.median(seconds)),
                              "p95_s": float(np.percentile(seconds, 95)), "mean_new_tokens": float(np.mean(tokens)),
                              "tokens_per_s": float(np.sum(tokens) / np.sum(seconds))}
    return {"summary": summary, "examples": examples}
