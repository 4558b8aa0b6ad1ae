"""The evaluator on hand-written rationales, the kind an LLM might produce, not on the writer's templates."""
import pytest

from orthoepy.rationalizer.faithfulness import FaithfulnessEvaluator, FaithfulnessThresholds, summarize
from orthoepy.rationalizer.records import SENTENCE_ASPECTS, PhoneScore, ScoreSheet, WordScore
from orthoepy.rationalizer.rubric import Rubric

from test_rubric import bear_sheet

EVALUATOR = FaithfulnessEvaluator()

FAITHFUL = (
    "Overall, your pronunciation accuracy is solid, though your intonation is only average. You read every word, "
    "so completeness is perfect, and your fluency is strong. Your total score of 6.9 out of 10 is good. "
    "You said 'we' and 'call' well, but 'bear' was unclear: the /EH/ came out as /AE/, so open your jaw a little "
    "less. The /R/ at the end was weak too; curl your tongue back."
)


def test_faithful_free_text_passes_every_granularity():
    report = EVALUATOR.evaluate(FAITHFUL, bear_sheet())
    assert report.is_faithful(), report.contradictions
    assert {a: c.said for a, c in report.sentence.items()} == {
        "accuracy": {"good"}, "completeness": {"excellent"}, "fluency": {"good"}, "prosodic": {"fair"},
        "total": {"good"}}
    assert report.words.named == ("bear",)  # "we" and "call" are praised, not blamed
    assert report.phones.precision == report.phones.recall == 1.0
    assert [(n.target, n.agrees) for n in report.numbers] == [("total", True)]
    assert [(h.claim, h.agrees) for h in report.heard] == [("/AE/", True)]


def test_other_order_synonyms_and_the_word_form():
    text = ("The word bear needs work: you said /AE/ instead of /EH/, and the /R/ was weak. "
            "Rhythm is okay. Fluency is good (8/10) and accuracy is decent. Completeness: excellent. "
            "In total, a good result.")
    report = EVALUATOR.evaluate(text, bear_sheet())
    assert report.is_faithful(), report.contradictions
    assert report.sentence["prosodic"].said == {"fair"} and report.sentence["accuracy"].said == {"fair", "good"}


def test_contradicting_bands_are_caught_per_aspect():
    text = ("Accuracy is excellent but fluency is poor. Completeness is excellent. Prosody is moderate. "
            "Overall it is good. \"bear\": /EH/ sounded like /AE/; /R/ was unclear.")
    report = EVALUATOR.evaluate(text, bear_sheet())
    assert [a for a, c in report.sentence.items() if c.consistent is False] == ["accuracy", "fluency"]
    assert report.sentence_consistency == pytest.approx(3 / 5) and not report.is_faithful()
    assert any("accuracy is called excellent" in c for c in report.contradictions)


def test_blaming_the_wrong_word_and_phone_and_an_absent_word():
    text = ("Accuracy is good. Completeness is excellent. Fluency is good. Prosody is fair. Overall it is good. "
            "\"call\" needs work: /K/ was off. \"river\" was unclear.")
    report = EVALUATOR.evaluate(text, bear_sheet())
    assert report.words.named == ("call", "river") and report.words.precision == 0.0 and report.words.recall == 0.0
    assert report.phones.false_positives == 1 and report.phones.false_negatives == 2
    assert 'blames "river", which is not in the text' in report.contradictions
    assert 'blames "call", which the scores do not mark low' in report.contradictions


def test_wrong_and_unattached_numbers():
    text = ("Accuracy is good at 9 out of 10. Completeness is excellent (10/10). Fluency is good. Prosody is fair. "
            "Overall it is good. You got 3/10. \"bear\" (4/10): /EH/ sounded like /AE/; /R/ was unclear.")
    report = EVALUATOR.evaluate(text, bear_sheet())
    assert [(n.claim, n.target, n.agrees) for n in report.numbers] == [
        ("9/10", "accuracy", False), ("10/10", "completeness", True), ("3/10", None, False), ("4/10", "bear", True)]
    assert report.number_agreement == 0.5


def test_heard_phone_must_match_the_sheet():
    text = "\"bear\": /EH/ sounded like /IY/."
    report = EVALUATOR.evaluate(text, bear_sheet())
    assert [(h.claim, h.agrees) for h in report.heard] == [("/IY/", False)]
    assert report.phones.named == ("bear /EH/",)  # the heard phone is not a blamed phone


def test_empty_text_judges_nothing():
    report = EVALUATOR.evaluate("", bear_sheet())
    assert report.sentence_coverage == 0.0 and report.words.recall == 0.0 and not report.is_faithful()
    assert report.sentence_consistency == 1.0 and report.number_agreement == 1.0  # nothing said, nothing wrong


def test_no_problems_and_none_named_is_perfect():
    sheet = ScoreSheet("we", dict.fromkeys(SENTENCE_ASPECTS, 9.0), (WordScore("WE", 10, 10, 10, (PhoneScore("W", 2.0),)),))
    text = "Accuracy, completeness, fluency and prosody are all excellent, and the overall score is very good."
    report = EVALUATOR.evaluate(text, sheet)
    assert report.is_faithful(), report.contradictions
    assert report.words.f1 == report.phones.f1 == 1.0


def test_shared_band_over_several_aspects_and_overall_as_discourse_word():
    sheet = bear_sheet(accuracy=7.0, fluency=7.5, total=3.0)
    report = EVALUATOR.evaluate("Overall, accuracy and fluency are good.", sheet)
    assert report.sentence["accuracy"].consistent and report.sentence["fluency"].consistent
    assert not report.sentence["total"].mentioned


def test_vague_judgement_spanning_bands_is_inconsistent():
    report = EVALUATOR.evaluate("Fluency ranges from poor to excellent.", bear_sheet())
    assert report.sentence["fluency"].consistent is False


def test_band_tolerance_accepts_a_neighbouring_band_at_the_edge():
    sheet = bear_sheet(fluency=6.6)
    strict = FaithfulnessEvaluator(Rubric()).evaluate("Fluency is fair.", sheet)
    lenient = FaithfulnessEvaluator(Rubric(band_tolerance=0.3)).evaluate("Fluency is fair.", sheet)
    assert strict.sentence["fluency"].consistent is False and lenient.sentence["fluency"].consistent is True


def test_thresholds_can_relax_recall():
    text = ("Accuracy is good. Completeness is excellent. Fluency is good. Prosody is fair. Overall it is good. "
            "\"bear\": /EH/ sounded like /AE/.")
    report = EVALUATOR.evaluate(text, bear_sheet())
    assert not report.is_faithful() and report.phones.recall == 0.5
    assert report.is_faithful(FaithfulnessThresholds(phone_recall=0.5))


def test_summarize_micro_averages_per_granularity():
    sheet = bear_sheet()
    reports = [EVALUATOR.evaluate(FAITHFUL, sheet), EVALUATOR.evaluate("\"call\" needs work. Fluency is poor.", sheet)]
    summary = summarize(reports)
    assert summary["n"] == 2
    assert summary["sentence"]["consistency"] == pytest.approx(5 / 6)
    assert summary["sentence"]["coverage"] == pytest.approx(6 / 10)
    assert summary["word"]["precision"] == pytest.approx(1 / 2) and summary["word"]["recall"] == pytest.approx(1 / 2)
    assert summary["phone"]["recall"] == pytest.approx(2 / 4)
    assert summary["faithful_fraction"] == 0.5
    assert summarize([])["word"]["agreement"] == 1.0


def test_markdown_bullets_and_example_words():
    text = ("- **Accuracy**: good (7/10)\n- **Completeness**: excellent\n- **Fluency**: good, 8 out of 10\n"
            "- **Prosody**: needs work\n- **Overall**: good (6.9/10)\n"
            "Work on \"bear\": the \"e\" sound /EH/ sounded like /AE/ (as in \"cat\"); the /R/ was weak.")
    report = EVALUATOR.evaluate(text, bear_sheet())
    assert report.is_faithful(), report.contradictions
    assert report.words.named == ("bear",) and report.sentence["prosodic"].said == {"poor", "fair"}


def test_words_named_outside_the_text_are_counted_praised_or_blamed():
    text = ("Accuracy is good. \"river\" was unclear, but you said 'bridge' well and 'we' too. "
            "In \"bear\", /EH/ sounded like /AE/.")
    report = EVALUATOR.evaluate(text, bear_sheet())
    assert report.named_words == 4 and report.extra_words == ("river", "bridge")
    assert EVALUATOR.evaluate(FAITHFUL, bear_sheet()).extra_words == ()
    summary = summarize([report, EVALUATOR.evaluate(FAITHFUL, bear_sheet())])
    assert summary["extra_words"] == {"ratio": pytest.approx(2 / 7), "texts_with_extra": 0.5}


def test_the_worst_word_and_the_lowest_phone_under_1_must_be_named():
    faithful = EVALUATOR.evaluate(FAITHFUL, bear_sheet())  # blames BEAR and its /EH/ (0.6, the lowest)
    assert faithful.names_worst_word is True and faithful.names_worst_phone is True
    only_r = EVALUATOR.evaluate("\"bear\" was unclear: the /R/ was weak.", bear_sheet())
    assert only_r.names_worst_word is True and only_r.names_worst_phone is False  # /EH/ (0.6) is lower than /R/
    other = EVALUATOR.evaluate("\"call\" was a little off.", bear_sheet())
    assert other.names_worst_word is False and other.names_worst_phone is False
    clean = ScoreSheet("We", bear_sheet().sentence, (WordScore("WE", 10, 10, 10, (PhoneScore("W", 2.0),)),))
    assert EVALUATOR.evaluate("Well read.", clean).names_worst_word is None
    assert EVALUATOR.evaluate("Well read.", clean).names_worst_phone is None
    assert summarize([faithful, only_r, other])["worst"] == {"word_named": {"share": pytest.approx(2 / 3), "n": 3},
                                                             "phone_named": {"share": pytest.approx(1 / 3), "n": 3}}


def test_the_words_and_sounds_is_no_word_mention():
    text = 'Work on the words and sounds: "bear" needs work, /EH/ sounded like /AE/. The word bear again.'
    report = EVALUATOR.evaluate(text, bear_sheet())
    assert report.extra_words == () and report.words.named == ("bear",)


def test_a_repeated_or_garbled_statement_is_not_faithful():
    base = FAITHFUL
    assert EVALUATOR.evaluate(base, bear_sheet()).is_faithful()
    twice = base + " The /R/ at the end was weak too; curl your tongue back."
    report = EVALUATOR.evaluate(twice, bear_sheet())
    assert not report.is_faithful() and any("repeats the sentence" in c for c in report.false_claims)
    garbled = base.replace("but 'bear' was unclear", 'but in "bear", "bear" was unclear')
    report = EVALUATOR.evaluate(garbled, bear_sheet())
    assert any("inside its own clause" in c for c in report.false_claims)
    # two words with the same advice are two statements, not a repetition
    from orthoepy.rationalizer.faithfulness import repeated_statements
    assert repeated_statements('"tea" was unclear; say it slowly. "cup" was unclear; say it slowly.') == ()
    assert repeated_statements('"Cup" was unclear; say it slowly. "cup" was  unclear; say it slowly.')
    # another word's clause opened inside a word's clause of sounds (the v2.1 adapter on the field case coffee.flac)
    mixed = repeated_statements('Overall, the score is good. In "tea", "cup" was unclear; say it slowly, then at speed.')
    assert mixed and 'inside the clause of "tea"' in mixed[0]
    assert repeated_statements('In "tea" (4.2), /T/ sounded like /F/.') == ()
    assert repeated_statements('In "tea" (4.2), "tea" was unclear.')
    assert repeated_statements('In "never", as a word, "pen" was unclear; say it slowly.')
    assert repeated_statements('In "we", /IY/ sounded like /EH/. "were" was unclear.') == ()
    assert repeated_statements('In "the", /DH/ sounded like /Z/ (as in "then", not as in "zen").') == ()
