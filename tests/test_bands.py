"""The one band table (rationalizer.bands) and the consumers that must agree with it."""
from fractions import Fraction

import pytest

from orthoepy.rationalizer.bands import BAND_NAMES, GRANULARITIES, SCALES, band, band_table, scale
from orthoepy.rationalizer.faithfulness import FaithfulnessEvaluator
from orthoepy.rationalizer.records import SENTENCE_ASPECTS, PhoneScore, ScoreSheet, WordScore
from orthoepy.rationalizer.rubric import WRITER_BAND_WORDS, Rubric, RubricWriter, sentence_band


def grid(granularity: str) -> list[float]:
    """Every shown value of the scale, plus values half a shown step either side of each edge."""
    s = scale(granularity)
    step = 10.0 ** -s.decimals
    n = round((s.maximum - s.minimum) / step)
    values = [round(s.minimum + i * step, s.decimals) for i in range(n + 1)]
    return values + [e + d for e in s.edges for d in (-0.6 * step, -0.4 * step, 0.4 * step)]


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_table_is_monotone_and_covers_the_scale(granularity):
    s = SCALES[granularity]
    assert [b.name for b in s.bands] == list(BAND_NAMES)
    assert s.bands[0].lower == s.minimum and s.bands[-1].upper == s.maximum
    for lower, upper in zip(s.bands, s.bands[1:]):
        assert lower.upper == upper.lower  # no gap, no overlap
    assert all(b.lower < b.upper for b in s.bands)
    assert list(s.edges) == sorted(s.edges) and len(set(s.edges)) == len(s.edges)
    ranks = [BAND_NAMES.index(band(v, granularity).name) for v in sorted(grid(granularity))]
    assert ranks == sorted(ranks) and set(ranks) == set(range(len(BAND_NAMES)))


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_no_exact_rounding_tie_below_an_edge(granularity):
    # a value exactly half a shown step below an edge would round up in JavaScript and to even in Python
    s = SCALES[granularity]
    for edge in s.edges:
        tie = Fraction(str(edge)) - Fraction(1, 2 * 10 ** s.decimals)
        assert Fraction(float(tie)) != tie, edge


def test_documented_edges_and_ends():
    assert SCALES["sentence"].edges == SCALES["word"].edges == (4.0, 6.5, 8.5)
    assert SCALES["phone"].edges == (1.0, 1.5, 1.7)
    assert band(-1, "word").name == "poor" and band(12, "word").name == "excellent"
    assert band(10, "sentence").name == "excellent" and band(2.0, "phone").name == "excellent"
    assert band(3.96, "sentence").name == "fair"  # banded as shown: 4.0
    assert band(0.996, "phone").name == "fair" and band(0.994, "phone").name == "poor"


@pytest.mark.parametrize("value, granularity", [(float("nan"), "word"), (5.0, "paragraph")])
def test_band_rejects_nan_and_unknown_granularity(value, granularity):
    with pytest.raises(ValueError):
        band(value, granularity)


def test_band_table_is_the_json_the_page_gets():
    table = band_table()
    assert set(table) == set(GRANULARITIES)
    for granularity, data in table.items():
        assert [b["name"] for b in data["bands"]] == list(BAND_NAMES)
        assert all(b["hex"].startswith("#") and len(b["background"]) == 7 for b in data["bands"])
        assert data["decimals"] == SCALES[granularity].decimals


def test_rubric_follows_the_table_and_rejects_other_edges():
    assert Rubric().band_edges == SCALES["sentence"].edges
    assert Rubric().phone_threshold == SCALES["phone"].edges[0]
    for value in grid("sentence"):
        assert sentence_band(Rubric(), value) == band(value, "sentence").name
    with pytest.raises(ValueError, match="band table"):
        Rubric(band_edges=(5.0, 6.5, 8.5))


def test_the_mispronounced_flag_is_the_poor_phone_band():
    from orthoepy.fusion.assessor import LOW_PHONE_SCORE

    assert LOW_PHONE_SCORE == SCALES["phone"].edges[0] == SCALES["phone"].bands[0].upper


def flat_sheet(value: float) -> ScoreSheet:
    return ScoreSheet("we", dict.fromkeys(SENTENCE_ASPECTS, value), (WordScore("WE", 10, 10, 10, (PhoneScore("W", 2.0),)),))


@pytest.mark.parametrize("value", [round(0.1 * i, 1) for i in range(101)] + [3.96, 6.44, 6.46, 8.44, 8.46])
def test_writer_and_evaluator_judge_a_band_word_by_the_table(value):
    expected = band(value, "sentence").name
    text = RubricWriter(number_rate=0.0).write(flat_sheet(value))
    evaluator = FaithfulnessEvaluator()
    report = evaluator.evaluate(text, flat_sheet(value))
    assert report.sentence_consistency == 1.0 and report.sentence_coverage == 1.0, text
    assert all(c.expected_band == expected for c in report.sentence.values())
    for name in BAND_NAMES:  # every band word, and every synonym the writer uses, is judged by the same edges
        for word in WRITER_BAND_WORDS[name]:
            check = evaluator.evaluate(f"Accuracy is {word}.", flat_sheet(value)).sentence["accuracy"]
            assert check.consistent is (name == expected), (value, word)


# --------------------------------------------------------------------- the rubric text, the CLI and the page agree

def page_band(table: dict, value: float, granularity: str) -> dict:
    """fusion/static/app.js's band(), on the table the page receives (test_page.py runs the real one)."""
    scale_data = table[granularity]
    shown = round(value, scale_data["decimals"])
    return next((b for b in scale_data["bands"][:-1] if shown < b["upper"]), scale_data["bands"][-1])


@pytest.fixture(scope="module")
def served_table() -> dict:
    from fastapi.testclient import TestClient

    from orthoepy.fusion.service import create_app

    class Fake:
        model_name = "fake"

    with TestClient(create_app(Fake)) as client:
        return client.get("/v1/info").json()["bands"]


def assessment_scoring(value: float):
    from orthoepy.fusion.assessor import Assessment, PhoneResult, WordResult

    phone = PhoneResult("TH", round(value / 5, 2), 0.1, 0.2, None, None, False)
    word = WordResult("THINK", value, 10.0, value, "None", [phone])
    return Assessment("think", dict.fromkeys(SENTENCE_ASPECTS, value), [word], False, "fake")


@pytest.mark.parametrize("value", sorted(set(grid("sentence"))))
def test_rubric_text_cli_band_word_and_page_colour_agree(value, served_table):
    from orthoepy.fusion.assessor import format_assessment
    from orthoepy.fusion.rationale import sheet_from_words
    from orthoepy.rationalizer.mentions import parse_rationale

    result = assessment_scoring(value)
    expected = band(value, "sentence")
    text = RubricWriter(number_rate=0.0).write(sheet_from_words(result.text, result.sentence, result.words))
    said = {j.aspect: j.bands for j in parse_rationale(text).aspects}
    assert said == dict.fromkeys(SENTENCE_ASPECTS, frozenset({expected.name})), text
    printed = format_assessment(result)
    assert f"accuracy {value:.1f} ({expected.name})" in printed
    assert f"accuracy {value:4.1f} ({band(value, 'word').name})" in printed
    phone = result.words[0].phones[0].score
    assert f"TH    {phone:4.2f} {band(phone, 'phone').name} " in printed
    for granularity, score in (("sentence", value), ("word", value), ("phone", phone)):
        shown = page_band(served_table, score, granularity)
        assert (shown["name"], shown["background"]) == (band(score, granularity).name, band(score, granularity).background)


def test_served_table_is_the_band_table(served_table):
    assert served_table == band_table()
