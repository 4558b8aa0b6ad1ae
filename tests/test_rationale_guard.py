"""The fusion guard: a generated rationale is returned only when faithful; else constrained, else the rubric."""
from __future__ import annotations

import json
import warnings

import jsonschema
import numpy as np
import pytest

from orthoepy.encoder.corpus import load_corpus
from orthoepy.fusion.assessor import Assessor
from orthoepy.fusion.cli import main
from orthoepy.fusion.rationale import RationaleGuard, sheet_from_words
from orthoepy.fusion.schema import response_schema
from orthoepy.rationalizer.faithfulness import FaithfulnessEvaluator
from orthoepy.rationalizer.model import Generation
from orthoepy.rationalizer.records import PhoneScore, ScoreSheet, WordScore
from orthoepy.rationalizer.rubric import Rubric, RubricWriter


def _sheet() -> ScoreSheet:
    words = (WordScore("we", 9.5, 10.0, 9.5, (PhoneScore("W", 1.9), PhoneScore("IY1", 1.9))),
             WordScore("call", 3.0, 10.0, 3.0, (PhoneScore("K", 0.3, "G"), PhoneScore("AO1", 1.8), PhoneScore("L", 1.9)),
                       "Mispronunciation"),
             WordScore("it", 9.0, 10.0, 9.0, (PhoneScore("IH1", 1.9), PhoneScore("T", 1.8))))
    return ScoreSheet("we call it", dict(accuracy=6.0, completeness=10.0, fluency=7.2, prosodic=7.0, total=6.4), words)


FAITHFUL = RubricWriter(seed=3).write(_sheet())
UNFAITHFUL = ("Accuracy is excellent. Completeness is poor. Fluency is poor. Prosody is poor. Overall it is poor. "
              'In "it", /T/ sounded wrong.')


class ScriptedRationalizer:
    """Returns the given texts in turn; records the constraints it was called with."""

    def __init__(self, *texts: str):
        self.texts, self.calls, self.rubric = list(texts), [], Rubric()

    def explain(self, sheet, word_states, max_new_tokens=None, prefix="", banned=()):
        self.calls.append({"prefix": prefix, "banned": list(banned)})
        text = self.texts.pop(0)
        return Generation(prefix + text if prefix and not text.startswith(prefix) else text, 0.01, 10)


def test_scripted_texts_are_what_the_test_says():
    evaluator = FaithfulnessEvaluator()
    assert evaluator.evaluate(FAITHFUL, _sheet()).is_faithful()
    assert not evaluator.evaluate(UNFAITHFUL, _sheet()).is_faithful()


def test_a_faithful_generation_is_returned_as_is():
    result = RationaleGuard(ScriptedRationalizer(FAITHFUL)).explain(_sheet(), np.zeros((3, 4)))
    assert (result.text, result.source, result.faithful, result.attempts) == (FAITHFUL, "model", True, ["model"])


def test_a_contradiction_is_regenerated_under_constraints():
    words_part = FAITHFUL[len(RubricWriter().write_judgements(_sheet())):].strip()
    model = ScriptedRationalizer(UNFAITHFUL, words_part)
    result = RationaleGuard(model).explain(_sheet(), np.zeros((3, 4)))
    assert result.source == "model_constrained" and result.faithful
    assert "contradicted" in result.note
    constraints = model.calls[1]
    assert constraints["prefix"].startswith(RubricWriter().write_judgements(_sheet()))
    assert constraints["banned"] == ['"we"', '"it"']  # the words that are not problems


def test_the_forced_opening_is_worded_as_the_model_was_trained():
    from orthoepy.rationalizer.model import RationalizerSettings

    model = ScriptedRationalizer(UNFAITHFUL, UNFAITHFUL)
    model.settings = RationalizerSettings(audio_dim=4, training={"recipe": {"phrasing": "plain"}})
    RationaleGuard(model).explain(_sheet(), np.zeros((3, 4)))
    plain = RubricWriter(phrasing="plain").write_judgements(_sheet())
    assert model.calls[1]["prefix"] == plain + " " and plain != RubricWriter().write_judgements(_sheet())
    assert RationalizerSettings(audio_dim=4).phrasing == "varied"  # v0.3's directories record none


def test_persistent_contradictions_fall_back_to_the_rubric():
    result = RationaleGuard(ScriptedRationalizer(UNFAITHFUL, UNFAITHFUL)).explain(_sheet(), np.zeros((3, 4)))
    assert result.source == "rubric" and result.faithful
    assert result.text == RubricWriter(phrasing="plain").write(_sheet())
    assert result.attempts == ["model", "model_constrained", "rubric"] and "rubric text" in result.note
    # each band by its own name, as the page colours it (not "average", "outstanding", "moderate")
    assert "Accuracy is fair." in result.text and "Overall, the score is fair." in result.text


def test_without_a_model_the_rubric_text_is_returned_and_says_so():
    result = RationaleGuard(None, unavailable_note="no model here").explain(_sheet(), None)
    assert result.source == "rubric" and result.faithful and result.note == "no model here"


def test_unknown_mode_and_missing_rationalizer(tmp_path):
    with pytest.raises(ValueError, match="rationale mode"):
        RationaleGuard.for_model_directory(tmp_path, "sometimes")
    assert RationaleGuard.for_model_directory(tmp_path, "none") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no rationalizer at all: the rubric, quietly
        fallback = RationaleGuard.for_model_directory(tmp_path, "auto")
    assert fallback.rationalizer is None and "no rationale model" in fallback.unavailable_note
    with pytest.raises(Exception):
        RationaleGuard.for_model_directory(tmp_path, "model")


def test_a_rationalizer_of_another_scorer_falls_back_to_the_rubric(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"this scorer's weights")
    (tmp_path / "rationalizer" / "adapter").mkdir(parents=True)
    (tmp_path / "rationalizer" / "rationalizer.json").write_text(
        json.dumps({"audio_dim": 96, "scorer_fingerprint": "0123456789abcdef"}))
    with pytest.warns(RuntimeWarning, match="does not load"):  # a rationalizer there that fails: said aloud
        fallback = RationaleGuard.for_model_directory(tmp_path, "auto")
    assert fallback.rationalizer is None and "another scorer" in fallback.unavailable_note
    with pytest.raises(ValueError, match="another scorer"):
        RationaleGuard.for_model_directory(tmp_path, "model")


def test_assessment_carries_a_checked_rationale(fixture_dir):
    utt = load_corpus(fixture_dir, "test")[0]
    result = Assessor.from_pretrained(rationale="rubric").assess(utt.audio_path, utt.text)
    assert result.rationale.source == "rubric" and result.rationale.faithful
    sheet = sheet_from_words(result.text, result.sentence, result.words)
    assert FaithfulnessEvaluator().evaluate(result.rationale.text, sheet).is_faithful()
    jsonschema.validate(json.loads(result.to_json()), response_schema())
    assert "rationale" in result.timings


def test_evaluate_rationales_command_with_the_rubric(fixture_dir, tmp_path, capsys):
    out = tmp_path / "rationales.json"
    assert main(["evaluate-rationales", "--corpus", str(fixture_dir), "--split", "test", "--limit", "3",
                 "--model", str(Assessor.from_pretrained.__globals__["DEFAULT_MODEL_DIR"]),
                 "--rationalizer", "rubric", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rubric = result["systems"]["rubric"]
    assert result["n"] == 3 and rubric["self"]["faithful_fraction"] == 1.0  # the rubric agrees with its own sheet
    assert rubric["guard"]["rubric"] == 3
    assert 0.0 <= rubric["gold"]["phone"]["agreement"] <= 1.0
    assert "rubric" in capsys.readouterr().out


def test_evaluate_rationales_leaves_out_the_excluded_utterances(fixture_dir, tmp_path):
    model_dir = str(Assessor.from_pretrained.__globals__["DEFAULT_MODEL_DIR"])
    ids = [u.utt_id for u in load_corpus(fixture_dir, "test")]
    report = tmp_path / "training_report.json"
    report.write_text(json.dumps({"utterances": {"sft": ids[:-3], "pairs": ids[-3:-2]}}))
    out = tmp_path / "held_out.json"
    assert main(["evaluate-rationales", "--corpus", str(fixture_dir), "--split", "test", "--limit", "5",
                 "--model", model_dir, "--rationalizer", "rubric", "--exclude", str(report), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert sorted(result["utt_ids"]) == sorted(ids[-2:]) and result["excluded"] == len(ids) - 2
    listed = tmp_path / "ids.txt"
    listed.write_text("\n".join(ids[1:]) + "\n")
    assert main(["evaluate-rationales", "--corpus", str(fixture_dir), "--split", "test", "--model", model_dir,
                 "--rationalizer", "rubric", "--exclude", str(listed), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["utt_ids"] == ids[:1]
    old_report = tmp_path / "old.json"
    old_report.write_text("{}")
    assert main(["evaluate-rationales", "--corpus", str(fixture_dir), "--split", "test", "--model", model_dir,
                 "--rationalizer", "rubric", "--exclude", str(old_report), "--out", str(out)]) == 2
    broken = tmp_path / "broken.json"
    broken.write_text('{"utterances": ')
    assert main(["evaluate-rationales", "--corpus", str(fixture_dir), "--split", "test", "--model", model_dir,
                 "--rationalizer", "rubric", "--exclude", str(broken), "--out", str(out)]) == 2
