"""Per-phone prosody features and the utterance-level candidate pool."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from orthoepy.encoder.alignment import Alignment, LoopPhone, PhoneSegment
from orthoepy.encoder.audio import SAMPLE_RATE, Audio, load_audio
from orthoepy.encoder.features.prosody import PHONE_FEATURE_NAMES, SUMMARY_KEYS, ProsodyFeatures
from orthoepy.encoder.features.records import FeatureBlock, GroupOutput, HeardPhone
from orthoepy.encoder.features.utterance_pool import UtterancePool
from orthoepy.encoder.phoneset import CanonicalPhone, canonical_phones

FIXTURE = Path(__file__).resolve().parents[2] / "shared/data/speechocean762/fixture"
HELLO = [["HH", "AH0"], ["L", "OW1"]]


def tone(frequency_hz: np.ndarray) -> np.ndarray:
    """A harmonic signal (five partials) following a per-sample fundamental frequency."""
    phase = 2 * np.pi * np.cumsum(frequency_hz) / SAMPLE_RATE
    return sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.2


def audio_of(samples: np.ndarray) -> Audio:
    return Audio(np.asarray(samples, dtype=np.float32))


def alignment_of(phones: list[CanonicalPhone], bounds: list[tuple[float, float]],
                 loop: list[LoopPhone] | None = None) -> Alignment:
    segments = [PhoneSegment(p, s, e, round((e - s) * 100), -1.0) for p, (s, e) in zip(phones, bounds)]
    return Alignment(segments, loop or [], False, "", segments[0].start, segments[-1].end)


def column(output: GroupOutput, name: str) -> np.ndarray:
    return output.block.values[:, output.block.names.index(name)]


def pool_value(names: tuple[str, ...], vector: np.ndarray, name: str) -> float:
    return float(vector[names.index(name)])


HELLO_BOUNDS = [(0.1, 0.2), (0.2, 0.5), (0.9, 1.0), (1.0, 1.4)]  # 0.4 s pause between the words


@pytest.fixture(scope="module")
def hello() -> tuple[Audio, Alignment]:
    t = np.arange(int(1.6 * SAMPLE_RATE)) / SAMPLE_RATE
    return audio_of(tone(120 + 40 * t)), alignment_of(canonical_phones(HELLO), HELLO_BOUNDS)


# ---------------------------------------------------------------- prosody


def test_rising_tone_has_positive_f0_slope() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    audio = audio_of(tone(120 + 100 * t))
    phones = canonical_phones([["AA1"]])
    output = ProsodyFeatures().extract(audio, alignment_of(phones, [(0.1, 0.9)]))
    slope = float(column(output, "f0_slope_st_per_s")[0])
    expected = 12 * np.log2(210 / 130) / 0.8  # semitones per second from 130 Hz to 210 Hz
    assert slope == pytest.approx(expected, rel=0.15)
    assert output.frame_summary["f0_slope_st_per_s"] > 0


def test_octave_apart_tones_are_twelve_semitones_apart() -> None:
    n = SAMPLE_RATE // 2
    audio = audio_of(np.concatenate([tone(np.full(n, 100.0)), tone(np.full(n, 200.0))]))
    phones = canonical_phones([["AA1"], ["IY1"]])
    output = ProsodyFeatures().extract(audio, alignment_of(phones, [(0.1, 0.4), (0.6, 0.9)]))
    low, high = column(output, "f0_mean_st")
    assert low == pytest.approx(0.0, abs=0.3)
    assert high - low == pytest.approx(12.0, abs=0.3)
    assert np.all(column(output, "f0_voiced_ratio") > 0.9)


def test_silent_segment_is_unvoiced_and_finite() -> None:
    n = SAMPLE_RATE // 2
    audio = audio_of(np.concatenate([tone(np.full(n, 150.0)), np.zeros(n)]))
    phones = canonical_phones([["AA1"], ["S"]])
    output = ProsodyFeatures().extract(audio, alignment_of(phones, [(0.1, 0.4), (0.6, 0.9)]))
    values = output.block.values
    assert values.shape == (2, len(PHONE_FEATURE_NAMES)) and values.dtype == np.float32
    assert np.isfinite(values).all()
    silent = dict(zip(output.block.names, values[1]))
    assert silent["f0_voiced_ratio"] == 0 and silent["f0_mean_st"] == 0 and silent["f0_slope_st_per_s"] == 0
    assert silent["int_mean_db"] < dict(zip(output.block.names, values[0]))["int_mean_db"]


def test_word_gap_shows_as_pause_around_the_boundary(hello: tuple[Audio, Alignment]) -> None:
    output = ProsodyFeatures().extract(*hello)
    assert column(output, "pause_after_s").tolist() == pytest.approx([0.0, 0.4, 0.0, 0.0])
    assert column(output, "pause_before_s").tolist() == pytest.approx([0.0, 0.0, 0.4, 0.0])


def test_durations_relative_to_the_speaker(hello: tuple[Audio, Alignment]) -> None:
    output = ProsodyFeatures().extract(*hello)
    durations = np.array([e - s for s, e in HELLO_BOUNDS])
    assert column(output, "dur_s") == pytest.approx(durations)
    assert column(output, "dur_rel_utt") == pytest.approx(durations / durations.mean())
    assert column(output, "dur_rel_class")[1] == pytest.approx(0.3 / 0.35)  # vowels: 0.3 and 0.4 s
    assert set(SUMMARY_KEYS) == set(output.frame_summary)


def test_prosody_without_segments_gives_an_empty_block(hello: tuple[Audio, Alignment]) -> None:
    empty = Alignment([], [], True, "no phones", 0.0, 0.0)
    output = ProsodyFeatures().extract(hello[0], empty)
    assert output.block.values.shape == (0, len(PHONE_FEATURE_NAMES))


# ---------------------------------------------------------------- pool


def fake_groups(n_phones: int) -> dict[str, GroupOutput]:
    gop = np.linspace(-5.0, 0.0, n_phones)
    likelihood = FeatureBlock(("lik_gop", "aligned_lik_per_frame", "lik_gop_minus_utt_mean", "loop_agreement"),
                              np.column_stack([gop, gop / 2, gop - 1, np.ones(n_phones)]).astype(np.float32))
    posterior = FeatureBlock(("lpp", "lpr_AA", "lpr_B", "entropy"),
                             np.column_stack([gop, np.zeros(n_phones), gop - 2, np.ones(n_phones)]).astype(np.float32))
    heard = [HeardPhone("HH", 0.9), HeardPhone("AA", 0.5), HeardPhone("L", 0.8), HeardPhone("OW", 0.7)]
    return {
        "likelihood_gop": GroupOutput(likelihood, frame_summary={"loop_agreement": 0.75}),
        "posterior_gop": GroupOutput(posterior, heard=heard[:n_phones], frame_summary={"mean_lpp": -1.5}),
        "whisper": GroupOutput(FeatureBlock(("whisper_0", "whisper_1"), np.ones((n_phones, 2), np.float32))),
    }


def test_pool_names_are_many_unique_and_fixed(hello: tuple[Audio, Alignment]) -> None:
    pool = UtterancePool()
    names = pool.names()
    assert len(names) >= 150 and len(set(names)) == len(names)
    audio, alignment = hello
    with_groups = {**fake_groups(4), "prosody": ProsodyFeatures().extract(audio, alignment)}
    for groups in ({}, with_groups):
        extracted_names, vector = pool.extract(audio, alignment, groups)
        assert extracted_names == names
        assert vector.shape == (len(names),) and vector.dtype == np.float32
        assert np.isfinite(vector).all()


def test_pool_reads_group_columns_by_name(hello: tuple[Audio, Alignment]) -> None:
    audio, alignment = hello
    names, vector = UtterancePool().extract(audio, alignment, fake_groups(4))
    gop = np.linspace(-5.0, 0.0, 4)
    assert pool_value(names, vector, "likelihood_gop_gop_mean") == pytest.approx(gop.mean())
    assert pool_value(names, vector, "likelihood_gop_gop_min") == pytest.approx(-5.0)
    assert pool_value(names, vector, "likelihood_gop_gop_share_below_m2") == pytest.approx(0.5)
    assert pool_value(names, vector, "likelihood_gop_aligned_mean") == pytest.approx(gop.mean() / 2)
    assert pool_value(names, vector, "likelihood_gop_relative_mean") == pytest.approx(gop.mean() - 1)
    assert pool_value(names, vector, "likelihood_gop_loop_silence_available") == 0.0
    assert pool_value(names, vector, "likelihood_gop_agree_mean") == pytest.approx(1.0)
    assert pool_value(names, vector, "likelihood_gop_summary_loop_agreement") == pytest.approx(0.75)
    assert pool_value(names, vector, "likelihood_gop_gop_available") == 1.0
    assert pool_value(names, vector, "posterior_gop_lpr_min_mean") == pytest.approx((gop - 2).mean())
    assert pool_value(names, vector, "posterior_gop_summary_mean_lpp") == pytest.approx(-1.5)
    assert pool_value(names, vector, "posterior_gop_max_frame_lp_available") == 0.0
    assert pool_value(names, vector, "heard_match_share") == pytest.approx(0.75)
    assert pool_value(names, vector, "heard_match_share_vowels") == pytest.approx(0.5)
    assert pool_value(names, vector, "whisper_neighbour_cosine_mean") == pytest.approx(1.0)


def test_pool_fluency_features_by_hand(hello: tuple[Audio, Alignment]) -> None:
    audio, alignment = hello
    names, vector = UtterancePool().extract(audio, alignment, {})
    value = lambda name: pool_value(names, vector, name)  # noqa: E731
    vowel_time, consonant_time = 0.3 + 0.4, 0.1 + 0.1
    assert value("rhythm_percent_v") == pytest.approx(100 * vowel_time / (vowel_time + consonant_time))
    assert value("pause_count") == 1 and value("pause_total_s") == pytest.approx(0.4)
    assert value("pause_count_over_250ms") == 1 and value("pause_count_over_500ms") == 0
    assert value("utt_leading_silence_s") == pytest.approx(0.1)
    assert value("utt_trailing_silence_s") == pytest.approx(0.2)
    assert value("rate_phones_per_s") == pytest.approx(4 / 1.6)
    assert value("articulation_rate_phones_per_s") == pytest.approx(4 / 0.9)
    assert value("run_mean_words") == pytest.approx(1.0)
    # vocalic intervals 0.3 and 0.4 s: nPVI = 100 * 0.1 / 0.35
    assert value("rhythm_vocalic_npvi") == pytest.approx(100 * 0.1 / 0.35)


def test_pool_stress_and_loop_features() -> None:
    phones = canonical_phones([["AH0", "B", "AW1", "T"]])
    bounds = [(0.1, 0.2), (0.2, 0.3), (0.3, 0.6), (0.6, 0.7)]
    loop = [LoopPhone("AH", 0.1, 0.2, -10.0), LoopPhone("P", 0.2, 0.3, -10.0),
            LoopPhone("AW", 0.3, 0.6, -30.0), LoopPhone("T", 0.6, 0.7, -10.0)]
    audio = audio_of(tone(np.full(SAMPLE_RATE, 150.0)))
    names, vector = UtterancePool().extract(audio, alignment_of(phones, bounds, loop), {})
    assert pool_value(names, vector, "stress_duration_ratio") == pytest.approx(3.0)
    assert pool_value(names, vector, "stress_peak_match_duration") == 1.0
    assert pool_value(names, vector, "loop_agreement") == pytest.approx(0.75)


def test_pool_without_segments_is_all_finite(hello: tuple[Audio, Alignment]) -> None:
    empty = Alignment([], [], True, "no phones", 0.0, 0.0)
    names, vector = UtterancePool().extract(hello[0], empty, {})
    assert len(names) == len(vector) and np.isfinite(vector).all()


# ---------------------------------------------------------------- real speech


def fixture_alignments() -> list[tuple[str, Audio, Alignment]]:
    if not (FIXTURE / "scores.json").is_file():
        pytest.skip(f"speechocean762 fixture not found at {FIXTURE}")
    scores = json.loads((FIXTURE / "scores.json").read_text())
    try:
        from orthoepy.encoder.alignment import ForcedAligner
        align = ForcedAligner().align
    except (ImportError, RuntimeError):
        from orthoepy.encoder.alignment import uniform_segments

        def align(audio: Audio, phones: list[CanonicalPhone]) -> Alignment:
            segments = uniform_segments(audio, phones)
            return Alignment(segments, [], True, "uniform", segments[0].start, segments[-1].end)
    out = []
    for utt, info in scores.items():
        audio = load_audio(FIXTURE / f"{utt}.flac")
        out.append((utt, audio, align(audio, canonical_phones([w["phones"] for w in info["words"]]))))
    return out


@pytest.mark.fixture
def test_real_speech_is_finite_and_fast() -> None:
    prosody, pool = ProsodyFeatures(), UtterancePool()
    prosody_s = pool_s = 0.0
    utterances = fixture_alignments()
    for utt, audio, alignment in utterances:
        start = time.perf_counter()
        output = prosody.extract(audio, alignment)
        prosody_s += time.perf_counter() - start
        start = time.perf_counter()
        names, vector = pool.extract(audio, alignment, {"prosody": output})
        pool_s += time.perf_counter() - start
        assert output.block.values.shape == (len(alignment.segments), len(PHONE_FEATURE_NAMES)), utt
        assert np.isfinite(output.block.values).all() and np.isfinite(vector).all(), utt
        assert names == pool.names()
    n = len(utterances)
    print(f"\nprosody {1000 * prosody_s / n:.1f} ms/utt, pool {1000 * pool_s / n:.1f} ms/utt over {n} utterances")
    assert prosody_s / n < 0.2 and pool_s / n < 0.1  # generous bounds: shared CI machines are slow
