"""Reading verification: the decision logic on crafted evidence, and the whole stage on the field recordings."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from orthoepy.encoder.verification import (
    OMITTED, READ, SUBSTITUTED, Chunk, HeardWord, VerifierConfig, WordCheck, align_words, check_words,
    chunks_at_pauses, phone_distance, spare_cuts, summarise,
)
from orthoepy.fusion.diagnosis import gated_sentence, word_error_type

FIELD_DIR = Path(__file__).resolve().parents[2] / "shared" / "field"
# the decision logic is tested at fixed thresholds, not at the shipped ones (chosen by cross-validation)
CONFIG = VerifierConfig(read_probability=0.2, substitution_probability=0.8, insertion_probability=0.5,
                        mismatch_forced=0.0, squeezed_s=0.0, squeezed_forced=0.0)
THINK, SINK, SO, I = ("TH", "IH1", "NG", "K"), ("S", "IH", "NG", "K"), ("S", "OW1"), ("AY1",)
FOOTBALL, COFFEE = ("F", "UH1", "T", "B", "AO2", "L"), ("K", "AA1", "F", "IY0")


def heard(text, phones, start, end, p=0.9):
    return HeardWord(text, start, end, p, tuple(x.rstrip("012") for x in phones))


def test_phone_distance_ignores_stress_and_counts_edits():
    assert phone_distance(THINK, ("TH", "IH0", "NG", "K")) == 0.0
    assert phone_distance(THINK, SINK) == pytest.approx(0.25)
    assert phone_distance(SO, COFFEE) == 1.0


def test_align_words_finds_deletion_insertion_and_substitution():
    assert align_words([I, THINK, SO], [I, SO]) == [(0, 0), (1, None), (2, 1)]
    assert align_words([I, SO], [I, I, SO]) in ([(0, 0), (None, 1), (1, 2)], [(None, 0), (0, 1), (1, 2)])
    assert align_words([I, THINK, SO], [I, COFFEE, SO]) == [(0, 0), (1, 1), (2, 2)]


def test_check_words_statuses():
    reference = [I, THINK, FOOTBALL, SO]
    words = [heard("I", I, 0.0, 0.2), heard("SINK", SINK, 0.2, 0.5), heard("SO", SO, 0.9, 1.2)]
    checks, insertions = check_words(reference, words, [0.9, 0.9, 0.0, 0.9], CONFIG)
    assert [c.status for c in checks] == [READ, READ, OMITTED, READ]  # SINK is THINK misread: same word
    assert checks[2].heard is None and not insertions
    checks, _ = check_words([I, THINK, SO], [heard("I", I, 0, .2), heard("COFFEE", COFFEE, .2, .6), heard("SO", SO, .6, 1)],
                            [0.9, 0.0, 0.9], CONFIG)
    assert checks[1].status == SUBSTITUTED and checks[1].heard == "COFFEE"
    checks, _ = check_words([I, THINK, SO], [heard("I", I, 0, .2), heard("COFFEE", COFFEE, .2, .6), heard("SO", SO, .6, 1)],
                            [0.9, 0.5, 0.9], CONFIG)
    assert checks[1].status == READ  # the text forced through the decoder is likely enough


def test_an_unsure_heard_word_does_not_make_a_substitution():
    words = [heard("COFFEE", COFFEE, 0, .4, p=CONFIG.substitution_probability - 0.1)]
    (check,), _ = check_words([THINK], words, [0.0], CONFIG)
    assert check.status == READ


def test_insertions_and_repetitions_are_reported_with_their_place():
    reference = [I, THINK, SO]
    words = [heard("I", I, 0, .2), heard("THINK", THINK, .2, .5), heard("THINK", THINK, .5, .8),
             heard("COFFEE", COFFEE, .8, 1.1), heard("SO", SO, 1.1, 1.4)]
    checks, insertions = check_words(reference, words, [0.9] * 3, CONFIG)
    assert [c.status for c in checks] == [READ] * 3
    assert [(i.text, i.kind, i.after_word) for i in insertions] == [("THINK", "Repetition", 1), ("COFFEE", "Insertion", 1)]
    _, quiet = check_words(reference, words[:3] + [heard("COFFEE", COFFEE, .8, 1.1, p=0.1)] + words[4:], [0.9] * 3, CONFIG)
    assert [i.text for i in quiet] == ["THINK"]


def read(start, end):
    return WordCheck(READ, "W", 0.9, start, end)


def test_chunks_cut_at_a_silence_on_a_word_boundary_only():
    checks = [read(0.0, 0.4), read(0.4, 0.8), read(2.4, 2.8), WordCheck(OMITTED, None, 0.0, None, None)]
    chunks = chunks_at_pauses(checks, [(0.9, 2.3)], 3.0, CONFIG)
    assert chunks == [Chunk(0.0, 1.6, 0, 2), Chunk(1.6, 3.0, 2, 4)]
    long_word = [read(0.0, 1.2), read(1.2, 1.6)] + checks[2:]
    assert chunks_at_pauses(long_word, [(0.2, 0.45)], 3.0, CONFIG) == [Chunk(0.0, 3.0, 0, 4)]  # inside a word
    assert spare_cuts(checks) == [(1, 0.4), (2, 1.6)]


def test_long_chunks_are_split_at_the_widest_gap():
    checks = [read(2.0 * k, 2.0 * k + 1.5) for k in range(10)]
    checks[4] = read(8.0, 9.0)  # the widest gap: 9.0 -> 10.0
    chunks = chunks_at_pauses(checks, [], 20.0, CONFIG)
    assert all(c.end - c.start <= CONFIG.max_chunk_s for c in chunks)
    assert any(c.end == pytest.approx(9.5) and c.end_word == 5 for c in chunks)  # the first cut
    assert [c.first_word for c in chunks] == sorted({c.first_word for c in chunks}) and chunks[-1].end_word == 10


def test_summary_flags_other_languages_and_mismatched_texts():
    checks = [WordCheck(READ, "W", 0.9, 0, 1)] * 4
    share, matches, warnings = summarise(checks, [], ["A"] * 4, "fr", 0.95, CONFIG)
    assert share == 0.0 and not matches and "English" in warnings[0]
    half = [WordCheck(SUBSTITUTED, "X", 0.0, 0, 1)] * 3 + checks[:1]
    share, matches, warnings = summarise(half, [], ["A", "B", "C", "D"], "en", 0.9, CONFIG)
    assert share == 0.25 and not matches and "does not match" in warnings[0]


def test_gated_sentence_follows_the_share_read():
    sentence = {"accuracy": 8.0, "completeness": 6.8, "fluency": 8.0, "prosodic": 7.0, "total": 8.0}
    assert gated_sentence(sentence, 1.0)["completeness"] == 10.0
    half = gated_sentence(sentence, 0.5)
    assert half == {"accuracy": 4.0, "completeness": 5.0, "fluency": 4.0, "prosodic": 3.5, "total": 4.0}


def test_breaks_at_punctuation_are_not_unexpected():
    assert word_error_type([2.0, 2.0], 1.0, 9.0, 0.8) == "UnexpectedBreak"
    assert word_error_type([2.0, 2.0], 1.0, 9.0, 0.8, punctuation_before=".") == "None"
    assert word_error_type([2.0, 2.0], 1.0, 9.0, 0.0, punctuation_before=".", expect_break_before=True) == "MissingBreak"


# ------------------------------------------------------------------------------ long texts through Whisper's decoder

class FakeDecoder:
    """Whisper's `model.align` as CTranslate2 has it, 448 decoder positions, each forced token p = 0.5."""

    def __init__(self):
        self.calls: list[tuple[list[int], list[int]]] = []

    def align(self, encoded, prompt, tokens, frames):
        (text,) = tokens
        if len(prompt) + len(text) + 1 > 448:  # + end of text
            raise RuntimeError(f"No position encodings are defined for positions >= 448, but got position "
                               f"{len(prompt) + len(text)}")
        self.calls.append((list(prompt), list(text)))
        return [SimpleNamespace(text_token_probs=[0.5] * len(text))]


def fake_verifier(words: list[str]):
    """A ReadingVerifier without models: each word one token (id 1000 + its index), the FakeDecoder."""
    from orthoepy.encoder.verification import ReadingVerifier

    verifier = object.__new__(ReadingVerifier)
    verifier._model = SimpleNamespace(model=FakeDecoder())
    verifier._tokenizer = SimpleNamespace(sot_sequence=(50258, 50259, 50359), no_timestamps=50363, sot_prev=50361)
    verifier._vocabulary = {"\u0120" + w.capitalize(): 1000 + k for k, w in enumerate(words)}
    verifier._vocabulary.update({"\u0120" + w.lower(): 1000 + k for k, w in enumerate(words)})
    return verifier


def test_forced_pieces_keep_every_word_in_order_under_the_limit():
    from orthoepy.encoder.verification import forced_pieces

    tokens = [[k] * (1 + k % 3) for k in range(50)]  # 1-3 tokens a word
    pieces = forced_pieces(tokens, 10)
    assert [w for piece in pieces for w in piece] == tokens
    assert all(sum(map(len, piece)) <= 10 for piece in pieces)
    assert all(sum(map(len, a)) + len(b[0]) > 10 for a, b in zip(pieces, pieces[1:]))  # each piece filled greedily
    assert forced_pieces([[1] * 12, [2]], 10) == [[[1] * 10], [[2]]]  # a word over the limit is cut
    assert forced_pieces([], 10) == []


def test_a_text_longer_than_the_decoder_is_forced_in_pieces_after_the_text_before():
    words = [f"w{k}" for k in range(600)]
    verifier = fake_verifier(words)
    forced = verifier._forced([(None, 300)], [(0.0, 3.0)], words, [("W",)] * 600, [])
    assert forced == [0.5] * 600
    calls = verifier._model.model.calls
    assert [len(text) for _, text in calls] == [200, 200, 200]
    assert calls[0][0] == verifier._prompt()
    assert calls[1][0] == [50361] + calls[0][1] + verifier._prompt()  # <|startofprev|> + the piece before
    assert calls[2][0] == [50361] + calls[1][1] + verifier._prompt()
    assert [t for _, text in calls for t in text] == [1000 + k for k in range(600)]


def test_a_text_of_one_piece_is_forced_in_one_call_as_before():
    words = [f"w{k}" for k in range(200)]
    verifier = fake_verifier(words)
    verifier._forced([(None, 300)], [(0.0, 3.0)], words, [("W",)] * 200, [])
    assert verifier._model.model.calls == [(verifier._prompt(), [1000 + k for k in range(200)])]


# ------------------------------------------------------------------------------ the whole stage on field recordings

@pytest.fixture(scope="module")
def field_cases() -> dict[tuple[str, str], dict]:
    if not (FIELD_DIR / "cases.json").is_file():
        pytest.skip(f"field recordings not found at {FIELD_DIR}")
    return {(c["audio"], c["text"]): c for c in json.loads((FIELD_DIR / "cases.json").read_text())}


@pytest.fixture(scope="module")
def assessor():
    from orthoepy.fusion.assessor import Assessor

    return Assessor.from_pretrained(rationale="none")


def assess(assessor, audio, text):
    return assessor.assess(str(FIELD_DIR / audio), text)


def test_noise_is_refused(assessor, field_cases):
    from orthoepy.encoder.verification import NoSpeechError

    with pytest.raises(NoSpeechError, match="no speech"):
        assess(assessor, "noise.flac", "I would like a cup of coffee please")


def test_other_language_and_other_text_get_low_totals_and_a_warning(assessor, field_cases):
    french = assess(assessor, "french_speech.flac", "Je voudrais une tasse de café s'il vous plaît")
    assert french.sentence["total"] <= 3 and "English" in french.verification["warnings"][0]
    other = assess(assessor, "coffee.flac", "My brother plays football every weekend")
    assert other.sentence["total"] <= 3 and not other.verification["matches_text"]
    assert all(w.error_type != "None" for w in other.words)


def test_skipped_and_wrong_words_are_flagged(assessor, field_cases):
    skipped = assess(assessor, "skip_football.flac", "My brother plays football every weekend")
    assert [w.text for w in skipped.words if w.error_type == "Omission"] == ["FOOTBALL"]
    # the words that were read are scored without the skipped word's squeezed span in the scorer's input
    assert [w.text for w in skipped.words if w.error_type != "None"] == ["FOOTBALL"]
    assert skipped.sentence["completeness"] == pytest.approx(10 * 5 / 6, abs=0.01)
    wrong = assess(assessor, "coffee.flac", "I would like a cup of tea please")
    tea = next(w for w in wrong.words if w.text == "TEA")
    assert tea.error_type == "Mispronunciation" and tea.heard_word == "COFFEE" and max(p.score for p in tea.phones) < 1
    right = assess(assessor, "coffee.flac", "I would like a cup of coffee please")
    assert right.sentence["completeness"] == 10 and right.sentence["total"] > wrong.sentence["total"]
    assert all(w.error_type == "None" for w in right.words)


def test_a_clean_native_like_reading_is_read_in_full_without_insertions(assessor, field_cases):
    native = assess(assessor, "native_weather.flac", "The weather is nice today.")
    assert not native.insertions
    assert native.sentence["completeness"] == 10 and native.verification["matches_text"]


@pytest.mark.xfail(strict=True, reason="known false flag since the phone-evidence fusion (session 13): hama hears "
                   "'is ice' here (deletion gain of /N/ 7.9) and the network already doubted /N/ (1.08), so NICE's /N/ "
                   "is fused to 0.80. Over 120 correct espeak-ng readings the fusion flags fewer words (9.1% -> 5.5%; "
                   "docs/scorer.md); this recording is one it gets wrong")
def test_a_clean_native_like_reading_is_not_flagged(assessor, field_cases):
    native = assess(assessor, "native_weather.flac", "The weather is nice today.")
    assert all(w.error_type == "None" for w in native.words)


def test_a_word_read_alone_without_its_last_phone_is_still_a_reading_of_it(assessor, field_cases):
    asked = assess(assessor, "ask.flac", "asked")  # Whisper hears "YEAH"/"YES"; the phone recogniser hears ASKED
    assert asked.verification["matches_text"] and asked.words[0].error_type not in ("Omission", "Mispronunciation")
    assert asked.sentence["total"] > 5


@pytest.mark.xfail(strict=True, reason="the field case's 'right' (T low, ASKED flagged) is not met: the aligner picks "
                   "CMUdict's variant AE S T and the scorer gives its T 1.76 (heard K); with AE S K T forced the T "
                   "still scores 1.65: the scorer does not hear the deleted final /T/ (issue 11)")
def test_a_word_read_without_its_last_phone_has_that_phone_low(assessor, field_cases):
    asked = assess(assessor, "ask.flac", "asked")
    assert asked.words[0].phones[-1].score < 1 and asked.words[0].error_type == "Mispronunciation"


def test_pause_and_paragraph_alignment(assessor, field_cases):
    paused = assess(assessor, "pause_before_home.flac", "I would like to go home now")
    go, home = (next(w for w in paused.words if w.text == t) for t in ("GO", "HOME"))
    assert go.phones[-1].end < 1.8 and home.error_type == "UnexpectedBreak"
    text = next(t for a, t in field_cases if a == "paragraph_20s.flac")
    paragraph = assess(assessor, "paragraph_20s.flac", text)
    assert not paragraph.alignment_fallback
    assert sum(w.error_type != "None" for w in paragraph.words) <= 3
    assert not any(w.error_type == "UnexpectedBreak" for w in paragraph.words)


def test_a_rationale_for_another_text_says_so_first():
    from orthoepy.encoder.verification import Verification
    from orthoepy.fusion.assessor import lead_with_mismatch
    from orthoepy.fusion.rationale import RationaleResult

    rationale = RationaleResult("Fluency is good.", "rubric", True, {}, "", 0.0, ["rubric"])
    other = Verification(True, 2.0, "en", 0.9, "I LIKE TEA", 0.2, False,
                         ("the recording does not match the text: only 1 of 5 words were heard",), (), ())
    assert lead_with_mismatch(rationale, other).text.startswith("The recording does not match the text")
    assert lead_with_mismatch(rationale, replace(other, matches_text=True, warnings=())).text == "Fluency is good."
    assert lead_with_mismatch(rationale, None) is rationale


def test_alignment_evidence_and_an_unlikely_text_change_the_decisions():
    from orthoepy.encoder.verification import Evidence, decide

    words, reference = ["I", "THINK", "SO"], [I, THINK, SO]
    heard_words = (heard("I", I, 0, .2), heard("THINK", THINK, .2, .5), heard("SO", SO, .5, .8))
    evidence = Evidence(1.0, "en", 0.9, heard_words, (0.9, 0.4, 0.9), ())
    config = replace(CONFIG, squeezed_s=0.04, squeezed_forced=0.5, mismatch_forced=0.05)
    assert decide(evidence, words, reference, config).share_read == 1.0
    squeezed = decide(evidence, words, reference, config, aligned=[(0.0, 0.08, 1), (0.1, 0.22, 4), (0.3, 0.48, 2)])
    assert [c.status for c in squeezed.words] == [READ, OMITTED, READ]  # THINK aligned to 30 ms a phone
    unlikely = replace(evidence, heard=heard_words[:1] + (heard("COFFEE", COFFEE, .2, .5, p=0.5),), forced=(0.9, 0.01, 0.01))
    other = decide(unlikely, words, reference, config)
    # an unsure heard word no longer counts as read: THINK and SO are one substituted, one omitted (a tie)
    assert not other.matches_text and sorted(c.status for c in other.words) == [OMITTED, READ, SUBSTITUTED]
    assert decide(unlikely, words, reference, replace(config, mismatch_forced=0.0)).share_read > other.share_read


def test_no_words_heard_leaves_every_word_unread():
    from orthoepy.encoder.verification import Evidence, decide

    evidence = Evidence(1.0, "en", 0.9, (), (0.9, 0.9, 0.9), (), no_words=True)  # the forced text looks likely
    verdict = decide(evidence, ["I", "THINK", "SO"], [I, THINK, SO], CONFIG)
    assert verdict.share_read == 0 and not verdict.matches_text and {c.status for c in verdict.words} == {OMITTED}
    assert decide(replace(evidence, no_words=False), ["I", "THINK", "SO"], [I, THINK, SO], CONFIG).share_read == 1


def test_language_identification_alone_does_not_unread_a_reading_of_the_text():
    from orthoepy.encoder.verification import Evidence, decide

    words, reference = ["I", "THINK", "SO"], [I, THINK, SO]
    heard_words = (heard("I", I, 0, .2), heard("SINK", SINK, .2, .5), heard("SO", SO, .5, .8))
    accented = Evidence(1.0, "es", 0.9, heard_words, (0.9, 0.2, 0.9), ())  # the text is likely: a reading
    verdict = decide(accented, words, reference, replace(CONFIG, mismatch_forced=0.05))
    assert verdict.matches_text and verdict.share_read == 1.0
    assert not any("English" in w for w in verdict.warnings)
    unlikely = replace(accented, forced=(0.01, 0.01, 0.01))  # the same identification, and the text is unlikely
    other = decide(unlikely, words, reference, replace(CONFIG, mismatch_forced=0.05))
    assert not other.matches_text and other.share_read == 0.0
    assert any("does not sound like English" in w for w in other.warnings)


def test_voice_activity_between_aligned_words_is_an_insertion():
    from orthoepy.encoder.verification import Evidence, decide

    words, reference = ["I", "THINK", "SO"], [I, THINK, SO]
    heard_words = (heard("I", I, 0, .2), heard("THINK", THINK, .2, .5), heard("SO", SO, 1.5, 1.8))
    evidence = Evidence(1.6, "en", 0.9, heard_words, (0.9, 0.9, 0.9), (), speech=((0.0, 0.5), (0.8, 1.3), (1.5, 1.8)))
    aligned = [(0.0, 0.2, 1), (0.2, 0.5, 4), (1.5, 1.8, 2)]  # 0.5 s of speech between THINK and SO
    found = decide(evidence, words, reference, replace(CONFIG, gap_speech_s=0.4), aligned).insertions
    assert [(i.text, i.after_word, i.start, i.end) for i in found] == [("(unrecognised speech)", 1, 0.5, 1.5)]
    assert not decide(evidence, words, reference, replace(CONFIG, gap_speech_s=0.6), aligned).insertions


# ------------------------------------------------------------------------------ a long text on a short recording

FILLER = ("morning river garden window teacher market yellow winter quiet station letter bridge summer kitchen "
          "mountain coffee village orange doctor pencil holiday island blanket engine forest silver ticket "
          "painter rabbit candle harbour meadow thunder basket jacket ladder violin castle pillow shadow").split()


def with_filler(text: str, n: int = 500) -> str:
    """The text and n words drawn (seeded) from FILLER: a text far longer than Whisper's 448 decoder positions."""
    rng = np.random.default_rng(0)
    return text + " " + " ".join(rng.choice(FILLER, n))


@pytest.fixture(scope="module")
def short_utterance(fixture_dir):
    from orthoepy.encoder.corpus import load_corpus

    return min(load_corpus(fixture_dir, "test"), key=lambda u: len(u.words))


def test_a_long_text_on_a_short_recording_is_verified(assessor, short_utterance):
    from orthoepy.encoder.audio import load_audio
    from orthoepy.encoder.verification import decide

    audio = load_audio(short_utterance.audio_path)
    short, long = (assessor.lexicon.pronounce(t) for t in (short_utterance.text, with_filler(short_utterance.text)))
    evidence = [assessor.verifier.gather(audio, list(p.words), [tuple(x) for x in p.phones]) for p in (short, long)]
    assert len(long.words) == len(short.words) + 500
    assert evidence[1].heard == evidence[0].heard  # the free transcription is never told the text
    # the decoder is causal: a word's forced probability depends on the text before it only (int8 arithmetic on
    # longer inputs moves it in the third decimal)
    assert evidence[1].forced[:len(short.words)] == pytest.approx(evidence[0].forced, abs=0.01)
    verdict = decide(evidence[1], list(long.words), [tuple(x) for x in long.phones], assessor.verifier.config)
    assert not verdict.matches_text and verdict.share_read < 0.05


def test_a_long_text_on_a_short_recording_is_assessed_with_most_words_unread(assessor, short_utterance):
    result = assessor.assess(short_utterance.audio_path, with_filler(short_utterance.text))
    assert sum(w.error_type == "Omission" for w in result.words) > 0.9 * len(result.words)
    assert not result.verification["matches_text"] and "does not match" in result.verification["warnings"][0]
    assert result.sentence["total"] < 1


def test_a_text_too_long_for_the_scorer_is_refused_before_any_model_runs(assessor, short_utterance):
    from orthoepy.encoder.lexicon import TextError

    with pytest.raises(TextError, match=r"too long to score at once: \d+ words, \d+ phones \(at most 4900"):
        assessor.assess(short_utterance.audio_path, with_filler(short_utterance.text, 3000))


def test_a_text_far_longer_than_the_speech_is_not_read():
    from orthoepy.encoder.verification import Evidence, decide

    words, reference = ["I", "THINK", "SO"] * 20, [I, THINK, SO] * 20  # 140 phones
    heard_words = (heard("I", I, 0, .2), heard("THINK", THINK, .2, .5), heard("SO", SO, .5, .8))
    evidence = Evidence(0.9, "en", 0.9, heard_words, (0.95,) * 60, ())  # the forced text looks likely
    verdict = decide(evidence, words, reference, CONFIG)
    assert not verdict.matches_text and verdict.share_read == pytest.approx(3 / 60)
    assert decide(replace(evidence, speech_seconds=6.0), words, reference, CONFIG).share_read == 1.0


# ------------------------------------------------------------------------------ reversals (swapped words)

ONCE, MORE, AT, HOME = ("W", "AH1", "N", "S"), ("M", "AO1", "R"), ("AE1", "T"), ("HH", "OW1", "M")


def test_two_words_read_in_swapped_order_are_both_reversals_not_an_omission_and_an_insertion():
    from orthoepy.encoder.verification import Evidence, decide

    words, reference = ["ONCE", "MORE", "AT", "HOME"], [ONCE, MORE, AT, HOME]
    swapped = (heard("MORE", MORE, 0.0, .3), heard("ONCE", ONCE, .3, .6), heard("AT", AT, .6, .8),
               heard("HOME", HOME, .8, 1.1))
    evidence = Evidence(1.1, "en", 0.9, swapped, (0.01, 0.9, 0.9, 0.9), ())
    verdict = decide(evidence, words, reference, CONFIG)
    assert [(c.status, c.reversed) for c in verdict.words] == [(READ, True), (READ, True), (READ, False), (READ, False)]
    assert verdict.insertions == () and verdict.share_read == 1.0
    assert (verdict.words[0].start, verdict.words[1].start) == (0.3, 0.0)  # each word where it was heard
    assert "read in another order: ONCE MORE" in verdict.warnings
    # read as written: nothing reversed
    plain = replace(evidence, heard=(swapped[1], swapped[0]) + swapped[2:], forced=(0.9,) * 4)
    assert not any(c.reversed for c in decide(plain, words, reference, CONFIG).words)


def test_a_repeated_word_is_not_a_reversal():
    from orthoepy.encoder.verification import Evidence, decide

    words, reference = ["ONCE", "MORE", "AT"], [ONCE, MORE, AT]
    again = (heard("ONCE", ONCE, 0, .3), heard("MORE", MORE, .3, .6), heard("ONCE", ONCE, .6, .9), heard("AT", AT, .9, 1.1))
    verdict = decide(Evidence(1.1, "en", 0.9, again, (0.9, 0.9, 0.9), ()), words, reference, CONFIG)
    assert not any(c.reversed for c in verdict.words) and [i.text for i in verdict.insertions] == ["ONCE"]


def test_a_reversal_keeps_its_scores_and_says_so():
    from orthoepy.fusion.diagnosis import verified_error_type

    assert verified_error_type("read", "None", reversed_order=True) == "Reversal"
    assert verified_error_type("read", "None") == "None"


def test_a_reading_that_stops_partway_is_said_to_have_stopped_not_to_be_another_text():
    words = ["I", "THINK", "SO", "I", "THINK", "SO"]
    checks = [WordCheck(READ, w, 0.9, k * .3, k * .3 + .2) for k, w in enumerate(words[:2])]
    checks += [WordCheck(OMITTED, None, 0.01, None, None) for _ in words[2:]]
    share, matches, warnings = summarise(checks, [], words, "en", 0.9, CONFIG)
    assert share == pytest.approx(2 / 6) and matches
    assert warnings == ['the reading stopped after "THINK": 2 of 6 words were heard']
    # words missing all through the reading are not a stop
    scattered = [checks[0], checks[2], checks[1], checks[3], checks[4], checks[5]]
    assert not summarise(scattered, [], words, "en", 0.9, CONFIG)[1]
    # nor is a recording judged another text
    assert not summarise(checks, [], words, "en", 0.9, CONFIG, other_text=True)[1]


def test_words_heard_as_other_words_at_the_end_are_not_a_stop():
    # "I was born in twenty twenty" for "I was born in nineteen ninety": the reader went on
    words = ["I", "WAS", "BORN", "IN", "NINETEEN", "NINETY"]
    checks = [WordCheck(READ, w, 0.9, k * .3, k * .3 + .2) for k, w in enumerate(words[:4])]
    checks += [WordCheck(SUBSTITUTED, "TWENTY", 0.01, 1.2 + k * .4, 1.5 + k * .4) for k in range(2)]
    share, matches, warnings = summarise(checks, [], words, "en", 0.9, CONFIG)
    assert matches and not any("stopped" in w for w in warnings)
    assert "not read as written: NINETEEN, NINETY" in warnings


def test_an_extra_word_a_phone_away_from_a_neighbour_is_a_repetition():
    words, reference = ["THE", "CAT", "SAT"], [("DH", "AH0"), ("K", "AE1", "T"), ("S", "AE1", "T")]
    heard_words = [heard("THE", ("DH", "AH"), 0, .2), heard("CAT", ("K", "AE", "T"), .2, .5),
                   heard("CUT", ("K", "AH", "T"), .5, .8), heard("SAT", ("S", "AE", "T"), .8, 1.1)]
    _, insertions = check_words(reference, heard_words, [0.9] * 3, CONFIG)
    assert [(i.text, i.kind, i.after_word) for i in insertions] == [("CUT", "Repetition", 1)]
    far = heard_words[:2] + [heard("DOG", ("D", "AO", "G"), .5, .8)] + heard_words[3:]
    assert [i.kind for i in check_words(reference, far, [0.9] * 3, CONFIG)[1]] == ["Insertion"]


def test_completeness_counts_words_attempted_not_words_read_as_written():
    """Azure's and speechocean762's completeness: a word read as another word was attempted (only an omission
    lowers completeness), while the other sentence scores still follow the share read as written."""
    from orthoepy.fusion.diagnosis import share_attempted

    sentence = {"accuracy": 8.0, "completeness": 6.8, "fluency": 8.0, "prosodic": 7.0, "total": 8.0}
    statuses = ["read", "substituted", "omitted", "read"]
    attempted = share_attempted(statuses, 0.5, matches_text=True)
    assert attempted == 0.75
    gated = gated_sentence(sentence, 0.5, attempted)
    assert gated["completeness"] == 7.5 and gated["accuracy"] == 4.0 and gated["total"] == 4.0
    # another text: every word "substituted" by what was heard, yet nothing of this text was attempted
    assert share_attempted(["substituted"] * 4, 0.0, matches_text=False) == 0.0
    assert gated_sentence(sentence, 0.0, share_attempted(["substituted"] * 4, 0.0, False))["completeness"] == 0.0


def test_a_text_the_phone_recogniser_hears_is_not_judged_another_text():
    """Whisper heard "JIM CASSINE'S TV VIEW" for a dev reading of "JIM CAN SEE THE T V ROOM" (labelled 8), and the
    text judgement scored it 0; the phone recogniser, with no language model, finds the text likely."""
    from orthoepy.encoder.verification import Evidence, decide

    words, reference = ["I", "THINK", "SO"], [I, THINK, SO]
    evidence = Evidence(1.0, "en", 0.9, (heard("HI", ("HH", "AY"), 0, .3),), (0.3, 0.3, 0.3), (), text_lpr=-1.2)
    # the rule's text judgement (median forced word probability under mismatch_forced), set to fire here
    config = replace(CONFIG, mismatch_forced=0.5, read_text_lpr=None)
    assert not decide(evidence, words, reference, config).matches_text  # no check configured: another text
    checked = replace(config, read_text_lpr=-2.0)
    assert decide(evidence, words, reference, checked).matches_text
    assert not decide(replace(evidence, text_lpr=-4.5), words, reference, checked).matches_text
    assert not decide(replace(evidence, text_lpr=None), words, reference, checked).matches_text  # not measured
    # a language identified with confidence is not overruled: synthetic French comes closest to a reading
    french = replace(evidence, language="fr", language_probability=0.95)
    assert not decide(french, words, reference, checked).matches_text


def test_older_evidence_records_have_no_text_lpr():
    from dataclasses import asdict

    from orthoepy.encoder.verification import Evidence

    evidence = Evidence(1.0, "en", 0.9, (), (0.5,), (), text_lpr=-0.7)
    record = json.loads(json.dumps(asdict(evidence)))
    assert Evidence.from_dict(record).text_lpr == -0.7
    del record["text_lpr"]
    assert Evidence.from_dict(record).text_lpr is None


def test_another_language_the_phone_recogniser_does_not_hear_the_text_in_is_not_english():
    """French speech against its English translation: Whisper's forced decoding finds the translation likely and the
    text judgement took it for a reading; the language identification (fr, 0.98) now names it where the phone
    recogniser does not find the text (text LPR under `read_text_lpr`)."""
    from orthoepy.encoder.verification import Evidence, decide, text_check_applies

    words, reference = ["I", "THINK", "SO"], [I, THINK, SO]
    config = replace(CONFIG, read_text_lpr=-2.0)
    french = Evidence(1.0, "fr", 0.98, (heard("I", I, 0, .2), heard("THINK", THINK, .2, .5), heard("SO", SO, .5, .8)),
                      (0.9, 0.9, 0.9), (), text_lpr=-2.5)
    result = decide(french, words, reference, config)
    assert not result.matches_text and result.share_read == 0.0
    assert text_check_applies(french, config)
    # the phone recogniser finds the text: an accented reading the identification misjudged stays a reading
    assert decide(replace(french, text_lpr=-1.0), words, reference, config).matches_text
    # not measured, or no check configured: the identification alone still decides nothing
    assert decide(replace(french, text_lpr=None), words, reference, config).matches_text
    assert decide(french, words, reference, replace(config, read_text_lpr=None)).matches_text
    assert not text_check_applies(replace(french, language="en"), config)
