"""The rationale of an assessment, guarded: a generated text is returned only when it agrees with the scores.

Every generated rationale is checked by the rationalizer's faithfulness evaluator against the very scores the
response carries. One that contradicts them is regenerated under constraints (the answer is started with the
rubric's judgements of the sentence aspects, and naming a word that is not a problem is banned); if that still
fails, the deterministic rubric text is returned. The response says which of the three happened.
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..rationalizer.faithfulness import FaithfulnessEvaluator, FaithfulnessReport, FaithfulnessThresholds
from ..rationalizer.records import PhoneScore, ScoreSheet, WordScore
from ..rationalizer.rubric import Rubric, RubricWriter, problem_words, word_key

RATIONALE_SOURCES = ("model", "model_constrained", "rubric")
RATIONALE_MODES = ("auto", "model", "rubric", "none")
RATIONALIZER_DIR = "rationalizer"  # inside a model directory


@dataclass
class RationaleResult:
    text: str
    source: str  # one of RATIONALE_SOURCES
    faithful: bool  # the evaluator's verdict on `text` against the returned scores
    checks: dict[str, float]  # agreement per granularity of `text` with the returned scores
    note: str = ""  # why the model's first text was not returned, or why no model ran
    seconds: float = 0.0  # generation time (all attempts)
    attempts: list[str] = field(default_factory=list)  # sources tried, in order


def sheet_from_words(text: str, sentence: dict[str, float], words) -> ScoreSheet:
    """A ScoreSheet from an assessment's sentence scores and WordResults (duck-typed: text, accuracy, stress,
    total, error_type, phones[].phone / .score / .heard, and heard_word when it has one)."""
    return ScoreSheet(text, dict(sentence), tuple(
        WordScore(w.text, w.accuracy, w.stress, w.total,
                  tuple(PhoneScore(p.phone, p.score, p.heard) for p in w.phones), w.error_type,
                  getattr(w, "heard_word", None)) for w in words))


class RationaleGuard:
    """Writes the rationale of one score sheet: the rationalizer's text when faithful, else a fallback."""

    def __init__(self, rationalizer=None, rubric: Rubric | None = None,
                 thresholds: FaithfulnessThresholds = FaithfulnessThresholds(), unavailable_note: str = ""):
        self.rationalizer = rationalizer
        self.rubric = rubric or (rationalizer.rubric if rationalizer is not None else Rubric())
        self.evaluator = FaithfulnessEvaluator(self.rubric)
        # the fallback says each band by its own name, as the page colours it (synonyms such as "weak" for poor
        # or "moderate" for fair read as other bands to a learner; a newcomer found them)
        self.writer = RubricWriter(self.rubric, phrasing="plain")
        # a regeneration's forced opening is worded as the model's own training targets were
        phrasing = getattr(getattr(rationalizer, "settings", None), "phrasing", "varied")
        self.prefix_writer = RubricWriter(self.rubric, phrasing=phrasing)
        self.thresholds = thresholds
        self.unavailable_note = unavailable_note

    @classmethod
    def for_model_directory(cls, directory: str | Path, mode: str = "auto") -> "RationaleGuard | None":
        """mode: "auto" (the directory's rationalizer when it loads, else the rubric, saying why), "model" (the
        rationalizer or an error), "rubric" (rubric text only), "none" (no rationale)."""
        if mode not in RATIONALE_MODES:
            raise ValueError(f"rationale mode must be one of {RATIONALE_MODES}, not {mode!r}")
        if mode == "none":
            return None
        if mode == "rubric":
            return cls(None, unavailable_note="rubric text requested")
        try:
            return cls(_load_rationalizer(Path(directory)))
        except Exception as err:  # any load failure (no adapter, no base weights) falls back in "auto" mode
            if mode == "model":
                raise
            note = f"no rationale model ({type(err).__name__}: {err}); rubric text"
            if (Path(directory) / RATIONALIZER_DIR).is_dir():  # there is one, but it does not load: say so once
                warnings.warn(f"{directory}: the rationalizer does not load, rationales are the rubric's text: {note}",
                              RuntimeWarning, stacklevel=2)
            return cls(None, unavailable_note=note)

    def explain(self, sheet: ScoreSheet, word_states: np.ndarray | None, first=None) -> RationaleResult:
        """first: the rationalizer's unconstrained Generation when the caller already has it."""
        if self.rationalizer is None or word_states is None:
            return self._rubric(sheet, self.unavailable_note or "no rationale model; rubric text", 0.0, [])
        first = first or self.rationalizer.explain(sheet, word_states)
        report = self.evaluator.evaluate(first.text, sheet)
        if report.is_faithful(self.thresholds):
            return self._result(first.text, "model", report, "", first.seconds, ["model"])
        constrained = self.rationalizer.explain(sheet, word_states, prefix=self.prefix_writer.write_judgements(sheet) + " ",
                                                banned=self._innocent_words(sheet))
        seconds = first.seconds + constrained.seconds
        reason = "; ".join(report.contradictions[:3]) or "incomplete"
        again = self.evaluator.evaluate(constrained.text, sheet)
        if again.is_faithful(self.thresholds):
            return self._result(constrained.text, "model_constrained", again,
                           f"first text contradicted the scores ({reason}); regenerated under constraints",
                           seconds, ["model", "model_constrained"])
        return self._rubric(sheet, f"generated texts contradicted the scores ({reason}); rubric text", seconds,
                            ["model", "model_constrained"])

    def _rubric(self, sheet: ScoreSheet, note: str, seconds: float, attempts: list[str]) -> RationaleResult:
        text = self.writer.write(sheet)
        return self._result(text, "rubric", self.evaluator.evaluate(text, sheet), note, seconds, attempts + ["rubric"])

    def _innocent_words(self, sheet: ScoreSheet) -> list[str]:
        blamed = {word_key(p.word.text) for p in problem_words(self.rubric, sheet, capped=False)}
        return [f'"{word_key(w.text)}"' for w in sheet.words if word_key(w.text) not in blamed]

    def _result(self, text: str, source: str, report: FaithfulnessReport, note: str, seconds: float,
                attempts: list[str]) -> RationaleResult:
        checks = {"sentence": report.sentence_consistency, "sentence_coverage": report.sentence_coverage,
                  "word_f1": report.words.f1, "phone_f1": report.phones.f1, "numbers": report.number_agreement}
        return RationaleResult(text, source, report.is_faithful(self.thresholds),
                               {k: round(float(v), 3) for k, v in checks.items()}, note, round(seconds, 3), attempts)


def _load_rationalizer(model_dir: Path):
    from ..encoder.scorer.pipeline import network_fingerprint  # torch/transformers/peft: only when a model is wanted
    from ..rationalizer.model import Rationalizer

    return Rationalizer.from_pretrained(model_dir / RATIONALIZER_DIR, scorer_fingerprint=network_fingerprint(model_dir))
