"""ForcedAligner and the likelihood GOP group: synthetic signals (fast) and the speechocean762 fixture."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from orthoepy.encoder.alignment import Alignment, ForcedAligner
from orthoepy.encoder.audio import Audio, load_audio
from orthoepy.encoder.features.likelihood_gop import LikelihoodGOP
from orthoepy.encoder.phoneset import canonical_phones

FIXTURE = Path(__file__).resolve().parents[2] / "shared/data/speechocean762/fixture"
PHONES = canonical_phones([["HH", "AH0"], ["L", "OW1"], ["W", "ER1", "L", "D"]])


@pytest.fixture(scope="module")
def aligner() -> ForcedAligner:
    return ForcedAligner()


def _check_valid(alignment: Alignment, n_phones: int, duration: float) -> None:
    assert len(alignment.segments) == n_phones
    previous_end = 0.0
    for segment in alignment.segments:
        assert segment.end > segment.start >= previous_end - 1e-9
        assert segment.frames >= 1
        assert segment.end <= duration + 1e-9
        assert np.isfinite(segment.path_score)
        previous_end = segment.end
    assert alignment.speech_start <= alignment.speech_end
    assert not alignment.fallback or alignment.note


def _check_features(audio: Audio, alignment: Alignment) -> None:
    group = LikelihoodGOP()
    out = group.extract(audio, alignment)
    assert out.block.values.shape == (len(alignment.segments), len(group.names()))
    assert out.block.values.dtype == np.float32
    assert np.all(np.isfinite(out.block.values))
    assert all(np.isfinite(v) for v in out.frame_summary.values())


def _noise(seconds: float, seed: int = 0) -> Audio:
    rng = np.random.default_rng(seed)
    return Audio((0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32))


def _tone(seconds: float) -> Audio:
    t = np.arange(int(16000 * seconds)) / 16000
    return Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))


@pytest.mark.parametrize("audio", [_noise(2.0), _tone(1.5), _noise(0.3, seed=1)], ids=["noise", "tone", "short"])
def test_synthetic_audio_gives_valid_alignment(aligner: ForcedAligner, audio: Audio) -> None:
    alignment = aligner.align(audio, PHONES)
    _check_valid(alignment, len(PHONES), audio.duration)
    _check_features(audio, alignment)


def test_more_phones_than_frames_still_gives_segments(aligner: ForcedAligner) -> None:
    audio = _noise(0.05)
    phones = canonical_phones([["S", "T", "R", "EH1", "NG", "K", "TH", "S"]] * 2)
    alignment = aligner.align(audio, phones)
    assert alignment.fallback
    _check_valid(alignment, len(phones), audio.duration)
    _check_features(audio, alignment)


def test_no_phones_gives_empty_alignment(aligner: ForcedAligner) -> None:
    audio = _tone(0.5)
    alignment = aligner.align(audio, [])
    assert alignment.segments == []
    _check_features(audio, alignment)


def test_aligner_is_reusable_across_utterances(aligner: ForcedAligner) -> None:
    for seconds in (1.0, 2.0, 1.0):
        _check_valid(aligner.align(_tone(seconds), PHONES), len(PHONES), seconds)


def _fixture_utterances() -> list[tuple[str, Audio, list]]:
    if not (FIXTURE / "scores.json").is_file():
        pytest.skip(f"speechocean762 fixture not found at {FIXTURE} (clone the repo beside shared/)")
    scores = json.loads((FIXTURE / "scores.json").read_text())
    return [
        (utt, load_audio(FIXTURE / f"{utt}.flac"), canonical_phones([w["phones"] for w in entry["words"]]))
        for utt, entry in sorted(scores.items())
        if (FIXTURE / f"{utt}.flac").is_file()
    ]


def test_fixture_alignment_matches_canonical_phones(aligner: ForcedAligner) -> None:
    utterances = _fixture_utterances()
    assert len(utterances) >= 20
    fallbacks = []
    for utt, audio, phones in utterances:
        alignment = aligner.align(audio, phones)
        _check_valid(alignment, len(phones), audio.duration)
        assert [s.phone for s in alignment.segments] == phones
        _check_features(audio, alignment)
        if alignment.fallback:
            fallbacks.append(f"{utt}: {alignment.note}")
    print(f"\n{len(fallbacks)} of {len(utterances)} fixture utterances fell back", *fallbacks, sep="\n")
    assert len(fallbacks) <= 2, fallbacks


def test_fixture_phone_loop_hears_speech(aligner: ForcedAligner) -> None:
    _, audio, phones = _fixture_utterances()[0]
    alignment = aligner.align(audio, phones)
    assert any(p.base != "SIL" for p in alignment.loop)
    assert all(p.end >= p.start for p in alignment.loop)
    summary = LikelihoodGOP().extract(audio, alignment).frame_summary
    assert 0.0 <= summary["loop_agreement"] <= 1.0


def test_word_spans_join_each_words_phones():
    from orthoepy.encoder.alignment import word_spans

    assert word_spans([0, 0, 1, 2, 2, 2], [0.0, 0.1, 0.3, 0.5, 0.6, 0.7], [0.1, 0.2, 0.4, 0.6, 0.7, 0.9]) == [
        (0.0, 0.2, 2), (0.3, 0.4, 1), (0.5, 0.9, 3)]
    assert word_spans([], [], []) == []


def test_segments_after_a_seam_stay_in_order():
    """A widened retry of a failed chunk may place its words inside the previous chunk: they move to the seam."""
    from orthoepy.encoder.alignment import PhoneSegment, _after

    hh, ae, v, it = canonical_phones([["HH", "AE1", "V"], ["IH1"]])
    segments = [PhoneSegment(p, a, b, int(round((b - a) * 100)), -1.0)
                for p, a, b in ((hh, 0.74, 0.75), (ae, 0.75, 0.78), (v, 1.70, 1.78), (it, 1.80, 1.90))]
    moved = _after(segments, 1.71)
    starts_ends = [(round(s.start, 2), round(s.end, 2)) for s in moved]
    assert starts_ends == [(1.71, 1.72), (1.72, 1.73), (1.73, 1.78), (1.80, 1.90)]
    assert all(b.start >= a.end for a, b in zip(moved, moved[1:]))
    assert _after(segments[3:], 1.5) == segments[3:]  # nothing before the seam: unchanged
