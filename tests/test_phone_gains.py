"""The phone recogniser's likelihood ratios (encoder/phone_gains.py) on synthetic CTC posteriors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from orthoepy.encoder.phone_gains import (INSERT_UNKNOWN, SKIP_UNKNOWN, PhoneGains, ctc_log_probs, gains, phone_edit_gains,
                                          phone_ids, replace_gains, window_gains, window_replace_gains)
from orthoepy.encoder.phoneset import PHONE_INDEX
from orthoepy.encoder.verification import Evidence, HeardWord, word_times

FRAME_S = 0.02
WORDS = [["K", "AE1", "T"], ["S", "AE1", "T"], ["AA1", "N"], ["DH", "AH0"], ["M", "AE1", "T"]]


def frames_saying(labels: list[int | None]) -> np.ndarray:
    """(T, 41) CTC log-probabilities of a recording that says `labels` (ids 1..39; None: a phone not in the set,
    i.e. only the unknown column fits), each held 3 frames with 2 blank frames after it."""
    phone, blank = [], []
    for label in labels:
        for _ in range(3):
            row = np.full(39, 0.02 / 38)
            if label is None:
                row[:] = 0.98 / 39  # spread over all phones: no single phone fits, "any phone" does
            else:
                row[label - 1] = 0.98
            phone.append(row * 0.95)
            blank.append(0.05)
        for _ in range(2):
            phone.append(np.full(39, 0.05 / 39))
            blank.append(0.95)
    phone, blank = np.asarray(phone), np.asarray(blank)
    return ctc_log_probs(phone, blank, np.zeros(len(blank)))


def said(words: list[list[int]]) -> list[int]:
    return [t for w in words for t in w]


def test_phone_ids_drop_stress_and_reject_unknown_phones():
    assert phone_ids([("K", "AE1", "T")]) == [[PHONE_INDEX["K"] + 1, PHONE_INDEX["AE"] + 1, PHONE_INDEX["T"] + 1]]
    with pytest.raises(ValueError):
        phone_ids([("Q",)])


def test_a_word_not_said_has_a_high_skip_gain_and_the_others_low():
    ids = phone_ids(WORDS)
    found = gains(frames_saying(said(ids[:2] + ids[3:])), ids)  # word 2 ("AA N") not said
    assert found.skip[2] > 5
    assert all(found.skip[k] < -5 for k in (0, 1, 3, 4))


def test_a_repeated_word_has_a_high_repeat_gain():
    ids = phone_ids(WORDS)
    found = gains(frames_saying(said(ids[:2] + [ids[1]] + ids[2:])), ids)  # word 1 said twice
    assert found.repeat[1] > 5
    # word 0 ("K AE T") partly fits the extra "S AE T" too, the others not at all
    assert max(found.repeat[k] for k in (0, 2, 3, 4)) < found.repeat[1] - 10
    assert all(found.repeat[k] < -5 for k in (2, 3, 4))
    assert all(r < -5 for r in gains(frames_saying(said(ids)), ids).repeat)  # said once: no word gains


def test_unknown_speech_between_two_words_has_a_high_insert_gain_in_that_gap():
    ids = phone_ids(WORDS)
    found = gains(frames_saying(said(ids[:3]) + [None, None] + said(ids[3:])), ids)  # two other phones after word 2
    assert found.insert[2] > 5
    assert max(found.insert[k] for k in (0, 1, 3)) < found.insert[2] - 5
    assert found.insert[4] == INSERT_UNKNOWN  # no gap after the last word


def test_blocks_placed_by_word_times_agree_with_the_whole_text():
    ids = phone_ids(WORDS * 3)  # 15 words: blocks of 4 words either side are shorter than the text
    frames = frames_saying(said(ids[:7] + ids[8:]))
    per_label = 5 * FRAME_S
    times, t = [], 0.0
    for k, w in enumerate(ids):
        span = 0.0 if k == 7 else len(w) * per_label
        times.append((t, t + span))
        t += span
    whole, local = gains(frames, ids), gains(frames, ids, times, FRAME_S)
    assert np.argmax(local.skip) == np.argmax(whole.skip) == 7
    assert np.allclose(local.skip, whole.skip, atol=1.0)
    assert np.allclose(local.repeat, whole.repeat, atol=1.0)


def test_too_few_frames_give_finite_gains():
    found = gains(frames_saying([1])[:2], phone_ids(WORDS))
    assert all(np.isfinite(v) for v in found.skip + found.repeat + found.insert)


def test_window_gains_leave_the_gap_between_windows_unknown():
    ids = phone_ids(WORDS[:4])
    first, second = frames_saying(said(ids[:2])), frames_saying(said(ids[2:]))
    frames = np.concatenate([first, second])
    split = len(first) * FRAME_S
    times = [(0.0, 0.3), (0.3, 0.6), (split, split + 0.2), (split + 0.2, split + 0.4)]
    found = window_gains(frames, ids, [0, 0, 1, 1], [(0.0, split), (split, len(frames) * FRAME_S)], times, FRAME_S)
    assert found.insert[1] == INSERT_UNKNOWN and found.insert[3] == INSERT_UNKNOWN
    assert found.insert[0] != INSERT_UNKNOWN and found.skip[2] != SKIP_UNKNOWN
    assert all(s < -5 for s in found.skip)  # every word was said, in its own window


def test_word_times_take_the_better_transcription_and_fill_unheard_words():
    reference = [("K", "AE1", "T"), ("S", "AE1", "T"), ("M", "AE1", "T")]
    heard = [HeardWord("CAT", 0.0, 0.3, 0.9, ("K", "AE", "T")), HeardWord("MAT", 0.8, 1.1, 0.9, ("M", "AE", "T"))]
    assert word_times(reference, [[], heard], 2.0) == [(0.0, 0.3), (0.3, 0.8), (0.8, 1.1)]
    assert word_times(reference, [[]], 2.0) == [(0.0, 2.0)] * 3


def test_heard_spans_keep_only_words_heard_as_themselves():
    from orthoepy.encoder.verification import heard_spans

    reference = [("K", "AE1", "T"), ("S", "AE1", "T"), ("M", "AE1", "T")]
    free = [HeardWord("CAT", 0.0, 0.3, 0.9, ("K", "AE", "T")), HeardWord("SAD", 0.3, 0.7, 0.9, ("S", "AE", "D"))]
    prompted = free[:1] + [HeardWord("SAT", 0.3, 0.7, 0.9, ("S", "AE", "T")),
                           HeardWord("MAT", 0.8, 1.1, 0.9, ("M", "AE", "T"))]
    assert heard_spans(reference, [free, prompted], 0.25) == [(0.0, 0.3), (0.3, 0.7), (0.8, 1.1)]
    assert heard_spans(reference, [free], 0.25) == [(0.0, 0.3), None, None]  # SAD is another word at 0.25
    assert heard_spans(reference, [free], 0.5) == [(0.0, 0.3), (0.3, 0.7), None]


def test_evidence_keeps_its_phone_gains_through_a_dict_and_older_records_have_none():
    gained = PhoneGains((1.0, 2.0), (-3.0, -4.0), (0.5, INSERT_UNKNOWN))
    e = Evidence(1.0, "en", 0.9, (), (0.9, 0.9), (), phone_gains=gained)
    assert Evidence.from_dict(dataclasses.asdict(e)).phone_gains == gained
    older = dataclasses.asdict(e)
    del older["phone_gains"]
    assert Evidence.from_dict(older).phone_gains is None


def test_the_recogniser_runs_once_per_recording_for_the_verification_and_the_front_end():
    from orthoepy.encoder.audio import Audio
    from orthoepy.encoder.features.posterior_gop import PosteriorGOP

    recogniser = object.__new__(PosteriorGOP)  # no model: the pass itself is replaced below
    recogniser._last, calls = None, []
    recogniser._posteriors = lambda wav: calls.append(wav.size) or object()
    one, other = Audio(np.zeros(1600, np.float32)), Audio(np.ones(1600, np.float32) * 0.1)
    first = recogniser.frame_posteriors(one)
    assert recogniser.frame_posteriors(Audio(np.zeros(1600, np.float32))) is first and len(calls) == 1
    assert recogniser.frame_posteriors(other) is not first and len(calls) == 2
    assert recogniser.frame_posteriors(one) is not first and len(calls) == 3  # only the last recording is kept


def test_a_recording_longer_than_the_recogniser_takes_at_once_is_covered_frame_by_frame():
    from orthoepy.encoder.features import posterior_gop as pg

    def run(wav):  # like hama: one frame per 320 samples, at most 1500 frames; each frame says where it began
        return wav[::pg.FRAME_SAMPLES][:1500, None].astype(np.float64)

    recogniser = object.__new__(pg.PosteriorGOP)
    recogniser._run = run
    wav = np.arange(75 * 16_000, dtype=np.float64)  # 75 s: three pieces
    frames = recogniser._token_log_probs(wav)
    assert len(frames) == -(-len(wav) // pg.FRAME_SAMPLES)  # every frame of the recording, once
    assert np.array_equal(frames[:, 0], np.arange(len(frames)) * pg.FRAME_SAMPLES)
    short = np.arange(10 * 16_000, dtype=np.float64)
    assert np.array_equal(recogniser._token_log_probs(short), run(short))  # one call, as before


def test_a_phone_read_as_another_has_a_high_substitution_gain_naming_that_phone():
    ids = phone_ids(WORDS)
    spoken = [list(w) for w in ids]
    spoken[1][0] = PHONE_INDEX["TH"] + 1  # "S AE T" said "TH AE T"
    found = phone_edit_gains(frames_saying(said(spoken)), ids)
    flat = said(ids)
    assert len(found.substitute) == len(found.delete) == len(found.heard) == len(flat)
    assert found.substitute[3] > 5 and found.heard[3] == PHONE_INDEX["TH"]
    assert all(found.substitute[i] < min(0.0, found.substitute[3] - 10) for i in range(len(flat)) if i != 3)
    assert found.delete[3] < found.substitute[3] - 5  # the phone was said, only as another


def test_a_phone_left_out_has_a_high_deletion_gain():
    ids = phone_ids(WORDS)
    spoken = [list(w) for w in ids]
    del spoken[0][2]  # "K AE T" said "K AE"
    found = phone_edit_gains(frames_saying(said(spoken)), ids)
    assert found.delete[2] > 5
    assert all(found.delete[i] < -5 for i in range(len(said(ids))) if i != 2)


def test_phone_edit_gains_over_word_blocks_agree_with_the_whole_text():
    ids = phone_ids(WORDS * 2)
    spoken = [list(w) for w in ids]
    spoken[6][1] = PHONE_INDEX["IY"] + 1
    frames = frames_saying(said(spoken))
    times, t = [], 0.0
    for w in ids:
        times.append((t, t + len(w) * 5 * FRAME_S))
        t = times[-1][1]
    whole, local = phone_edit_gains(frames, ids), phone_edit_gains(frames, ids, times, FRAME_S)
    edited = len(said(ids[:6])) + 1
    assert int(np.argmax(local.substitute)) == int(np.argmax(whole.substitute)) == edited
    assert abs(local.substitute[edited] - whole.substitute[edited]) < 1.0
    assert local.heard[edited] == whole.heard[edited] == PHONE_INDEX["IY"]


def test_the_heard_nbest_names_the_substitute_first_and_the_canonical_phone_where_it_was_said():
    ids = phone_ids(WORDS)
    spoken = [list(w) for w in ids]
    spoken[1][0] = PHONE_INDEX["TH"] + 1  # "S AE T" said "TH AE T"
    found = phone_edit_gains(frames_saying(said(spoken)), ids)
    first, probability = found.nbest[3][0]
    assert first == PHONE_INDEX["TH"] and probability > 0.9
    for i, label in enumerate(said(ids)):
        if i != 3:
            assert found.nbest[i][0][0] == label - 1  # the canonical phone: what was said there
        probabilities = [p for _, p in found.nbest[i]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1.0001


def test_a_phone_repeated_across_a_word_boundary_said_once_is_not_heard_as_another():
    ids = phone_ids([["B", "AH1", "S"], ["S", "T", "AA1", "P", "S"]])  # "bus stops"
    merged = said(ids)
    del merged[2]  # the two S said as one, as connected speech runs them
    found = phone_edit_gains(frames_saying(merged), ids)
    for i in (2, 3):
        assert found.nbest[i][0][0] == PHONE_INDEX["S"]
        assert found.delete[i] <= 0.0 and found.substitute[i] < 0.0


def test_another_word_said_in_a_words_place_has_a_positive_replace_gain():
    ids = phone_ids(WORDS)
    dog = phone_ids([("D", "AO1", "G")])[0]
    frames = frames_saying(said(ids[:1] + [dog] + ids[2:]))  # word 1 ("S AE T") read as "D AO G"
    found = replace_gains(frames, ids, {1: dog, 3: dog})
    assert found[1] > 5 and found[3] < -5  # the recogniser hears DOG at word 1, THE at word 3
    text = replace_gains(frames_saying(said(ids)), ids, {1: dog})
    assert text[1] < -5
    # per window, as the verifier places them: the same numbers for a single window
    per_window = window_replace_gains(frames, ids, {1: dog}, [0] * len(ids), [(0.0, len(frames) * FRAME_S)],
                                      [(0.0, len(frames) * FRAME_S)] * len(ids), FRAME_S)
    assert per_window[1] == pytest.approx(replace_gains(frames, ids, {1: dog}, [(0.0, len(frames) * FRAME_S)] *
                                                        len(ids), FRAME_S)[1])
    assert replace_gains(frames, ids, {}) == {}


def test_text_lpr_is_near_zero_for_the_text_said_and_far_below_for_another_text():
    from orthoepy.encoder.phone_gains import text_lpr

    ids = phone_ids(WORDS)
    log_probs = frames_saying(said(ids))
    whole = [(0.0, len(log_probs) * FRAME_S)]
    own = text_lpr(log_probs, ids, [0] * len(ids), whole, FRAME_S)
    other_words = phone_ids([["B", "IH1", "G"], ["D", "AO1", "G"], ["R", "AH1", "N"], ["F", "AE1", "S", "T"]])
    other = text_lpr(log_probs, other_words, [0] * 4, whole, FRAME_S)
    assert abs(own) < 0.5  # the forward sum over all paths may exceed the best path a little
    assert other < own - 3.0
    # two windows give the same as one when each holds its own words
    half = 5 * len(said(ids[:2])) * FRAME_S
    split = text_lpr(log_probs, ids, [0, 0, 1, 1, 1], [(0.0, half), (half, whole[0][1])], FRAME_S)
    assert split == pytest.approx(own, abs=0.05)
    # more phones than frames can hold: not measured, rather than a number that looks like another text
    assert text_lpr(log_probs[:6], ids, [0] * len(ids), [(0.0, 6 * FRAME_S)], FRAME_S) is None
    assert text_lpr(log_probs, [], [], whole, FRAME_S) is None
