import random
from pathlib import Path

import pytest

from orthoepy.encoder.corpus import SentenceLabels, Utterance, WordLabel, load_corpus
from orthoepy.rationalizer.faithfulness import FaithfulnessEvaluator
from orthoepy.rationalizer.records import SENTENCE_ASPECTS, PhoneScore, ScoreSheet, WordScore
from orthoepy.rationalizer.rubric import (PERTURBATION_KINDS, Rubric, RubricWriter, build_prompt, format_score,
                                          perturb, problem_phones, problem_words, sentence_band)
from orthoepy.rationalizer.sheets import sheet_from_labels

PHONES = ("AA", "AE", "AH0", "B", "D", "DH", "EH1", "IY0", "K", "L", "N", "R", "S", "T", "TH", "W", "Z")
VOCAB = ("we", "call", "it", "bear", "think", "the", "weather", "nice", "today", "park", "go", "don't")


def bear_sheet(**sentence) -> ScoreSheet:
    scores = {"accuracy": 7.0, "completeness": 10.0, "fluency": 8.0, "prosodic": 5.0, "total": 6.9, **sentence}
    return ScoreSheet("We call it bear", scores, (
        WordScore("WE", 10, 10, 10, (PhoneScore("W", 2.0), PhoneScore("IY0", 2.0))),
        WordScore("CALL", 9, 10, 9, (PhoneScore("K", 2.0), PhoneScore("AO0", 1.8), PhoneScore("L", 1.9))),
        WordScore("IT", 10, 10, 10, (PhoneScore("IH0", 2.0), PhoneScore("T", 2.0))),
        WordScore("BEAR", 4, 10, 4, (PhoneScore("B", 2.0), PhoneScore("EH0", 0.6, "AE1"), PhoneScore("R", 0.8)),
                  "Mispronunciation"),
    ))


def random_sheet(rng: random.Random) -> ScoreSheet:
    words = []
    for _ in range(rng.randint(1, 10)):
        phones = tuple(PhoneScore(rng.choice(PHONES), _phone_score(rng), rng.choice((None, rng.choice(PHONES))))
                       for _ in range(rng.randint(1, 5)))
        acc = rng.choice((10.0, rng.uniform(0, 10)))
        error = rng.choice(("None", "None", "None", "Mispronunciation", "Omission", "UnexpectedBreak"))
        words.append(WordScore(rng.choice(VOCAB).upper(), acc, rng.uniform(5, 10), min(10.0, acc + rng.uniform(-1, 1)),
                               phones, error))
    sentence = {a: rng.choice((rng.uniform(0, 10), float(rng.randint(0, 10)), 4.0, 6.5, 8.5)) for a in SENTENCE_ASPECTS}
    return ScoreSheet(" ".join(w.text for w in words), sentence, tuple(words))


def _phone_score(rng: random.Random) -> float:
    return rng.choice((2.0, 2.0, 1.0, rng.uniform(0, 2)))


@pytest.mark.parametrize("value, band", [(0, "poor"), (3.9, "poor"), (4.0, "fair"), (6.4, "fair"), (6.5, "good"),
                                         (6.46, "good"), (8.4, "good"), (8.5, "excellent"), (10, "excellent")])
def test_sentence_band_edges_use_the_shown_one_decimal_value(value, band):
    assert sentence_band(Rubric(), value) == band


def test_format_score():
    assert (format_score(7.0), format_score(7.46), format_score(9.96)) == ("7", "7.5", "10")


def test_problem_words_worst_first_capped_and_phones_deduplicated():
    words = tuple(WordScore(f"W{i}", acc, 10, acc, (PhoneScore("T", 1.5),)) for i, acc in enumerate((9, 3, 5, 2, 4)))
    words += (WordScore("OK", 9, 10, 9, (PhoneScore("S", 0.4), PhoneScore("S", 0.9), PhoneScore("AH0", 0.5, "AH1"))),)
    sheet = ScoreSheet("x", dict.fromkeys(SENTENCE_ASPECTS, 5.0), words)
    rubric = Rubric(max_words=3)
    assert [p.text for p in problem_words(rubric, sheet)] == ["w3", "w1", "w4"]
    every = problem_words(rubric, sheet, capped=False)
    assert [p.text for p in every] == ["w3", "w1", "w4", "w2", "ok"]  # "ok" is a problem through its low phones
    ok_phones = [p for p in problem_phones(rubric, sheet, capped=False) if p.word_index == 5]
    assert [(p.phone, p.accuracy, p.heard) for p in ok_phones] == [("S", 0.4, None), ("AH", 0.5, None)]


def test_error_type_alone_makes_a_problem_word_and_omission_names_no_phones():
    sheet = ScoreSheet("a b", dict.fromkeys(SENTENCE_ASPECTS, 9.0), (
        WordScore("A", 9, 10, 9, (PhoneScore("AH0", 2.0),), "UnexpectedBreak"),
        WordScore("B", 0, 10, 0, (PhoneScore("B", 0.0),), "Omission"),
    ))
    problems = problem_words(Rubric(), sheet)
    assert [p.text for p in problems] == ["b", "a"] and problems[0].phones == ()


def test_phone_cap_in_all_keeps_the_worst():
    words = tuple(WordScore(f"W{i}", 3, 10, 3, (PhoneScore("T", 0.1 * i), PhoneScore("S", 0.5))) for i in range(3))
    sheet = ScoreSheet("x", dict.fromkeys(SENTENCE_ASPECTS, 5.0), words)
    named = problem_phones(Rubric(max_phones=3, max_phones_per_word=2), sheet)
    assert [(p.word_index, p.phone) for p in named] == [(0, "T"), (1, "T"), (2, "T")]


def test_prompt_holds_every_score_and_problem_phone_and_is_short():
    sheet = bear_sheet()
    prompt = build_prompt(sheet)
    for aspect in SENTENCE_ASPECTS:
        assert f"{aspect} {format_score(sheet.sentence[aspect])} (" in prompt
    for word in sheet.words:
        assert f"{word.text.lower()} {format_score(word.accuracy)}" in prompt
    assert "bear Mispronunciation /EH/ 0.6 heard /AE/ /R/ 0.8" in prompt
    ten_words = ScoreSheet(" ".join(["WEATHER"] * 10), dict.fromkeys(SENTENCE_ASPECTS, 6.3),
                           tuple(WordScore("WEATHER", 5.5, 8, 6.5, (PhoneScore("W", 0.5, "V"), PhoneScore("EH1", 1.8),
                                                                     PhoneScore("DH", 0.2, "Z"))) for _ in range(10)))
    long_prompt = build_prompt(ten_words)
    assert "stress 8" in long_prompt and "total 6.5" in long_prompt
    assert len(long_prompt.split()) * 1.3 < 250


def test_prompt_without_bands():
    assert "(good)" not in build_prompt(bear_sheet(), with_bands=False)


def test_writer_is_deterministic_and_varied():
    writer = RubricWriter(seed=3)
    sheet = bear_sheet()
    assert writer.write(sheet) == RubricWriter(seed=3).write(sheet)
    variants = {writer.write(sheet, variant=k) for k in range(12)}
    assert len(variants) >= 8
    text = writer.write(sheet, variant=0)
    assert "\"bear\"" in text and "/EH/" in text and "/AE/" in text and 25 <= len(text.split()) <= 110


def test_writer_says_so_when_nothing_is_a_problem():
    sheet = ScoreSheet("we", dict.fromkeys(SENTENCE_ASPECTS, 9.0), (WordScore("WE", 10, 10, 10, (PhoneScore("W", 2.0),)),))
    text = RubricWriter().write(sheet)
    assert "\"" not in text and "/" not in text.replace("/10", "")
    assert FaithfulnessEvaluator().evaluate(text, sheet).is_faithful()


def test_writer_is_faithful_on_random_sheets():
    rng, evaluator = random.Random(11), FaithfulnessEvaluator()
    for i in range(300):
        sheet = random_sheet(rng)
        text = RubricWriter(seed=i).write(sheet, variant=i % 3)
        report = evaluator.evaluate(text, sheet)
        assert report.is_faithful(), (text, report.contradictions)


@pytest.mark.parametrize("kind", PERTURBATION_KINDS)
def test_every_perturbation_kind_is_caught(kind):
    rng, evaluator, rubric = random.Random(5), FaithfulnessEvaluator(), Rubric()
    applied = 0
    for i in range(120):
        sheet = random_sheet(rng)
        text = RubricWriter(rubric, seed=i, number_rate=0.6).write(sheet)
        try:
            bad, got = perturb(text, sheet, rubric, rng, kind=kind)
        except ValueError:
            continue
        applied += 1
        report = evaluator.evaluate(bad, sheet)
        assert got == kind and not report.is_faithful() and report.contradictions, (text, bad)
    assert applied >= 20


def test_random_perturbation_reports_its_kind():
    sheet = bear_sheet()
    bad, kind = perturb(RubricWriter().write(sheet), sheet, Rubric(), random.Random(0))
    assert kind in PERTURBATION_KINDS and not FaithfulnessEvaluator().evaluate(bad, sheet).is_faithful()


def test_perturbation_that_cannot_apply_raises():
    sheet = ScoreSheet("we", dict.fromkeys(SENTENCE_ASPECTS, 9.0), (WordScore("WE", 10, 10, 10, (PhoneScore("W", 2.0),)),))
    with pytest.raises(ValueError):
        perturb(RubricWriter().write(sheet), sheet, Rubric(), random.Random(0), kind="dropped_word")


def fake_utterance(word_aspects: bool) -> Utterance:
    def word(text, phones, accs, acc):
        return WordLabel(text, phones, accs, *((acc, 10.0, acc) if word_aspects else (None, None, None)))
    return Utterance("000010001", "0001", "train" if word_aspects else "test", Path("x.wav"), "WE BEAR",
                     (word("WE", ("W", "IY0"), (2.0, 2.0), 10.0), word("BEAR", ("B", "EH0", "R"), (2.0, 0.0, 0.5), 4.0)),
                     SentenceLabels(6.0, 10.0, 7.0, 7.0, 6.0))


def test_sheet_from_labels_uses_word_labels_when_present():
    sheet = sheet_from_labels(fake_utterance(word_aspects=True))
    bear = sheet.words[1]
    assert (bear.accuracy, bear.stress, bear.total, bear.error_type) == (4.0, 10.0, 4.0, "Mispronunciation")
    assert sheet.sentence["fluency"] == 7.0 and [p.symbol for p in bear.phones] == ["B", "EH0", "R"]


def test_sheet_from_labels_derives_word_scores_on_test_split():
    sheet = sheet_from_labels(fake_utterance(word_aspects=False))
    bear = sheet.words[1]
    assert bear.accuracy == pytest.approx(5 * 2.5 / 3) and bear.total == bear.accuracy and bear.stress == 10.0
    assert sheet.words[0].error_type == "None" and bear.error_type == "Mispronunciation"


def test_sheet_from_labels_noise_stays_in_range_and_is_seeded():
    utt = fake_utterance(word_aspects=True)
    a = sheet_from_labels(utt, noise_std=3.0, rng=random.Random(1))
    assert a == sheet_from_labels(utt, noise_std=3.0, rng=random.Random(1))
    assert a != sheet_from_labels(utt)
    assert all(0 <= v <= 10 for v in a.sentence.values())
    assert all(0 <= p.accuracy <= 2 for w in a.words for p in w.phones)


def test_sheet_from_labels_refuses_missing_sentence_label():
    utt = fake_utterance(word_aspects=True)
    broken = Utterance(utt.utt_id, utt.speaker, utt.split, utt.audio_path, utt.text, utt.words,
                       SentenceLabels(6.0, None, 7.0, 7.0, 6.0))
    with pytest.raises(ValueError, match="completeness"):
        sheet_from_labels(broken)


def test_real_fixture_sheets_and_rationales(fixture_dir):
    evaluator = FaithfulnessEvaluator()
    for utt in load_corpus(fixture_dir):
        sheet = sheet_from_labels(utt)
        assert len(sheet.words) == len(utt.words)
        assert all(len(w.phones) == len(lab.phones) for w, lab in zip(sheet.words, utt.words))
        assert evaluator.evaluate(RubricWriter(seed=1).write(sheet), sheet).is_faithful()


def test_completeness_comment_counts_the_words_left_out():
    omitted = WordScore("BEAR", 0, 10, 0, (PhoneScore("B", 0.0), PhoneScore("EH0", 0.0), PhoneScore("R", 0.0)),
                        "Omission")
    sheet = ScoreSheet("We call it bear", {**bear_sheet().sentence, "completeness": 8.6},
                       bear_sheet().words[:3] + (omitted,))
    text = RubricWriter(comment_rate=1.0).write(sheet)
    assert "3 of 4 words were read" in text and "every word was read" not in text
    assert FaithfulnessEvaluator().evaluate(text, sheet).is_faithful()
    complete = RubricWriter(comment_rate=1.0).write(bear_sheet(completeness=10.0))
    assert "every word was read" in complete


def test_a_claim_that_every_word_was_read_is_false_when_one_was_left_out():
    omitted = WordScore("BEAR", 0, 10, 0, (PhoneScore("B", 0.0), PhoneScore("EH0", 0.0), PhoneScore("R", 0.0)),
                        "Omission")
    sheet = ScoreSheet("We call it bear", {**bear_sheet().sentence, "completeness": 8.6},
                       bear_sheet().words[:3] + (omitted,))
    honest = RubricWriter().write(sheet)
    claimed = honest.replace("Completeness is excellent", "Completeness is excellent: every word was read", 1)
    report = FaithfulnessEvaluator().evaluate(claimed + " Every word was read.", sheet)
    assert report.false_claims and not report.is_faithful()
    assert not FaithfulnessEvaluator().evaluate("Every word was read.", bear_sheet()).false_claims


@pytest.mark.parametrize("prosodic", [3.0, 7.5, 9.5])
def test_a_monotone_reading_is_said_once_in_the_prosody_judgement(prosodic):
    from dataclasses import replace

    from orthoepy.rationalizer.rubric import problem_words

    plain = bear_sheet(prosodic=prosodic)
    sheet = replace(plain, words=tuple(w if w.error_type != "None" else replace(w, error_type="Monotone")
                                       for w in plain.words))
    assert [w.text for w in problem_words(Rubric(), sheet)] == ["bear"]  # Monotone alone names no word
    for k in range(6):
        text = RubricWriter(seed=k).write(sheet, variant=k)
        assert text.count("pitch stayed flat") == 1
        report = FaithfulnessEvaluator().evaluate(text, sheet)
        assert report.is_faithful(), (text, report.contradictions)
        assert "pitch stayed flat" not in RubricWriter(seed=k).write(plain, variant=k)


def test_words_read_in_swapped_order_are_named_as_such():
    from dataclasses import replace

    plain = bear_sheet(prosodic=8.0)
    words = list(plain.words)
    words[1], words[2] = (replace(w, error_type="Reversal") for w in words[1:3])  # CALL IT read as IT CALL
    sheet = replace(plain, words=tuple(words))
    for k in range(4):
        text = RubricWriter(seed=k).write(sheet, variant=k)
        assert "\"call\"" in text and "\"it\"" in text and ("out of order" in text or "swapped places" in text)
        report = FaithfulnessEvaluator().evaluate(text, sheet)
        assert report.is_faithful(), (text, report.contradictions)


def test_a_word_read_as_another_word_is_said_so_not_sound_by_sound():
    from dataclasses import replace

    sheet = bear_sheet()
    milk = replace(sheet.words[3], heard_word="MILK")
    sheet = replace(sheet, words=sheet.words[:3] + (milk,))
    writer, evaluator = RubricWriter(seed=0), FaithfulnessEvaluator()
    for variant in range(4):
        text = writer.write(sheet, variant=variant)
        assert "milk" in text and "/EH/" not in text and "/R/" not in text, text
        report = evaluator.evaluate(text, sheet)
        assert report.is_faithful(), report.contradictions
        assert report.extra_words == ()  # the heard word is not quoted: it is not a word of the text
    # a sound-by-sound text is no longer what the sheet asks for
    assert not evaluator.evaluate('"bear" needs work: /EH/ sounded like /AE/.', sheet).is_faithful()


def test_no_problem_word_but_a_fair_sound_is_not_all_clear():
    scores = {"accuracy": 8.0, "completeness": 10.0, "fluency": 8.0, "prosodic": 7.0, "total": 7.5}
    fair = ScoreSheet("We call", scores, (WordScore("WE", 9, 10, 9, (PhoneScore("W", 1.9), PhoneScore("IY0", 1.15))),
                                          WordScore("CALL", 9, 10, 9, (PhoneScore("K", 2.0),))))
    clear = ScoreSheet("We call", scores, (WordScore("WE", 9, 10, 9, (PhoneScore("W", 1.9),)),
                                           WordScore("CALL", 9, 10, 9, (PhoneScore("K", 2.0),))))
    for variant in range(4):
        said = RubricWriter().write(fair, variant=variant)
        assert "fair" in said.split(".")[-2] and "clear" not in said, said  # the last sentence, about the sounds
        assert FaithfulnessEvaluator().evaluate(said, fair).is_faithful()
        assert "fair" not in RubricWriter().write(clear, variant=variant).split(".")[-2]


def test_a_one_word_reading_gets_no_reasons_about_pauses_or_a_list_below():
    one = ScoreSheet("Yes", {"accuracy": 8.0, "completeness": 10.0, "fluency": 3.0, "prosodic": 3.5, "total": 6.0},
                     (WordScore("YES", 9, 10, 9, (PhoneScore("Y", 1.8),)),))
    for variant in range(4):
        said = RubricWriter(comment_rate=1.0).write(one, variant=variant)
        assert "pauses" not in said and "below" not in said and "a text this short" in said, said


def test_plain_phrasing_is_one_fixed_wording_without_numbers_and_faithful():
    sheet = bear_sheet()
    texts = {RubricWriter(seed=s, phrasing="plain").write(sheet, variant=k) for s in range(3) for k in range(4)}
    assert len(texts) == 1
    text = texts.pop()
    assert "/10" not in text and "out of 10" not in text
    assert "\"bear\"" in text and "/EH/" in text and "/AE/" in text
    varied = [len(RubricWriter(seed=0).write(sheet, variant=k).split()) for k in range(20)]
    assert len(text.split()) <= min(varied)
    rng, evaluator = random.Random(5), FaithfulnessEvaluator()
    for i in range(200):
        random_case = random_sheet(rng)
        report = evaluator.evaluate(RubricWriter(seed=i, phrasing="plain").write(random_case), random_case)
        assert report.is_faithful(), report.contradictions


def test_plain_phrasing_keeps_the_reasons_that_carry_information():
    omitted = WordScore("BEAR", 0, 10, 0, (PhoneScore("B", 0.0), PhoneScore("EH0", 0.0), PhoneScore("R", 0.0)),
                        "Omission")
    sheet = ScoreSheet("We call it bear", {**bear_sheet().sentence, "completeness": 8.6},
                       bear_sheet().words[:3] + (omitted,))
    assert "3 of 4 words were read" in RubricWriter(phrasing="plain").write(sheet)
    assert "every word was read" not in RubricWriter(phrasing="plain").write(bear_sheet(completeness=10.0))
    with pytest.raises(ValueError, match="phrasing"):
        RubricWriter(phrasing="terse")


def test_a_word_count_must_be_the_texts():
    """"N of M words were read": M the text's words, N those not left out (as the rubric writes it); a model's
    invented count ("3 of 5" for a four-word text) is a false claim."""
    from orthoepy.rationalizer.faithfulness import false_claims

    omitted = WordScore("BEAR", 0, 10, 0, (PhoneScore("B", 0.0), PhoneScore("EH0", 0.0), PhoneScore("R", 0.0)),
                        "Omission")
    sheet = ScoreSheet("We call it bear", {**bear_sheet().sentence, "completeness": 7.5},
                       bear_sheet().words[:3] + (omitted,))
    assert false_claims("Completeness is good: 3 of 4 words were read.", sheet) == ()
    assert false_claims("Completeness is good: 3 of 5 words were read.", sheet)
    assert false_claims("Completeness is good: 4 of 4 words were read.", sheet)
    assert not FaithfulnessEvaluator().evaluate(RubricWriter(comment_rate=1.0).write(sheet).replace("3 of 4", "5 of 7"),
                                                sheet).is_faithful()


def test_the_word_count_is_said_only_where_it_agrees_with_completeness():
    """A recording of another text has completeness 0 though only some words are Omissions: "3 of 4 words were
    read" would contradict the score shown beside it."""
    omitted = WordScore("BEAR", 0, 10, 0, (PhoneScore("B", 0.0), PhoneScore("EH0", 0.0), PhoneScore("R", 0.0)),
                        "Omission")
    words = bear_sheet().words[:3] + (omitted,)
    agrees = ScoreSheet("We call it bear", {**bear_sheet().sentence, "completeness": 7.5}, words)
    mismatch = ScoreSheet("We call it bear", {**bear_sheet().sentence, "completeness": 0.0}, words)
    assert "3 of 4 words were read" in RubricWriter(comment_rate=1.0).write(agrees)
    text = RubricWriter(comment_rate=1.0).write(mismatch)
    assert "words were read" not in text and "parts of the text were not clearly read" in text
    assert FaithfulnessEvaluator().evaluate(text, mismatch).is_faithful()
