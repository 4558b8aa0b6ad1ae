"""Issue 13's measures beyond self-consistency: the deletion test's pieces and the stored-evaluation measures
(recipes/local/rationale_deletion_test.py, recipes/local/rationale_measures.py)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

LOCAL = Path(__file__).resolve().parents[1] / "recipes" / "local"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, LOCAL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


deletion = _load("rationale_deletion_test")
measures = _load("rationale_measures")


def phone(symbol, start, end, score=2.0, heard=None):
    return SimpleNamespace(phone=symbol, start=start, end=end, score=score, heard=heard)


def word(text, phones, total=10.0, error_type="None"):
    return SimpleNamespace(text=text, phones=phones, accuracy=total, stress=10.0, total=total, error_type=error_type)


def test_the_first_blamed_word_of_the_text_is_the_one_silenced():
    words = [word("WE", [phone("W", 0.0, 0.1)]), word("BEAR", [phone("B", 0.5, 0.6), phone("EH0", 0.6, 0.9)], 4.0)]
    said = SimpleNamespace(words=words, rationale=SimpleNamespace(text='"river" is not here, but "bear" needs work.'))
    assert deletion.blamed_index(said) == 1  # "river" is not a word of the text
    praised = SimpleNamespace(words=words, rationale=SimpleNamespace(text='You said "bear" well.'))
    assert deletion.blamed_index(praised) is None
    samples = np.ones(16_000, np.float32)
    quiet = deletion.silenced(samples, words[1], 16_000)
    assert quiet[8000:14400].max() == 0.0 and quiet[:8000].min() == 1.0 and quiet[14400:].min() == 1.0
    assert samples.min() == 1.0  # the input is left as it was


def test_a_word_has_moved_when_its_total_changes_enough_or_it_is_now_missing():
    assert deletion.moved(4.0, {"total": 2.5, "error_type": "None"}, 1.0)
    assert not deletion.moved(4.0, {"total": 3.5, "error_type": "Mispronunciation"}, 1.0)
    assert deletion.moved(4.0, {"total": 4.0, "error_type": "Omission"}, 1.0)


def test_stored_evaluations_are_measured_on_the_sheet_of_their_response():
    response = {"text": "We bear", "sentence": {"accuracy": 7.0, "completeness": 10.0, "fluency": 8.0,
                                                "prosodic": 5.0, "total": 6.9},
                "words": [{"text": "WE", "accuracy": 10.0, "stress": 10.0, "total": 10.0, "error_type": "None",
                           "phones": [{"phone": "W", "score": 2.0, "heard": None}]},
                          {"text": "BEAR", "accuracy": 4.0, "stress": 10.0, "total": 4.0,
                           "error_type": "Mispronunciation",
                           "phones": [{"phone": "EH0", "score": 0.6, "heard": "AE1"}]}]}
    examples = [{"response": response, "generated": '"river" was unclear.',
                 "returned": {"text": 'In "bear", /EH/ sounded like /AE/.'}}]
    found = measures.measures(examples, measures.FaithfulnessEvaluator())
    assert found["generated"]["extra_words"] == {"ratio": 1.0, "texts_with_extra": 1.0}
    assert found["generated"]["worst"]["word_named"] == {"share": 0.0, "n": 1}
    assert found["returned"]["worst"] == {"word_named": {"share": 1.0, "n": 1}, "phone_named": {"share": 1.0, "n": 1}}
