"""Error augmentation (encoder/scorer/augmentation.py): the targets of altered phones, words and sentences."""
from pathlib import Path

import numpy as np
import pytest
import soundfile

from orthoepy.encoder.corpus import SentenceLabels, Utterance, WordLabel
from orthoepy.encoder.scorer.augmentation import (
    CONFUSABLE, NONSPEECH_SPEAKER, AugmentationPlan, TargetSlopes, augment, load_augmented, mismatched,
    nonspeech_signal, omit_word, save_augmented, source_id, substitute_phones)
from orthoepy.encoder.phoneset import PHONES, VOWELS

SLOPES = TargetSlopes(word_accuracy=5.0, word_total=4.0, sentence_accuracy=1.0, sentence_total=1.5)


def word(text, phones, scores, accuracy=10.0, stress=10.0, total=10.0):
    return WordLabel(text, tuple(phones), tuple(scores), accuracy, stress, total)


def utterance(utt_id="u1", speaker="s1", words=None) -> Utterance:
    words = words or (word("I", ["AY1"], [2.0]), word("THINK", ["TH", "IH1", "NG", "K"], [2.0, 2.0, 1.8, 2.0]),
                      word("SO", ["S", "OW1"], [2.0, 1.0], accuracy=7.0, total=7.0))
    return Utterance(utt_id, speaker, "train", Path(f"/audio/{utt_id}.wav"), " ".join(w.text for w in words), words,
                     SentenceLabels(accuracy=9.0, completeness=10.0, fluency=8.0, prosodic=7.0, total=8.5))


def test_confusions_stay_within_the_phone_set_and_class():
    for phone, others in CONFUSABLE.items():
        assert phone in PHONES and all(o in PHONES and o != phone for o in others)
        assert all((o in VOWELS) == (phone in VOWELS) for o in others)


def test_substituted_phone_scores_zero_and_its_word_and_sentence_drop():
    u = utterance()
    out = substitute_phones(u, {1: "S"}, SLOPES, "u1~substitution")  # TH of THINK heard as S
    think = out.words[1]
    assert think.phones == ("S", "IH1", "NG", "K") and think.phone_accuracy == (0.0, 2.0, 1.8, 2.0)
    drop = (7.8 / 4 - 5.8 / 4)  # mean phone score 1.95 -> 1.45
    assert think.accuracy == pytest.approx(10 - 5.0 * drop) and think.total == pytest.approx(10 - 4.0 * drop)
    assert think.stress == 10.0  # stress is not a matter of this phone
    assert out.words[0] == u.words[0] and out.words[2] == u.words[2]
    word_drop = (10 - think.accuracy) / 3
    assert out.sentence.accuracy == pytest.approx(9.0 - 1.0 * word_drop)
    assert out.sentence.total == pytest.approx(8.5 - 1.5 * word_drop)
    assert (out.sentence.completeness, out.sentence.fluency, out.sentence.prosodic) == (10.0, 8.0, 7.0)
    assert out.utt_id == "u1~substitution" and out.audio_path == u.audio_path and out.speaker == u.speaker


def test_vowel_substitution_keeps_the_stress_mark():
    out = substitute_phones(utterance(), {2: "IY"}, SLOPES, "x")
    assert out.words[1].phones[1] == "IY1"


def test_bad_substitutions_are_refused():
    with pytest.raises(ValueError, match="vowel for consonant"):
        substitute_phones(utterance(), {1: "IY"}, SLOPES, "x")
    with pytest.raises(ValueError, match="out of range"):
        substitute_phones(utterance(), {99: "S"}, SLOPES, "x")


def test_targets_never_leave_the_scale():
    low = utterance(words=(word("AT", ["AE1", "T"], [2.0, 2.0], accuracy=1.0, total=1.0),))
    out = substitute_phones(low, {0: "EH", 1: "D"}, SLOPES, "x")
    assert out.words[0].accuracy == 0.0 and out.words[0].total == 0.0
    assert 0.0 <= out.sentence.accuracy <= 9.0


def test_omitted_word_is_zero_and_completeness_is_the_share_read():
    u = utterance()
    extra = word("FOOTBALL", ["F", "UH1", "T", "B", "AO2", "L"], [2.0] * 6)
    out = omit_word(u, extra, 2, SLOPES, "u1~omission")
    assert [w.text for w in out.words] == ["I", "THINK", "FOOTBALL", "SO"] and out.text == "I THINK FOOTBALL SO"
    missing = out.words[2]
    assert missing.phone_accuracy == (0.0,) * 6 and missing.accuracy == 0.0 and missing.total == 0.0
    assert missing.stress is None  # not read: no stress to judge
    assert out.sentence.completeness == pytest.approx(10.0 * 3 / 4)
    assert out.sentence.accuracy < u.sentence.accuracy and out.sentence.fluency == u.sentence.fluency
    with pytest.raises(ValueError):
        omit_word(u, extra, 9, SLOPES, "x")


def test_mismatched_text_scores_zero_but_leaves_fluency_unknown():
    other = utterance("u2", "s2", (word("GOOD", ["G", "UH1", "D"], [2.0, 2.0, 2.0]),))
    out = mismatched(utterance(), other, "u1~mismatch")
    assert out.text == "GOOD" and out.audio_path == Path("/audio/u1.wav") and out.speaker == "s1"
    assert out.words[0].phone_accuracy == (0.0, 0.0, 0.0) and out.words[0].accuracy == 0.0
    s = out.sentence
    assert (s.accuracy, s.completeness, s.total) == (0.0, 0.0, 0.0) and s.fluency is None and s.prosodic is None


def test_slopes_recover_a_known_linear_relation():
    rng = np.random.default_rng(0)
    utts = []
    for i in range(40):
        scores = rng.uniform(0, 2, 3)
        acc = float(3.0 * scores.mean() + 1)
        w = (word("A", ["AH0", "T", "S"], scores, accuracy=acc, total=2.0 * scores.mean()),
             word("B", ["B"], [2.0], accuracy=7.0, total=4.0))
        mean_word = (acc + 7.0) / 2
        u = utterance(f"u{i}", words=w)
        utts.append(Utterance(u.utt_id, u.speaker, u.split, u.audio_path, u.text, w,
                              SentenceLabels(0.5 * mean_word, 10.0, 8.0, 8.0, 2.0 * mean_word - 3)))
    slopes = TargetSlopes.fit(utts)
    assert slopes.word_accuracy == pytest.approx(3.0, abs=1e-6) and slopes.word_total == pytest.approx(2.0, abs=1e-6)
    assert slopes.sentence_accuracy == pytest.approx(0.5) and slopes.sentence_total == pytest.approx(2.0)
    with pytest.raises(ValueError, match="too few"):
        TargetSlopes.fit(utts[:1])


def _speakers(n):
    return [utterance(f"u{i}", f"s{i % 4}") for i in range(n)]


def test_augment_is_seeded_replaces_only_well_read_phones_and_writes_nonspeech(tmp_path):
    plan = AugmentationPlan(substitution=1.0, omission=0.5, mismatch=0.5, nonspeech=3, seed=1)
    items = augment(_speakers(12), plan, SLOPES, tmp_path / "audio")
    again = augment(_speakers(12), plan, SLOPES, tmp_path / "audio2")
    assert [i.utt_id for i in items] == [i.utt_id for i in again] and [i.words for i in items] == [i.words for i in again]
    kinds = {i.utt_id.split("~")[1] for i in items}
    assert {"substitution", "omission", "mismatch"} <= kinds
    for item in items:
        if item.utt_id.endswith("~substitution"):
            source = utterance(source_id(item.utt_id))
            changed = [(a, s) for w0, w1 in zip(source.words, item.words)
                       for a, b, s in zip(w0.phones, w1.phones, w0.phone_accuracy) if a != b]
            assert 1 <= len(changed) <= plan.max_substitutions and all(s >= 1.5 for _, s in changed)
    noise = [i for i in items if i.speaker == NONSPEECH_SPEAKER]
    assert len(noise) == 3 and all(i.audio_path.is_file() for i in noise)
    assert all(i.sentence.total == 0.0 and i.sentence.fluency == 0.0 for i in noise)
    samples, rate = soundfile.read(noise[1].audio_path)
    assert rate == 16000 and 1.0 <= len(samples) / rate <= 6.0


def test_mismatch_and_omission_donors_are_other_speakers(tmp_path):
    utts = [utterance(f"u{i}", f"s{i % 3}", (word(f"W{i}", ["T"], [2.0]),)) for i in range(9)]
    items = augment(utts, AugmentationPlan(substitution=0, omission=1, mismatch=1, nonspeech=0), SLOPES, tmp_path)
    by_text = {u.words[0].text: u.speaker for u in utts}
    for item in items:
        donor_words = [w.text for w in item.words if w.text in by_text and w.accuracy == 0.0]
        assert donor_words and all(by_text[w] != item.speaker for w in donor_words)


def test_items_round_trip_through_json(tmp_path):
    items = augment(_speakers(6), AugmentationPlan(nonspeech=1), SLOPES, tmp_path / "audio")
    save_augmented(items, tmp_path / "items.json")
    assert load_augmented(tmp_path / "items.json") == items
    (tmp_path / "bad.json").write_text('[{"utt_id": 1}]')
    with pytest.raises(ValueError, match="bad.json"):
        load_augmented(tmp_path / "bad.json")


def test_nonspeech_signals():
    rng = np.random.default_rng(0)
    for kind in ("noise", "tone", "silence"):
        x = nonspeech_signal(kind, 2.0, rng)
        assert x.dtype == np.float32 and len(x) == 32000 and np.abs(x).max() <= 1
    assert np.abs(nonspeech_signal("silence", 1.0, rng)).std() < 0.01
    with pytest.raises(ValueError):
        nonspeech_signal("music", 1.0, rng)


def test_source_id():
    assert source_id("000010011~substitution") == "000010011" and source_id("000010011") == "000010011"
