"""Articulation tips from the data table (rationalizer/tips.csv) and the rubric writer's use of them."""
import random
import re

import pytest

from orthoepy.encoder.phoneset import PHONES
from orthoepy.rationalizer.faithfulness import FaithfulnessEvaluator
from orthoepy.rationalizer.records import SENTENCE_ASPECTS, PhoneScore, ScoreSheet, WordScore
from orthoepy.rationalizer.rubric import PHONE_TIPS, Rubric, RubricWriter, perturb
from orthoepy.rationalizer.tips import DELETED, Tip, load_tips, parse_tips, tip, tips_for

CONFUSIONS = [t for (e, h), t in load_tips().items() if h not in (None, DELETED)]
DELETIONS = [t for (e, h), t in load_tips().items() if h == DELETED]


def test_every_row_names_arpabet_phones_and_every_phone_has_a_fallback():
    for (expected, heard), record in load_tips().items():
        assert expected in PHONES and (heard is None or heard == DELETED or heard in PHONES), record
        assert heard != expected
    assert {e for e, h in load_tips() if h is None} == set(PHONES)
    assert 25 <= len(CONFUSIONS) + len(DELETIONS) <= 40
    common = {("TH", "S"), ("TH", "T"), ("TH", "F"), ("DH", "D"), ("DH", "Z"), ("V", "B"), ("V", "W"), ("W", "V"),
              ("R", "L"), ("L", "R"), ("IH", "IY"), ("IY", "IH"), ("AE", "EH"), ("UH", "UW"), ("Z", "S"),
              ("NG", "N"), ("SH", "S"), ("CH", "SH"), ("JH", "Y"), ("JH", "ZH")}
    assert common <= {(t.expected, t.heard) for t in CONFUSIONS}
    assert DELETIONS


@pytest.mark.parametrize("record", list(load_tips().values()), ids=lambda t: f"{t.expected}-{t.heard}")
def test_tip_text_is_plain_language_the_evaluator_does_not_read_as_a_mention(record):
    assert record.text and record.text == record.text.strip() and not record.text[0].isupper()
    assert not re.search(r"[/();.!?\d]", record.text), record.text  # no phones, sentence ends, parentheses, numbers
    for quoted in re.finditer(r"\"[^\"]*\"", record.text):  # example words only, each right after "as in"
        assert record.text[:quoted.start()].endswith("as in "), record.text


def test_lookups_normalise_case_and_stress_and_fall_back():
    assert tip("TH", "S") == Tip("TH", "S", 'tongue tip between the teeth and blow air, as in "think", not as in "sink"')
    assert tip("th", "s1") == tip("TH", "S") and tip("IH0", "IY1").heard == "IY"
    assert tip("TH", "K") == tip("TH", None) == tip("TH") == Tip("TH", None, PHONE_TIPS["TH"])  # no TH->K row
    assert tip("T", DELETED).heard == DELETED and "final t" in tip("T", DELETED).text
    assert tip("QQ", "S") is None and tip("QQ") is None
    assert [t.heard for t in tips_for("TH")][-1] is None and {"S", "T", "F"} <= {t.heard for t in tips_for("TH")}
    assert tips_for("QQ") == []


@pytest.mark.parametrize("text, message", [
    ("expected,heard,tip\nXX,,a tip\n", "not ARPAbet"),
    ("expected,heard,tip\nTH,QQ,a tip\n", "not another ARPAbet"),
    ("expected,heard,tip\nTH,TH,a tip\n", "not another ARPAbet"),
    ("expected,heard,tip\nTH,S,\n", "empty tip"),
    ("expected,heard,tip\nTH,S,one\nTH,S,two\n", "a second tip"),
    ("expected,heard,tip\nTH,,a tip\n", "no fallback tip"),
])
def test_malformed_tables_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_tips(text)


def think_sheet(phone: str = "TH", heard: str | None = "S", accuracy: float = 0.3) -> ScoreSheet:
    return ScoreSheet("I think so", dict.fromkeys(SENTENCE_ASPECTS, 7.0), (
        WordScore("I", 10, 10, 10, (PhoneScore("AY1", 2.0),)),
        WordScore("THINK", 4, 10, 4, (PhoneScore(phone, accuracy, heard), PhoneScore("IH1", 2.0),
                                      PhoneScore("NG", 2.0), PhoneScore("K", 2.0)), "Mispronunciation"),
        WordScore("SO", 10, 10, 10, (PhoneScore("S", 2.0), PhoneScore("OW1", 2.0))),
    ))


def test_rubric_text_gives_the_confusion_tip_and_falls_back_to_the_phone_tip():
    writer = RubricWriter(number_rate=0.0)
    heard_s = writer.write(think_sheet(heard="S"))
    assert re.search(r"/TH/ (sounded like|came out as) /S/ \(" + re.escape(tip("TH", "S").text) + r"\)", heard_s)
    unclear = writer.write(think_sheet(heard=None))
    assert f"/TH/ " in unclear and f"({PHONE_TIPS['TH']})" in unclear and tip("TH", "S").text not in unclear
    heard_k = writer.write(think_sheet(heard="K"))  # no TH->K row: the phone's own tip, as before the table
    assert re.search(r"/TH/ (sounded like|came out as) /K/ \(" + re.escape(PHONE_TIPS["TH"]) + r"\)", heard_k)


@pytest.mark.parametrize("record", CONFUSIONS, ids=lambda t: f"{t.expected}-{t.heard}")
def test_every_confusion_tip_keeps_the_rubric_text_faithful(record):
    sheet = think_sheet(record.expected, record.heard)
    evaluator = FaithfulnessEvaluator()
    for variant in range(3):
        text = RubricWriter(seed=variant).write(sheet, variant=variant)
        assert record.text in text
        report = evaluator.evaluate(text, sheet)
        assert report.is_faithful(), (text, report.contradictions)
        assert report.words.named == ("think",) and report.phones.named == (f"think /{record.expected}/",)


def test_wrong_phone_perturbation_swaps_a_confusion_tip_too():
    sheet = think_sheet("TH", "S")
    text = RubricWriter(number_rate=0.0).write(sheet)
    bad, kind = perturb(text, sheet, Rubric(), random.Random(0), kind="wrong_phone")
    assert kind == "wrong_phone" and tip("TH", "S").text not in bad
    decoy = re.search(r"/([A-Z]{1,2})/ (?:sounded like|came out as) /S/", bad).group(1)
    assert decoy != "TH" and f"({PHONE_TIPS[decoy]})" in bad
