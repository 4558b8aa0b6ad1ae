"""Forced alignment of a recording to its canonical phones (pocketsphinx en-us acoustic model)."""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import Audio
from .phoneset import PHONE_INDEX, CanonicalPhone


@dataclass(frozen=True)
class PhoneSegment:
    """One canonical phone located in time, with the aligner's scores for it."""

    phone: CanonicalPhone
    start: float  # seconds
    end: float  # seconds, > start
    frames: int  # 10 ms frames
    path_score: float  # aligned log-likelihood (nat) over the segment, frame-normalised by the aligner


@dataclass(frozen=True)
class LoopPhone:
    """One phone of the free phone loop (what the recogniser heard without the text)."""

    base: str  # ARPAbet, or "SIL"
    start: float
    end: float
    score: float  # log-likelihood (nat)


@dataclass(frozen=True)
class Alignment:
    segments: list[PhoneSegment]  # one per canonical phone, in order
    loop: list[LoopPhone]  # free phone loop over the whole recording
    fallback: bool  # True when the forced alignment failed and segments are a fallback
    note: str  # why the fallback was used, "" otherwise
    speech_start: float  # first aligned speech, seconds
    speech_end: float
    pauses: list[tuple[float, float]] = field(default_factory=list)  # silences between words, seconds


# ---------------------------------------------------------------------------------------------
# The aligner
# ---------------------------------------------------------------------------------------------

FRAME_S = 0.01  # pocketsphinx frame shift
SCORE_UNIT_NAT = 0.1024  # one pocketsphinx path-score unit (log base 1.0001, shifted by 10 bits)
SILENCE = "SIL"
_WORD_PREFIX = "__"  # keeps our per-pronunciation words apart from any real dictionary word


@dataclass(frozen=True)
class DecoderSettings:
    """Search settings of one pocketsphinx decoder; the relaxed ones trade speed for robustness."""

    beam: float = 1e-48
    wbeam: float = 7e-29
    pbeam: float = 1e-48
    maxhmmpf: int = 30000

    def as_kwargs(self) -> dict[str, float | int]:
        return {"beam": self.beam, "wbeam": self.wbeam, "pbeam": self.pbeam, "maxhmmpf": self.maxhmmpf}


STRICT_SEARCH = DecoderSettings()
RELAXED_SEARCH = DecoderSettings(beam=1e-100, wbeam=1e-80, pbeam=1e-100, maxhmmpf=-1)
LOOP_LANGUAGE_WEIGHT = 6.5  # pocketsphinx's default for the phone bigram
WIDEN_S = (0.3, 1.0)  # a chunk that fails to align is retried this much wider on each side, in turn
# A word aligned with no overlap with where the transcription heard it, even widened by this much on each side
# (Whisper's word times are rarely further off), is misplaced; a chunk with at least MISPLACED_SHARE of its
# anchored words misplaced (and at least MIN_ANCHORED of them) is aligned again in parts, cut between heard words
ANCHOR_TOLERANCE_S = 0.25
MISPLACED_SHARE = 0.5
MIN_ANCHORED = 2


class AlignmentFailed(RuntimeError):
    """One forced-alignment attempt gave no usable result; the message says why."""


@dataclass(frozen=True)
class _TimedPhone:
    name: str  # ARPAbet base or SIL
    start_frame: int
    frames: int
    score: int  # pocketsphinx path-score units


class ForcedAligner:
    """Aligns recordings to their canonical phones with pocketsphinx's en-us model; never raises on valid audio.

    Decoders are built once and reused; one instance is not safe to share between threads.
    """

    def __init__(self, model_dir: Path | None = None) -> None:
        import pocketsphinx  # imported here so the records above stay importable without it

        self._pocketsphinx = pocketsphinx
        root = Path(model_dir) if model_dir is not None else Path(pocketsphinx.get_model_path())
        self._acoustic_model = root / "en-us" / "en-us"
        self._phone_bigram = root / "en-us" / "en-us-phone.lm.bin"
        self._strict = self._alignment_decoder(STRICT_SEARCH)
        self._relaxed: Any = None  # built on the first hard utterance
        self._loop = self._new_decoder(allphone=str(self._phone_bigram), lw=LOOP_LANGUAGE_WEIGHT)

    # -- public API ---------------------------------------------------------------------------

    def align(self, audio: Audio, phones: list[CanonicalPhone]) -> Alignment:
        raw = audio.to_int16_bytes()
        loop = self.phone_loop(audio, raw)
        if not phones:
            return _assemble([], [], loop, audio.duration, fallback=False, note="no canonical phones")
        notes: list[str] = []
        for settings in (STRICT_SEARCH, RELAXED_SEARCH):
            try:
                timed = self._align_once(self._decoder_for(settings), raw, phones)
                segments, pauses = _segments_from(timed, phones, audio.duration)
                note = "" if not notes else "aligned on relaxed retry after: " + notes[0]
                return _assemble(segments, pauses, loop, audio.duration, fallback=False, note=note)
            except AlignmentFailed as err:
                notes.append(str(err))
            except Exception as err:  # noqa: BLE001 - a C decoder's failure must become a fallback, not a crash
                notes.append(f"decoder error: {err}")
        segments = uniform_segments(audio, phones)
        return _assemble(segments, [], loop, audio.duration, fallback=True,
                         note="uniform fallback: " + "; ".join(notes))

    def align_chunks(self, audio: Audio, phones: list[CanonicalPhone], chunks: list[tuple[float, float, int, int]],
                     spare_cuts: list[tuple[int, float]] = (),
                     anchors: list[tuple[float, float] | None] | None = None) -> Alignment:
        """Align each chunk (start s, end s, first word, end word) on its own stretch of audio, then join.

        Long readings and long pauses defeat one whole-utterance search (it falls back or puts a word on the
        wrong side of a pause); chunks cut at verified pauses keep each search short. A chunk whose search
        fails is split again at the spare cut (first word of the second part, time s) nearest its middle,
        down to single words, before its phones are spread uniformly. The phone loop runs over the whole
        recording. No chunks and no spare cuts is the same as `align`.

        anchors: per word of the text, where a transcription heard it (start s, end s), None where it did not. A
        chunk whose words mostly lie elsewhere (`misplaced`) is split between two heard words, nearest its middle,
        and the parts are kept when fewer words are misplaced so: on a poor reading the search can take the first
        words' audio for silence and squeeze the rest into the last few hundred milliseconds.
        """
        if len(chunks) <= 1 and not spare_cuts and not anchors:
            return self.align(audio, phones)
        chunks = chunks or [(0.0, audio.duration, 0, phones[-1].word_index + 1 if phones else 0)]
        segments: list[PhoneSegment] = []
        pauses: list[tuple[float, float]] = []
        notes: list[str] = []
        for chunk in chunks:
            for sub, start in self._align_chunk(audio, phones, chunk, list(spare_cuts), anchors):
                shifted = [_shifted(s, start) for s in sub.segments]
                if segments and shifted:
                    shifted = _after(shifted, segments[-1].end)  # a widened retry may reach into the previous chunk
                if segments and shifted and shifted[0].start > segments[-1].end:  # the silence at the seam
                    pauses.append((segments[-1].end, shifted[0].start))
                segments += shifted
                pauses += [(p0 + start, p1 + start) for p0, p1 in sub.pauses]
                if sub.fallback:
                    notes.append(sub.note)
        return _assemble(segments, sorted(pauses), self.phone_loop(audio), audio.duration,
                         fallback=bool(notes), note="; ".join(notes))

    def _align_chunk(self, audio: Audio, phones: list[CanonicalPhone], chunk: tuple[float, float, int, int],
                     spare_cuts: list[tuple[int, float]],
                     anchors: list[tuple[float, float] | None] | None = None) -> list[tuple[Alignment, float]]:
        start, end, first_word, end_word = chunk
        part = [p for p in phones if first_word <= p.word_index < end_word]
        if not part:
            return []
        a, b = int(round(start * audio.sample_rate)), int(round(end * audio.sample_rate))
        result = self.align(Audio(audio.samples[a:b], audio.sample_rate), part)
        if anchors and not result.fallback:
            return self._anchored(audio, phones, chunk, spare_cuts, anchors, result)
        inside = [(w, t) for w, t in spare_cuts if first_word < w < end_word and start < t < end]
        if result.fallback and not inside:  # a cut may have sliced a word: give the search some of each neighbour
            for widen in WIDEN_S:
                wide_start, wide_end = max(0.0, start - widen), min(audio.duration, end + widen)
                a, b = int(round(wide_start * audio.sample_rate)), int(round(wide_end * audio.sample_rate))
                wider = self.align(Audio(audio.samples[a:b], audio.sample_rate), part)
                if not wider.fallback:
                    return [(wider, wide_start)]
        if not result.fallback or not inside:
            if result.fallback:
                result = _noted(result, f"words {first_word}-{end_word - 1}: {result.note}")
            return [(result, start)]
        word, time = min(inside, key=lambda c: abs(c[1] - 0.5 * (start + end)))
        return (self._align_chunk(audio, phones, (start, time, first_word, word), spare_cuts, anchors)
                + self._align_chunk(audio, phones, (time, end, word, end_word), spare_cuts, anchors))

    def _anchored(self, audio: Audio, phones: list[CanonicalPhone], chunk: tuple[float, float, int, int],
                  spare_cuts: list[tuple[int, float]], anchors: list[tuple[float, float] | None],
                  result: Alignment) -> list[tuple[Alignment, float]]:
        """The chunk's alignment, or its parts aligned apart when that misplaces fewer of its heard words."""
        start, end, first_word, end_word = chunk
        whole = [(result, start)]
        anchored, wrong = misplaced(_pieces_spans(whole), anchors)
        cuts = [(w, t) for w, t in anchor_cuts(anchors) if first_word < w < end_word and start < t < end]
        if anchored < MIN_ANCHORED or wrong < MISPLACED_SHARE * anchored or not cuts:
            return whole
        word, time = min(cuts, key=lambda c: abs(c[1] - 0.5 * (start + end)))
        parts = (self._align_chunk(audio, phones, (start, time, first_word, word), spare_cuts, anchors)
                 + self._align_chunk(audio, phones, (time, end, word, end_word), spare_cuts, anchors))
        if any(p.fallback for p, _ in parts) or misplaced(_pieces_spans(parts), anchors)[1] >= wrong:
            return whole
        return parts

    def phone_loop(self, audio: Audio, raw: bytes | None = None) -> list[LoopPhone]:
        """Free phone recognition (phone bigram, no text); empty when the search yields nothing."""
        raw = audio.to_int16_bytes() if raw is None else raw
        try:
            decoder = self._loop
            forget_history(decoder)
            decoder.start_utt()
            decoder.process_raw(raw, full_utt=True)
            decoder.end_utt()
            logmath = decoder.get_logmath()
            # hyp() crashed after this search in a probe; seg() is safe
            return [_loop_phone(seg, logmath, audio.duration) for seg in decoder.seg()]
        except Exception:  # noqa: BLE001 - the loop is auxiliary; features cope with an empty one
            return []

    def choose_alternatives(self, audio: Audio, words: list[list[tuple[str, ...]]]) -> AlternativeChoice | None:
        """Force-align `words`, each a list of alternative pronunciations (ARPAbet bases, no stress), letting the
        search pick one per word (pocketsphinx alternates WORD, WORD(2), ...).

        Returns the index chosen per word and the mean path score per 10 ms frame (nat, silences included, so
        readings of the same audio compare), or None when both the strict and the relaxed search fail.
        Raises ValueError when a word has no pronunciation.
        """
        if not words or any(not w for w in words):
            raise ValueError("every word needs at least one pronunciation")
        raw = audio.to_int16_bytes()
        for settings in (STRICT_SEARCH, RELAXED_SEARCH):
            try:
                return _choose_once(self._decoder_for(settings), raw, words)
            except Exception:  # noqa: BLE001 - a failed search (or C decoder error) means: try relaxed, then give up
                continue
        return None

    # -- decoders -----------------------------------------------------------------------------

    def _new_decoder(self, **settings: Any) -> Any:
        with tempfile.TemporaryDirectory() as folder:
            empty_dictionary = Path(folder) / "empty.dict"
            empty_dictionary.write_text("")
            return self._pocketsphinx.Decoder(
                hmm=str(self._acoustic_model), dict=str(empty_dictionary), lm=None,
                samprate=16000, bestpath=False, loglevel="FATAL", **settings,
            )

    def _alignment_decoder(self, settings: DecoderSettings) -> Any:
        return self._new_decoder(**settings.as_kwargs())

    def _decoder_for(self, settings: DecoderSettings) -> Any:
        if settings is STRICT_SEARCH:
            return self._strict
        if self._relaxed is None:
            self._relaxed = self._alignment_decoder(RELAXED_SEARCH)
        return self._relaxed

    # -- one attempt --------------------------------------------------------------------------

    def _align_once(self, decoder: Any, raw: bytes, phones: list[CanonicalPhone]) -> list[_TimedPhone]:
        alignment = _two_pass(decoder, raw, _word_names(decoder, phones))
        return [_TimedPhone(p.name, p.start, p.duration, p.score) for p in alignment.phones()]


def _two_pass(decoder: Any, raw: bytes, word_names: list[str]) -> Any:
    """pocketsphinx's alignment of raw audio to dictionary words: a word pass, then a phone pass, from a clean state."""
    forget_history(decoder)
    decoder.set_align_text(" ".join(word_names))
    _decode(decoder, raw)
    if decoder.hyp() is None:
        raise AlignmentFailed("the word pass reached no end state")
    decoder.set_alignment()
    _decode(decoder, raw)
    alignment = decoder.get_alignment()
    if alignment is None:
        raise AlignmentFailed("the phone pass gave no alignment")
    return alignment


@dataclass(frozen=True)
class AlternativeChoice:
    """What `ForcedAligner.choose_alternatives` found."""

    chosen: list[int]  # per word, the index of the pronunciation the search picked
    score_per_frame: float  # mean path score per frame over the whole alignment, nat


def _choose_once(decoder: Any, raw: bytes, words: list[list[tuple[str, ...]]]) -> AlternativeChoice:
    alignment = _two_pass(decoder, raw, [_alternates_name(decoder, alternatives) for alternatives in words])
    picked = [w.name for w in alignment.words() if w.name.startswith(_WORD_PREFIX)]
    if len(picked) != len(words):
        raise AlignmentFailed(f"aligned {len(picked)} words, expected {len(words)}")
    phones = list(alignment.phones())
    frames = sum(p.duration for p in phones)
    score = sum(p.score for p in phones) * SCORE_UNIT_NAT / max(frames, 1)
    return AlternativeChoice([_alternate_index(name) for name in picked], float(score))


def _alternates_name(decoder: Any, alternatives: list[tuple[str, ...]]) -> str:
    """One dictionary word with the alternatives as WORD, WORD(2), ...; named after them so entries are reused."""
    key = "|".join(" ".join(a) for a in alternatives)
    name = _WORD_PREFIX + "alt" + hashlib.sha1(key.encode()).hexdigest()[:16]
    if decoder.lookup_word(name) is None:
        for k, phones in enumerate(alternatives):
            decoder.add_word(name if k == 0 else f"{name}({k + 1})", " ".join(phones), True)
    return name


def _alternate_index(name: str) -> int:
    """'__altX' -> 0, '__altX(3)' -> 2."""
    return int(name[name.rindex("(") + 1:-1]) - 1 if name.endswith(")") else 0


def word_spans(word_index: list[int], starts, ends) -> list[tuple[float, float, int]]:
    """Per word, in word order, its aligned (start s, end s, phone count) from its phones' word indices and
    spans (seconds); words without phones are left out."""
    spans: dict[int, list] = {}
    for k, start, end in zip(word_index, starts, ends):
        span = spans.setdefault(k, [float(start), float(end), 0])
        span[1], span[2] = float(end), span[2] + 1
    return [tuple(spans[k]) for k in sorted(spans)]


def misplaced(spans: dict[int, tuple[float, float]], anchors: list[tuple[float, float] | None],
              tolerance: float = ANCHOR_TOLERANCE_S) -> tuple[int, int]:
    """(words with both an aligned span and an anchor, those of them misplaced): the aligned span (s, by word
    index) does not overlap the anchor (where the transcription heard the word) widened by `tolerance` s."""
    pairs = [(spans[k], anchors[k]) for k in spans if k < len(anchors) and anchors[k] is not None]
    wrong = sum(e < a - tolerance or s > b + tolerance for (s, e), (a, b) in pairs)
    return len(pairs), wrong


def anchor_cuts(anchors: list[tuple[float, float] | None]) -> list[tuple[int, float]]:
    """(first word after the cut, time s) midway between every two consecutive heard words that do not overlap."""
    return [(k + 1, round(0.5 * (a[1] + b[0]), 3)) for k, (a, b) in enumerate(zip(anchors, anchors[1:]))
            if a is not None and b is not None and b[0] >= a[1]]


def _pieces_spans(pieces: list[tuple[Alignment, float]]) -> dict[int, tuple[float, float]]:
    """Per word index, the (start, end) seconds of its phones over alignments of chunks starting at the offsets."""
    segments = [(s.phone.word_index, s.start + offset, s.end + offset) for a, offset in pieces for s in a.segments]
    index, starts, ends = zip(*segments) if segments else ((), (), ())
    return {k: (start, end) for k, (start, end, _) in zip(sorted(set(index)), word_spans(index, starts, ends))}


def forget_history(decoder: Any) -> None:
    """Make a reused pocketsphinx decoder treat the next utterance as its first (in ~0.1 ms).

    Its live cepstral mean normalisation (`cmn="live"`, the default) starts each utterance from the mean of the
    previous ones, so scores depended on what was decoded before (issue 12, part 5). `set_cmn` restores the mean
    but not the running sums behind it; `reinit_feat` rebuilds the feature computation from the config, so the mean
    restarts from `cmninit`, exactly as in a decoder just built.
    """
    decoder.reinit_feat()


def _decode(decoder: Any, raw: bytes) -> None:
    decoder.start_utt()
    decoder.process_raw(raw, full_utt=True)
    decoder.end_utt()


def _word_names(decoder: Any, phones: list[CanonicalPhone]) -> list[str]:
    """One dictionary word per canonical word, named after its pronunciation so entries are reused."""
    names = []
    for word in _group_by_word(phones):
        pronunciation = " ".join(p.base for p in word)
        name = _WORD_PREFIX + "_".join(p.base.lower() for p in word)
        if decoder.lookup_word(name) is None:
            decoder.add_word(name, pronunciation, True)
        names.append(name)
    return names


def _group_by_word(phones: list[CanonicalPhone]) -> list[list[CanonicalPhone]]:
    words: list[list[CanonicalPhone]] = []
    for i, phone in enumerate(phones):
        if i == 0 or phone.word_index != phones[i - 1].word_index:
            words.append([])
        words[-1].append(phone)
    return words


def _loop_phone(seg: Any, logmath: Any, duration: float) -> LoopPhone:
    name = seg.word.upper()
    base = name if name in PHONE_INDEX else SILENCE
    start = min(seg.start_frame * FRAME_S, duration)
    end = min((seg.end_frame + 1) * FRAME_S, duration)
    score = logmath.log(seg.ascore) * SCORE_UNIT_NAT if seg.ascore > 0 else 0.0
    return LoopPhone(base, start, max(end, start), float(score))


def _segments_from(
    timed: list[_TimedPhone], phones: list[CanonicalPhone], duration: float
) -> tuple[list[PhoneSegment], list[tuple[float, float]]]:
    """Map the aligner's phones onto the canonical ones; silences become pauses."""
    speech = [t for t in timed if t.name != SILENCE]
    got = [t.name for t in speech]
    want = [p.base for p in phones]
    if got != want:
        raise AlignmentFailed(f"aligned phones {' '.join(got)} differ from canonical {' '.join(want)}")
    if any(t.frames < 1 for t in speech):
        raise AlignmentFailed("a phone got no frames")
    segments = []
    for t, phone in zip(speech, phones):
        start = min(t.start_frame * FRAME_S, duration)
        end = min((t.start_frame + t.frames) * FRAME_S, duration)
        if end <= start:
            raise AlignmentFailed(f"phone {phone.base} lies past the end of the audio")
        segments.append(PhoneSegment(phone, start, end, t.frames, t.score * SCORE_UNIT_NAT))
    first, last = segments[0].start, segments[-1].end
    pauses = [
        (t.start_frame * FRAME_S, min((t.start_frame + t.frames) * FRAME_S, duration))
        for t in timed
        if t.name == SILENCE and first <= t.start_frame * FRAME_S < last
    ]
    return segments, pauses


def _noted(alignment: Alignment, note: str) -> Alignment:
    return Alignment(alignment.segments, alignment.loop, alignment.fallback, note, alignment.speech_start,
                     alignment.speech_end, alignment.pauses)


def _after(segments: list[PhoneSegment], time: float) -> list[PhoneSegment]:
    """Segments in order from `time` on: one that began before it starts at it, and one that also ended before
    it (a widened retry that placed the word inside the previous chunk) is kept as one frame at the seam."""
    out = []
    for s in segments:
        start = max(s.start, time)
        end = max(s.end, start + FRAME_S)
        out.append(s if (start, end) == (s.start, s.end) else PhoneSegment(s.phone, start, end, s.frames, s.path_score))
        time = end
    return out


def _shifted(segment: PhoneSegment, seconds: float) -> PhoneSegment:
    return PhoneSegment(segment.phone, segment.start + seconds, segment.end + seconds, segment.frames, segment.path_score)


def _assemble(
    segments: list[PhoneSegment], pauses: list[tuple[float, float]], loop: list[LoopPhone],
    duration: float, fallback: bool, note: str,
) -> Alignment:
    if segments:
        speech_start, speech_end = segments[0].start, segments[-1].end
    else:
        speech_start, speech_end = 0.0, duration
    return Alignment(segments, loop, fallback, note, speech_start, speech_end, pauses)


# -- fallback -----------------------------------------------------------------------------------

def speech_region(audio: Audio, floor_db: float = 35.0) -> tuple[int, int]:
    """First and one-past-last 10 ms frame whose energy is within floor_db of the loudest frame."""
    hop = int(audio.sample_rate * FRAME_S)
    n_frames = max(1, len(audio.samples) // hop)
    frames = audio.samples[: n_frames * hop].reshape(n_frames, -1) if len(audio.samples) >= hop \
        else audio.samples.reshape(1, -1)
    energy_db = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy_db >= energy_db.max() - floor_db)
    if loud.size == 0:
        return 0, n_frames
    return int(loud[0]), int(loud[-1]) + 1


def uniform_segments(audio: Audio, phones: list[CanonicalPhone]) -> list[PhoneSegment]:
    """Spread the canonical phones evenly over the speech region, at least one frame each where it fits."""
    n = len(phones)
    first, last = speech_region(audio)
    total_frames = max(1, int(round(audio.duration / FRAME_S)))
    first, last = _widen(first, last, n, total_frames)
    bounds = np.linspace(first, last, n + 1)
    if last - first >= n:
        bounds = np.round(bounds)  # whole frames, each phone >= 1
    seconds = np.minimum(bounds * FRAME_S, audio.duration)
    return [
        PhoneSegment(phone, float(seconds[i]), float(seconds[i + 1]),
                     max(1, int(round(bounds[i + 1] - bounds[i]))), 0.0)
        for i, phone in enumerate(phones)
    ]


def _widen(first: int, last: int, n_phones: int, total_frames: int) -> tuple[int, int]:
    """Grow the region around its centre until every phone can have a frame (or the audio runs out)."""
    if last - first >= n_phones:
        return first, last
    if total_frames <= n_phones:
        return 0, total_frames
    missing = n_phones - (last - first)
    first = max(0, min(first - (missing + 1) // 2, total_frames - n_phones))
    return first, min(total_frames, max(last, first + n_phones))
