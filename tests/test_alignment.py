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


def test_misplaced_counts_words_aligned_away_from_where_they_were_heard():
    from orthoepy.encoder.alignment import misplaced

    spans = {0: (1.25, 1.51), 1: (1.51, 2.20), 2: (2.20, 2.58), 3: (2.58, 2.67)}
    anchors = [None, (0.0, 0.82), (0.82, 1.38), (2.50, 2.70)]
    assert misplaced(spans, anchors) == (3, 2)  # word 0 has no anchor; word 3 overlaps its own
    assert misplaced(spans, anchors, tolerance=1.0) == (3, 0)
    assert misplaced({}, anchors) == (0, 0)


def test_anchor_cuts_lie_between_consecutive_heard_words():
    from orthoepy.encoder.alignment import anchor_cuts

    anchors = [(0.0, 0.8), (0.9, 1.3), None, (2.0, 2.4), (2.3, 2.6)]
    assert anchor_cuts(anchors) == [(1, 0.85)]  # none across an unheard word, none between overlapping spans


class _ScriptedAligner(ForcedAligner):
    """align() returns the span each chunk length was scripted with, without pocketsphinx."""

    def __init__(self, script):
        self.script = script  # {(first word, end word): [(start, end) per word, relative to the chunk]}

    def align(self, audio, phones):
        from orthoepy.encoder.alignment import PhoneSegment, _assemble

        words = sorted({p.word_index for p in phones})
        spans = self.script[(words[0], words[-1] + 1)]
        segments = [PhoneSegment(p, *spans[p.word_index - words[0]], 1, -1.0) for p in phones]
        return _assemble(segments, [], [], audio.duration, fallback=False, note="")

    def phone_loop(self, audio, raw=None):
        return []


def test_a_chunk_that_misplaces_its_heard_words_is_aligned_again_in_parts():
    phones = canonical_phones([["HH", "IY1"], ["K", "UH1", "D"], ["S", "IY1"]])
    audio = Audio(np.zeros(16000 * 3, np.float32))
    anchors = [(0.2, 0.5), (0.6, 1.0), (1.1, 1.5)]
    squeezed = [(2.70, 2.80), (2.80, 2.90), (2.90, 2.95)]  # the whole search put every word at the end
    script = {(0, 3): squeezed, (0, 2): [(0.25, 0.45), (0.6, 0.95)], (2, 3): [(0.1, 0.4)]}
    aligned = _ScriptedAligner(script).align_chunks(audio, phones, [], [], anchors)
    starts = [round(aligned.segments[i].start, 2) for i in (0, 2, 5)]  # each word's first phone
    assert starts == [0.25, 0.6, 1.15]  # cut at 1.05 (nearest the middle), between heard words
    # parts that misplace as many words as the whole are not taken
    script.update({(0, 2): [(2.0, 2.1), (2.1, 2.2)], (0, 1): [(2.0, 2.1)], (1, 2): [(1.5, 1.6)], (2, 3): [(1.5, 1.6)]})
    kept = _ScriptedAligner(script).align_chunks(audio, phones, [], [], anchors)
    assert [round(s.start, 2) for s in kept.segments][0] == 2.70
    # without anchors the whole search stands
    plain = _ScriptedAligner(script).align_chunks(audio, phones, [(0.0, 3.0, 0, 3)], [(1, 0.55)])
    assert [round(s.start, 2) for s in plain.segments][0] == 2.70
