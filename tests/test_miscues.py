"""The learned miscue detectors: features from crafted evidence, the JSON round trip, and decide() using them."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from orthoepy.encoder.miscues import (DOUBLED_UNKNOWN, GAP_FEATURES, TEXT_FEATURES, WORD_FEATURES, LogisticScorer,
                                      MiscueDetector, MiscueModelError, gap_features, heard_at, text_features,
                                      word_features)
from orthoepy.encoder.verification import OMITTED, READ, SUBSTITUTED, Evidence, HeardWord, VerifierConfig, decide

I, THINK, SO = ("AY1",), ("TH", "IH1", "NG", "K"), ("S", "OW1")
WORDS, REFERENCE = ["I", "THINK", "SO"], [I, THINK, SO]
ALIGNED = [(0.0, 0.2, 1), (0.2, 0.6, 4), (1.2, 1.5, 2)]


def heard(text, phones, start, end, p=0.9):
    return HeardWord(text, start, end, p, tuple(x.rstrip("012") for x in phones))


def evidence(**changes) -> Evidence:
    base = Evidence(1.5, "en", 0.9, (heard("I", I, 0, .2), heard("THINK", THINK, .2, .6), heard("SO", SO, 1.2, 1.5)),
                    (0.9, 0.8, 0.9), (), speech=((0.0, 0.6), (0.7, 1.1), (1.2, 1.5)),
                    prompted=(heard("I", I, 0, .2), heard("THINK", THINK, .2, .6), heard("SO", SO, 1.2, 1.5)),
                    doubled=(-9.0, -8.0, -10.0))
    return replace(base, **changes)


def scorer(features, coef, threshold=0.5, intercept=0.0) -> LogisticScorer:
    n = len(features)
    return LogisticScorer(tuple(features), (0.0,) * n, (1.0,) * n, tuple(coef), intercept, threshold)


def test_heard_at_lays_a_transcription_over_the_words():
    found = heard_at(REFERENCE, (heard("I", I, 0, .2), heard("SINK", ("S", "IH", "NG", "K"), .2, .6, p=0.7),
                                 heard("UM", ("AH", "M"), .6, .8, p=0.4), heard("SO", SO, 1.2, 1.5)))
    assert found.distance.tolist() == pytest.approx([0.0, 0.25, 0.0])
    assert found.probability.tolist() == pytest.approx([0.9, 0.7, 0.9])
    assert found.extra.tolist() == pytest.approx([0.0, 0.0, 0.4, 0.0])  # UM after THINK, before SO


def test_features_follow_the_evidence():
    words = word_features(evidence(forced=(0.9, 1e-6, 0.9)), REFERENCE, ALIGNED)
    assert words.shape == (3, len(WORD_FEATURES))
    log_forced = words[:, WORD_FEATURES.index("log_forced")]
    assert log_forced[1] == pytest.approx(np.log(1e-4)) and log_forced[0] == pytest.approx(np.log(0.9))
    gaps = gap_features(evidence(), REFERENCE, ALIGNED)
    assert gaps.shape == (2, len(GAP_FEATURES))
    assert gaps[:, GAP_FEATURES.index("voiced_s")] == pytest.approx([0.0, 0.4])  # speech 0.7-1.1 s in the THINK|SO gap
    assert gaps[:, GAP_FEATURES.index("gap_s")] == pytest.approx([0.0, 0.6])
    assert gaps[:, GAP_FEATURES.index("doubled_before")] == pytest.approx([-9.0, -8.0])
    assert gaps[:, GAP_FEATURES.index("doubled_after")] == pytest.approx([-8.0, -10.0])
    unknown = gap_features(evidence(doubled=()), REFERENCE, ALIGNED)[:, GAP_FEATURES.index("doubled_before")]
    assert unknown == pytest.approx([DOUBLED_UNKNOWN] * 2)
    assert gap_features(evidence(), [I], ALIGNED[:1]).shape == (0, len(GAP_FEATURES))


def test_detector_round_trips_through_json(tmp_path):
    detector = MiscueDetector(scorer(WORD_FEATURES, np.arange(len(WORD_FEATURES)) / 10),
                              scorer(GAP_FEATURES, np.ones(len(GAP_FEATURES)), 0.7),
                              scorer(TEXT_FEATURES, np.ones(len(TEXT_FEATURES)), 0.6), "test")
    detector.save(tmp_path)
    assert MiscueDetector.load(tmp_path) == detector
    assert MiscueDetector.load(tmp_path / "elsewhere") is None
    raw = json.loads((tmp_path / "miscues.json").read_text())
    raw["gap"]["features"] = raw["gap"]["features"][:-1]
    (tmp_path / "miscues.json").write_text(json.dumps(raw))
    with pytest.raises(MiscueModelError, match="features"):
        MiscueDetector.load(tmp_path)


def _detector(word_on: str, gap_on: str) -> MiscueDetector:
    """Detectors that look at one feature each (so the crafted evidence decides the outcome)."""
    word = [(-1.0 if f == word_on else 0.0) for f in WORD_FEATURES]  # low forced probability -> not read
    gap = [(10.0 if f == gap_on else 0.0) for f in GAP_FEATURES]
    text = [(-10.0 if f == "median_log_forced" else 0.0) for f in TEXT_FEATURES]  # other text: forced text unlikely
    return MiscueDetector(scorer(WORD_FEATURES, word, 0.99), scorer(GAP_FEATURES, gap, 0.8, intercept=-2.0),
                          scorer(TEXT_FEATURES, text, 0.5, intercept=-40.0))


def test_decide_uses_the_detector_once_aligned():
    detector = _detector("log_forced", "voiced_s")
    low = evidence(forced=(0.9, 1e-6, 0.9))
    verdict = decide(low, WORDS, REFERENCE, VerifierConfig(), ALIGNED, detector)
    assert [c.status for c in verdict.words] == [READ, OMITTED, READ]
    assert [(i.text, i.after_word, i.kind) for i in verdict.insertions] == [("(unrecognised speech)", 1, "Insertion")]
    # without the alignment the rules decide (the first pass, which only cuts the recording into chunks)
    assert decide(low, WORDS, REFERENCE, VerifierConfig(), None, detector).insertions == ()
    quiet = evidence(speech=((0.0, 0.6), (1.2, 1.5)))
    assert decide(quiet, WORDS, REFERENCE, VerifierConfig(), ALIGNED, detector).insertions == ()


def test_a_flagged_word_heard_as_another_word_in_its_place_is_substituted():
    detector = _detector("log_forced", "voiced_s")
    sink = heard("SINK", ("S", "IH", "NG", "K"), .25, .55)
    other = evidence(forced=(0.9, 1e-6, 0.9), prompted=(heard("I", I, 0, .2), sink, heard("SO", SO, 1.2, 1.5)))
    verdict = decide(other, WORDS, REFERENCE, VerifierConfig(), ALIGNED, detector).words
    assert [c.status for c in verdict] == [READ, SUBSTITUTED, READ] and verdict[1].heard == "SINK"
    # the transcription given the text heard nothing in its place: omitted
    dropped = replace(other, prompted=(heard("I", I, 0, .2), heard("SO", SO, 1.2, 1.5)))
    assert decide(dropped, WORDS, REFERENCE, VerifierConfig(), ALIGNED, detector).words[1].status == OMITTED


def test_repetition_named_from_the_doubled_text():
    detector = _detector("log_forced", "voiced_s")
    again = evidence(doubled=(-9.0, 1.5, -10.0))  # THINK read twice makes the forced text more likely
    found = decide(again, WORDS, REFERENCE, VerifierConfig(), ALIGNED, detector).insertions
    assert [(i.text, i.kind, i.after_word, i.start, i.end) for i in found] == [("THINK", "Repetition", 1, 0.6, 1.2)]


def test_repetition_named_from_the_phone_recogniser_where_whisper_finds_it_unlikely():
    from orthoepy.encoder.phone_gains import PhoneGains

    detector = _detector("log_forced", "voiced_s")
    gains = PhoneGains((-9.0, -20.0, -9.0), (-6.0, 4.0, -12.0), (-3.0, 2.0, -3.0))  # THINK said twice, acoustically
    again = evidence(doubled=(-9.0, -8.0, -10.0), phone_gains=gains)  # Whisper's forced text does not prefer it
    found = decide(again, WORDS, REFERENCE, VerifierConfig(), ALIGNED, detector).insertions
    assert [(i.text, i.kind, i.after_word, i.start, i.end) for i in found] == [("THINK", "Repetition", 1, 0.6, 1.2)]
    # with no gap left by the aligner, the span is the repeated word's (it holds both readings)
    no_gap = [(0.0, 0.2, 1), (0.2, 0.9, 4), (0.9, 1.5, 2)]  # SO is the more stretched per phone
    found = decide(again, WORDS, REFERENCE, VerifierConfig(), no_gap, _detector("log_forced", "repeat_gain_before"))
    found = found.insertions
    assert [(i.text, i.kind, i.after_word, i.start, i.end) for i in found] == [("THINK", "Repetition", 1, 0.2, 0.9)]
    neither = evidence(doubled=(-9.0, -8.0, -10.0), phone_gains=replace(gains, repeat=(-6.0, -4.0, -12.0)))
    assert [i.kind for i in decide(neither, WORDS, REFERENCE, VerifierConfig(), ALIGNED, detector).insertions] == [
        "Insertion"]


def test_text_features_and_the_text_detector():
    features = text_features(evidence(forced=(0.9, 1e-6, 0.9), prompted=()), REFERENCE)
    assert features.shape == (len(TEXT_FEATURES),)
    named = dict(zip(TEXT_FEATURES, features))
    assert named["median_log_forced"] == pytest.approx(np.log(0.9)) and named["prompted_share"] == 0.0
    assert named["plain_share"] == 1.0 and named["english_probability"] == pytest.approx(0.9)
    detector = _detector("log_forced", "voiced_s")
    assert detector.other_text(evidence(forced=(0.001,) * 3), REFERENCE) > 0.5 > detector.other_text(evidence(), REFERENCE)


def test_another_text_is_still_decided_by_the_rules():
    detector = _detector("log_forced", "voiced_s")
    unlikely = evidence(forced=(0.001, 0.001, 0.001), heard=())
    verdict = decide(unlikely, WORDS, REFERENCE, VerifierConfig(), ALIGNED, detector)
    assert not verdict.matches_text and {c.status for c in verdict.words} == {OMITTED}


@pytest.mark.parametrize("degree", [1, 2])
def test_scorer_from_a_fitted_pipeline_gives_its_probabilities(degree):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] * x[:, 1] + 0.3 * rng.normal(size=200) > 0).astype(int)
    steps = [PolynomialFeatures(degree, include_bias=False)] if degree > 1 else []
    pipeline = make_pipeline(*steps, StandardScaler(), LogisticRegression()).fit(x, y)
    scorer = LogisticScorer.from_pipeline(pipeline, ("a", "b", "c"), 0.5)
    assert scorer.degree == degree
    assert scorer.probabilities(x) == pytest.approx(pipeline.predict_proba(x)[:, 1], abs=1e-9)


def test_a_model_directory_without_its_own_detectors_uses_the_shipped_ones(tmp_path):
    from orthoepy.fusion.assessor import DEFAULT_MODEL_DIR, _miscue_detector

    shipped = MiscueDetector.load(DEFAULT_MODEL_DIR)
    assert shipped is not None and shipped.word.threshold > 0  # the default model ships trained detectors
    assert _miscue_detector(tmp_path) == shipped
    own = replace(shipped, trained_on="mine")
    own.save(tmp_path)
    assert _miscue_detector(tmp_path).trained_on == "mine"


def test_a_word_both_transcriptions_heard_as_another_word_is_substituted():
    quiet = replace(_detector("log_forced", "voiced_s"), word=scorer(WORD_FEATURES, [0.0] * len(WORD_FEATURES), 0.99))
    sink = heard("SANK", ("S", "AE", "NG", "K"), .25, .55)  # two phones of four differ: another word
    both = evidence(forced=(0.9, 0.005, 0.9), heard=(heard("I", I, 0, .2), sink, heard("SO", SO, 1.2, 1.5)),
                    prompted=(heard("I", I, 0, .2), sink, heard("SO", SO, 1.2, 1.5)))
    verdict = decide(both, WORDS, REFERENCE, VerifierConfig(), ALIGNED, quiet).words
    assert verdict[1].status == SUBSTITUTED and verdict[1].heard == "SANK"
    # only the free transcription heard it, or the forced word is likely enough: read
    alone = replace(both, prompted=(heard("I", I, 0, .2), heard("THINK", THINK, .25, .55), heard("SO", SO, 1.2, 1.5)))
    assert decide(alone, WORDS, REFERENCE, VerifierConfig(), ALIGNED, quiet).words[1].status == READ
    likely = replace(both, forced=(0.9, 0.2, 0.9))
    assert decide(likely, WORDS, REFERENCE, VerifierConfig(), ALIGNED, quiet).words[1].status == READ


ASKED, ASK = ("AE1", "S", "K", "T"), ("AE", "S", "K")


def one_word(**changes) -> Evidence:
    """A single word read alone: Whisper's no-speech test fired and the forced word looks unlikely, as on the
    field recording of "asked" (its prompted transcription heard ASK)."""
    base = Evidence(0.5, "en", 0.6, (heard("YEAH", ("Y", "AE"), 0, .16, p=0.04),), (0.001,), (),
                    no_words=True, speech=((0.0, 0.5),), prompted=(heard("ASK", ASK, 0, .38, p=0.01),))
    return replace(base, **changes)


def _lenient_word_detector() -> MiscueDetector:
    """A word detector that flags no word, whatever its forced probability."""
    return replace(_detector("log_forced", "voiced_s"),
                   word=scorer(WORD_FEATURES, np.zeros(len(WORD_FEATURES)), 0.5, intercept=-10.0))


def test_a_text_of_one_word_is_judged_word_by_word_once_aligned():
    detector, aligned = _lenient_word_detector(), [(0.0, 0.38, 4)]
    read_alone = decide(one_word(), ["ASKED"], [ASKED], VerifierConfig(), aligned, detector)
    assert [c.status for c in read_alone.words] == [READ] and read_alone.matches_text
    # the same evidence on a three-word text keeps the whole-text judgements: no words heard, nothing read
    three = replace(one_word(), forced=(0.001,) * 3)
    assert decide(three, WORDS, REFERENCE, VerifierConfig(), ALIGNED, detector).share_read == 0
    # before the alignment (the first pass, which only cuts chunks) the whole-text rules still decide
    assert decide(one_word(), ["ASKED"], [ASKED], VerifierConfig(), None, detector).share_read == 0


def test_a_short_text_word_heard_as_another_word_is_substituted():
    detector, aligned = _lenient_word_detector(), [(0.0, 0.38, 4)]
    other = one_word(prompted=(heard("ORANGE", ("AO", "R", "AH", "N", "JH"), 0, .4),))
    verdict = decide(other, ["ASKED"], [ASKED], VerifierConfig(), aligned, detector)
    assert [(c.status, c.heard) for c in verdict.words] == [(SUBSTITUTED, "ORANGE")] and not verdict.matches_text
    # ASK for ASKED is one phone away (0.25): the same word, misread; the scores say how badly
    assert decide(one_word(), ["ASKED"], [ASKED], replace(VerifierConfig(), short_text_other_word=0.2), aligned,
                  detector).words[0].status == SUBSTITUTED


def test_a_short_text_word_is_another_word_only_where_the_phone_recogniser_agrees():
    detector, aligned = _lenient_word_detector(), [(0.0, 0.38, 4)]
    yes = heard("YES", ("Y", "EH", "S"), 0, .4)  # Whisper's language model on "asked" read without its final phones
    doubted = one_word(prompted=(yes,), other_word_gains=(-6.5,))  # the recogniser finds ASKED likelier than YES
    verdict = decide(doubted, ["ASKED"], [ASKED], VerifierConfig(), aligned, detector)
    assert [c.status for c in verdict.words] == [READ] and verdict.matches_text
    agreed = replace(doubted, other_word_gains=(4.0,))
    assert decide(agreed, ["ASKED"], [ASKED], VerifierConfig(), aligned, detector).words[0].status == SUBSTITUTED
    unmeasured = replace(doubted, other_word_gains=None)  # evidence gathered before the gains: as before
    assert decide(unmeasured, ["ASKED"], [ASKED], VerifierConfig(), aligned, detector).words[0].status == SUBSTITUTED
    # both transcriptions heard OKAY and the forced word is unlikely (the rule for longer texts): the same veto
    okay = heard("OKAY", ("OW", "K", "EY"), 0, .4)
    both = one_word(heard=(okay,), prompted=(okay,), other_word_gains=(-7.5,))
    assert decide(both, ["ASKED"], [ASKED], VerifierConfig(), aligned, detector).words[0].status == READ
    assert decide(replace(both, other_word_gains=(3.0,)), ["ASKED"], [ASKED], VerifierConfig(), aligned,
                  detector).words[0].status == SUBSTITUTED


def test_an_extra_word_where_the_aligner_left_no_gap_spans_the_stretched_neighbour():
    detector = _detector("log_forced", "doubled_before")
    again = evidence(doubled=(-9.0, 1.5, -10.0))
    touching = [(0.0, 0.2, 1), (0.2, 0.9, 4), (0.9, 1.2, 2)]  # THINK stretched over its repeat, SO right after
    found = decide(again, WORDS, REFERENCE, VerifierConfig(), touching, detector).insertions
    assert [(i.text, i.kind, i.after_word, i.start, i.end) for i in found] == [("THINK", "Repetition", 1, 0.2, 0.9)]


def test_evidence_survives_its_json_record_and_older_records_default():
    from dataclasses import asdict

    full = evidence(other_word_gains=(None, 2.5, None))
    assert Evidence.from_dict(json.loads(json.dumps(asdict(full)))) == full
    older = {k: v for k, v in json.loads(json.dumps(asdict(full))).items()
             if k not in ("prompted", "doubled", "other_word_gains")}
    assert Evidence.from_dict(older) == replace(full, prompted=(), doubled=(), other_word_gains=None)
