"""Reading verification: is there speech, is it English, and which words of the text were actually read.

The stage between the audio and the alignment. Its evidence, all from models that ship in PyPI packages:
- Silero VAD (inside faster-whisper) finds speech and the pauses between stretches of it;
- Whisper base (CTranslate2) identifies the language;
- a free English transcription with word times (greedy decoding, never told the text, so it cannot be
  lenient towards it);
- the text itself forced through Whisper's decoder: each reference word's probability given the audio (a long
  text in pieces of at most 200 tokens, each after the text before it as Whisper's previous-text prompt: the
  decoder has 448 positions).

A reference word counts as read when the free transcription aligns to it with the same phones or when its
forced probability reaches `read_probability`; otherwise it is omitted (nothing heard in its place) or
substituted (another word heard there). Heard words aligned to no reference word are insertions, or
repetitions when they repeat a neighbouring word. Words are aligned by a weighted edit distance whose
substitution cost is the phone edit distance of the two words (Levenshtein, rapidfuzz).

Records crossing the module boundary: `Verification` (per utterance) with one `WordCheck` per reference
word and the `Insertion`s; `Chunk`s tell the aligner where the recording may be cut at a pause.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import numpy as np

from .audio import Audio, AudioError
from .lexicon import Lexicon, TextError, normalise_text
from .miscues import DOUBLED_UNKNOWN, MiscueDetector
from .phone_gains import PhoneGains, phone_ids, text_lpr, window_gains, window_replace_gains
from .phoneset import split_stress
from .text_language import TextLanguage, identify

WINDOW_S = 30.0  # Whisper's input window
# Whisper's decoder has 448 positions: a window's text is forced in pieces of at most this many tokens, each after
# at most PREVIOUS_TOKENS tokens of the text before it (1 + 200 + 4 prompt tokens + 200 + end of text < 448)
FORCED_PIECE_TOKENS = 200
PREVIOUS_TOKENS = 200
# the doubled-word evidence forces the text once per word of a window: skipped for windows of more words than this
# (their words get miscues.DOUBLED_UNKNOWN)
DOUBLED_MAX_WORDS = 40
READ, OMITTED, SUBSTITUTED = "read", "omitted", "substituted"
MIN_GAP_S = 0.05  # seconds; a gap shorter than this between two aligned words is no span for an insertion


class NoSpeechError(AudioError):
    """The recording holds no speech to assess (silence, noise, tones); the message says what was found."""


@dataclass(frozen=True)
class VerifierConfig:
    """Decision thresholds; the defaults were chosen by cross-validation on train (docs/verification.md)."""

    min_speech_s: float = 0.15  # less voice activity than this is refused as no speech
    # Whisper's own defaults (openai/whisper, faster-whisper): a window whose no-speech probability is above the
    # first while its transcription's mean log-probability is under the second holds no speech
    no_speech_probability: float = 0.6
    no_speech_logprob: float = -1.0
    read_probability: float = 0.03  # forced probability from which a reference word counts as read
    similar_word: float = 0.25  # phone edit distance (0-1) up to which a heard word is the same word, misread
    # an extra word this close to a neighbour is named a Repetition: on the 416 stored train cases, 0.5 names 20 of
    # the repeated-word cases' extra words so (0.25: 12) and no extra word of a spliced-in word or an untouched reading
    repetition_distance: float = 0.5
    insertion_probability: float = 0.9  # a heard word aligned to nothing is reported from this confidence
    substitution_probability: float = 0.95  # another word heard in a word's place counts from this confidence
    unsure_read_probability: float = 0.0  # ...below it, the word still counts as read only from this forced probability
    non_english_probability: float = 0.8  # language identification this sure of another language flags the audio
    mismatch_share: float = 0.5  # below this share of words read, the audio does not match the text
    mismatch_forced: float = 0.02  # below this median forced word probability, the audio is of another text
    # ...unless the phone recogniser, which has no language model, finds the text this likely: its log posterior
    # ratio per phone (Evidence.text_lpr, nats) at or above this, the language not identified as another with
    # confidence. Whisper misses accented readings of names and letters ("JIM CAN SEE THE T V ROOM" heard "JIM
    # CASSINE'S TV VIEW"). At most 1% of each kind of train recordings that are not readings of their text (another
    # text, clean or in white noise at 0-10 dB SNR; other languages) reach it (recipes/local/text_lpr_threshold.py,
    # docs/verification.md); None: no such check
    read_text_lpr: float | None = -1.917
    # a reading that broke off: this many words or more unread at the end, after a start read this completely
    stopped_min_words: int = 2
    stopped_read_share: float = 0.75
    # a text of more phones than this per second of voice activity cannot have been read in the recording (train
    # readings: at most 11.8, median 6.9); the repeated text of a long, repetitive text otherwise looks likely
    max_phones_per_second: float = 25.0
    # the text detector saw texts of at least this many words (train readings: 4 of 2260 are shorter); a shorter
    # aligned text is judged word by word by the word detector, where "another text" is "this word not read"
    min_text_words: int = 3
    # in such a short text, a word the prompted transcription heard this far (phone edit distance, 0-1) from the
    # chosen pronunciation is another word: "ask" for "asked" (AE S T) is 0.33, a misheard short word is often 1.0
    short_text_other_word: float = 0.5
    # a word both transcriptions heard as the same other word is substituted when its forced probability is under this
    agreed_forced: float = 0.01
    squeezed_s: float = 0.045  # a read word aligned to at most this many seconds per phone is...
    squeezed_forced: float = 0.3  # ...omitted when its forced probability is also below this (alignment evidence)
    gap_speech_s: float = 99.0  # voice activity this long between two aligned words is an unrecognised insertion
    min_pause_s: float = 0.15  # silences at least this long may cut the alignment into chunks
    max_boundary_distance_s: float = 0.4  # how far a word boundary may lie from a silence to cut there
    max_chunk_s: float = 6.0  # longer chunks are cut again at the widest gap between two read words


@dataclass(frozen=True)
class HeardWord:
    """One word of the free transcription (after text normalisation), with its time span in seconds."""

    text: str
    start: float
    end: float
    probability: float  # the recogniser's own confidence, 0-1
    phones: tuple[str, ...]  # ARPAbet without stress


@dataclass(frozen=True)
class WordCheck:
    """What the verification found for one reference word."""

    status: str  # "read", "omitted" or "substituted"
    heard: str | None  # the heard word aligned to it (None when nothing was heard there)
    probability: float  # forced probability of the reference word given the audio, 0-1
    start: float | None  # the aligned heard word's span (seconds), None when nothing was heard
    end: float | None
    reversed: bool = False  # read, but in swapped order with a neighbouring word (a reversal miscue)


@dataclass(frozen=True)
class Insertion:
    """A heard word that is not in the text."""

    text: str
    start: float  # seconds
    end: float
    kind: str  # "Insertion" or "Repetition"
    after_word: int  # index of the reference word it follows, -1 before the first


@dataclass(frozen=True)
class Chunk:
    """A stretch of the recording [start, end) seconds holding reference words [first_word, end_word)."""

    start: float
    end: float
    first_word: int
    end_word: int


@dataclass(frozen=True)
class Verification:
    speech_found: bool
    speech_seconds: float
    language: str
    language_probability: float
    transcript: str  # the free transcription, as the recogniser wrote it
    share_read: float  # 0-1: the share of the text's words that were read
    matches_text: bool
    warnings: tuple[str, ...]
    words: tuple[WordCheck, ...]
    insertions: tuple[Insertion, ...]
    pauses: tuple[tuple[float, float], ...] = field(default=())  # silences between stretches of speech, seconds
    evidence: Evidence | None = None  # what the decisions were taken on (kept to confirm them after alignment)

    def to_dict(self) -> dict:
        """The JSON-ready summary the response carries (per-word checks go into the words themselves)."""
        summary = {k: v for k, v in asdict(self).items() if k not in ("words", "pauses", "evidence")}
        return json.loads(json.dumps(summary))  # tuples -> lists


@dataclass(frozen=True)
class Evidence:
    """What the models found in one recording, before thresholds: `decide` turns it into a Verification."""

    speech_seconds: float
    language: str
    language_probability: float
    heard: tuple[HeardWord, ...]
    forced: tuple[float, ...]  # per reference word, 0-1
    pauses: tuple[tuple[float, float], ...]
    no_words: bool = False  # Whisper's no-speech test says no window holds speech (its default thresholds)
    speech: tuple[tuple[float, float], ...] = ()  # voice activity (Silero VAD), seconds
    # a second transcription, with the text given to Whisper as the previous text: it spells L2 speech as the
    # reference words where it can, so what it still hears differently (or adds) is stronger evidence
    prompted: tuple[HeardWord, ...] = ()
    # per reference word, the gain in the forced text's log-probability (nats) when the word is read twice:
    # evidence of a repetition or an extra word next to it
    doubled: tuple[float, ...] = ()
    text_language: TextLanguage | None = None  # the language of the text itself (None: not checked)
    # the phone recogniser's likelihood ratios of the text with a word skipped, repeated, or unknown phones inserted
    # after it (encoder/phone_gains.py; no language model); None: not computed
    phone_gains: PhoneGains | None = None
    # per reference word, log P(text with the prompted transcription's other word in its place) - log P(text) under
    # the phone recogniser (nats; encoder.phone_gains.replace_gains); None where that transcription heard the word
    # (or nothing) there, or for evidence gathered before session 14
    other_word_gains: tuple[float | None, ...] | None = None
    # the text's log posterior ratio per phone under the phone recogniser (encoder.phone_gains.text_lpr, nats);
    # None where not measured (or for evidence gathered before session 17)
    text_lpr: float | None = None

    @classmethod
    def from_dict(cls, e: dict) -> "Evidence":
        """The inverse of `dataclasses.asdict` (lists back to tuples); fields missing from older records default."""
        def words(key):
            return tuple(HeardWord(**{**h, "phones": tuple(h["phones"])}) for h in e.get(key, ()))

        return cls(e["speech_seconds"], e["language"], e["language_probability"], words("heard"), tuple(e["forced"]),
                   tuple(tuple(p) for p in e["pauses"]), e.get("no_words", False),
                   tuple(tuple(p) for p in e.get("speech", ())), words("prompted"), tuple(e.get("doubled", ())),
                   TextLanguage(**e["text_language"]) if e.get("text_language") else None,
                   PhoneGains(**{k: tuple(v) for k, v in e["phone_gains"].items()}) if e.get("phone_gains") else None,
                   tuple(e["other_word_gains"]) if e.get("other_word_gains") is not None else None,
                   e.get("text_lpr"))


# ---------------------------------------------------------------------------------------------
# Pure decision logic (tested without any model)
# ---------------------------------------------------------------------------------------------

def decide(evidence: Evidence, words: list[str], reference: list[tuple[str, ...]], config: VerifierConfig,
           aligned: list[tuple[float, float, int]] | None = None, detector: MiscueDetector | None = None) -> Verification:
    """Apply the thresholds of `config` to the evidence of one recording.

    aligned: per reference word, (start s, end s, phone count) from the alignment. With a `detector`
    (encoder/miscues.py) the aligned recording's word and gap decisions are the detector's; without one, a read
    word squeezed to the aligner's minimum with a low forced probability is an omission, and voice activity
    between two aligned words that no word explains is an insertion.
    When the recording is judged not to be a reading of the text (by the detector's text model, else when the
    median forced word probability is under `mismatch_forced`), only words the free transcription has count
    as read, by the rules.
    """
    forced = list(evidence.forced)
    by_word = _judged_word_by_word(reference, config, aligned, detector)
    # Whisper base's no-speech test fires on many single words read alone; the VAD has found speech by now
    no_words = evidence.no_words and not by_word
    other_text = _other_text(evidence, reference, config, by_word, detector)
    strict = replace(config, read_probability=np.inf, substitution_probability=0.0) if other_text else config
    checks, insertions = check_words(reference, list(evidence.heard), forced, strict)
    foreign = evidence.text_language if evidence.text_language and evidence.text_language.foreign else None
    # language identification alone misjudges short or strongly accented readings (train cases: it added no
    # other-language recording the text detector missed and called 11 readings not English), so it only names
    # what the text judgement found (a recording that is not a reading of its text), or what the phone
    # recogniser does not find the text in (Whisper hears an English translation in French speech)
    not_english = foreign is not None or (_not_english(evidence.language, evidence.language_probability, config)
                                          and (other_text or by_word or _text_not_heard(evidence, config)))
    if aligned is not None and detector is not None and not (other_text or not_english or no_words):
        checks, insertions = _detected(evidence, words, reference, aligned, detector, checks, insertions, config,
                                       by_word)
    elif aligned is not None:
        checks = [_unless_squeezed(c, (end - start) / n, config) for c, (start, end, n) in zip(checks, aligned)]
        insertions = sorted(insertions + _unexplained_speech(aligned, evidence.speech, insertions, config),
                            key=lambda i: i.start)
    if not (other_text or not_english or no_words):
        checks, insertions = reversals(words, reference, [list(evidence.heard), list(evidence.prompted)], checks,
                                       insertions, config)
    if not_english:  # the heard "words" are English guesses at other-language speech: no insertions from them
        checks = [WordCheck(SUBSTITUTED if c.heard else OMITTED, c.heard, c.probability, c.start, c.end)
                  for c in checks]
        insertions = []
    if no_words:  # forced probabilities mean nothing on audio the recogniser hears no speech in
        checks = [WordCheck(OMITTED, None, c.probability, None, None) for c in checks]
    share, matches, warnings = summarise(checks, insertions, words, evidence.language,
                                         evidence.language_probability, config, other_text or no_words,
                                         foreign, not_english)
    return Verification(True, evidence.speech_seconds, evidence.language, evidence.language_probability,
                        " ".join(h.text for h in evidence.heard), round(share, 3), matches, tuple(warnings),
                        tuple(checks), tuple(insertions), evidence.pauses, evidence)


def _judged_word_by_word(reference: list[tuple[str, ...]], config: VerifierConfig,
                         aligned: list[tuple[float, float, int]] | None, detector: MiscueDetector | None) -> bool:
    """A text too short for the whole-text judgements (`min_text_words`), aligned, with a word detector to judge
    each word: for one word, "another text" and "no words heard" are "this word was not read"."""
    return aligned is not None and detector is not None and len(reference) < config.min_text_words


def _other_text(evidence: Evidence, reference: list[tuple[str, ...]], config: VerifierConfig,
                by_word: bool, detector: MiscueDetector | None = None) -> bool:
    """Whether the recording is not a reading of this text at all (then only clearly heard words count as read)."""
    forced = list(evidence.forced)
    if _too_long(reference, evidence.speech_seconds, config):  # Whisper's language model happily "hears" more
        return True
    if by_word or heard_as_text(evidence, config):
        return False
    if detector is not None and forced:
        return detector.other_text(evidence, reference) >= detector.text.threshold
    return bool(forced) and float(np.median(forced)) < config.mismatch_forced


def text_check_applies(evidence: Evidence, config: VerifierConfig) -> bool:
    """Whether `read_text_lpr` can change what `decide` makes of this evidence: the text LPR clears it, or it is
    below the threshold while the language identification names another language."""
    return heard_as_text(evidence, config) or (
        _text_not_heard(evidence, config) and _not_english(evidence.language, evidence.language_probability, config))


def _text_lpr_reaches(evidence: Evidence, config: VerifierConfig) -> bool | None:
    """Whether the text LPR is at or above `read_text_lpr`; None where it was not measured or no check is set."""
    if config.read_text_lpr is None or evidence.text_lpr is None:
        return None
    return evidence.text_lpr >= config.read_text_lpr


def _text_not_heard(evidence: Evidence, config: VerifierConfig) -> bool:
    """The phone recogniser's text LPR was measured and falls below `read_text_lpr`."""
    return _text_lpr_reaches(evidence, config) is False


def heard_as_text(evidence: Evidence, config: VerifierConfig) -> bool:
    """The phone recogniser finds the text as likely as readings of their own text are (`read_text_lpr`), and the
    language identification is not sure of another language (synthetic French or German speech comes closest to
    readings of an English text)."""
    return bool(_text_lpr_reaches(evidence, config)) and not _not_english(evidence.language,
                                                                         evidence.language_probability, config)


def _detected(evidence: Evidence, words: list[str], reference: list[tuple[str, ...]],
              aligned: list[tuple[float, float, int]], detector: MiscueDetector, checks: list[WordCheck],
              insertions: list[Insertion], config: VerifierConfig,
              by_word: bool = False) -> tuple[list[WordCheck], list[Insertion]]:
    """The detector's word flags (plus words both transcriptions heard as the same other word) and insertions;
    the rules' insertions before the first and after the last word stay (the detector looks only between words).
    by_word (a text too short for the text detector): a word the prompted transcription heard as another word
    is not read either, in place of the whole-text judgement."""
    not_read = detector.not_read(evidence, reference, aligned) >= detector.word.threshold
    prompted = _in_place(reference, list(evidence.prompted))
    agreed = _agreed_substitutions(evidence, words, reference, prompted, config)
    if by_word:  # either transcription's other word counts only where the phone recogniser agrees
        agreed = [(a or _heard_other(ref, p, config)) and _recogniser_agrees(evidence, i)
                  for i, (a, ref, p) in enumerate(zip(agreed, reference, prompted))]
    decided = [_flagged(c, w, p) if flag or other else replace(c, status=READ)
               for c, w, p, flag, other in zip(checks, words, prompted, not_read, agreed)]
    extra = detector.extra_read(evidence, reference, aligned) >= detector.gap.threshold
    candidates = check_words(reference, list(evidence.heard), list(evidence.forced),
                             VerifierConfig(insertion_probability=0.0))[1]
    found = [_gap_insertion(k, candidates, evidence, words, aligned) for k in np.flatnonzero(extra)]
    edges = [i for i in insertions if i.after_word in (-1, len(words) - 1)]
    return decided, sorted(found + edges, key=lambda i: i.start)


def _agreed_substitutions(evidence: Evidence, words: list[str], reference: list[tuple[str, ...]],
                          prompted: list[HeardWord | None], config: VerifierConfig) -> list[bool]:
    """Per word: both transcriptions (the free one and the one given the text) heard the same other word in its
    place, and the forced word is unlikely. On the words of 160 untouched train readings this held for 24, of
    which 23 the annotators scored 3 of 10 (misread); recipes/local/agreed_substitutions.py."""
    plain = _in_place(reference, list(evidence.heard))
    return [a is not None and b is not None and a.text == b.text != word and forced < config.agreed_forced
            and phone_distance(ref, a.phones) > config.similar_word
            for a, b, word, ref, forced in zip(plain, prompted, words, reference, evidence.forced)]


def reversals(words: list[str], reference: list[tuple[str, ...]], transcriptions: list[list[HeardWord]],
              checks: list[WordCheck], insertions: list[Insertion],
              config: VerifierConfig) -> tuple[list[WordCheck], list[Insertion]]:
    """Two neighbouring words read in swapped order: both count as read and carry `reversed`, and a heard word
    that had been reported as an insertion for it is no longer one.

    transcriptions: the free one first, then the prompted one (which keeps the text's order more often, so a swap
    it still hears is strong evidence). A swap is two adjacent heard words that are the text's words k + 1 and k
    (the same spelling, or within `similar_word` phone distance of the chosen pronunciation), neither aligned
    (align_words) to a word of the text outside k and k + 1, where words k and k + 1 differ.
    """
    checks = list(checks)
    # each transcription laid over the text once: heard index -> the text word it is aligned to
    owners = [{h: r for r, h in align_words(reference, [w.phones for w in heard]) if h is not None}
              for heard in transcriptions]
    k = 0
    while k < len(reference) - 1:
        pair = next((p for heard, owner in zip(transcriptions, owners)
                     if (p := _swapped_pair(k, words, reference, heard, owner, config))), None)
        if pair is None:
            k += 1
            continue
        first, second = pair
        checks[k] = replace(checks[k], status=READ, reversed=True, heard=first.text, start=first.start, end=first.end)
        checks[k + 1] = replace(checks[k + 1], status=READ, reversed=True, heard=second.text, start=second.start,
                                end=second.end)
        spans = ((first.start, first.end), (second.start, second.end))
        insertions = [i for i in insertions if not any(_overlaps((i.start, i.end), s) for s in spans)]
        k += 2
    return checks, insertions


def _swapped_pair(k: int, words: list[str], reference: list[tuple[str, ...]], heard: list[HeardWord],
                  owner: dict[int, int], config: VerifierConfig) -> tuple[HeardWord, HeardWord] | None:
    """(the heard word read for text word k, for word k + 1) when the two were read in swapped order, else None.
    owner: heard index -> the text word align_words put it on."""
    if words[k] == words[k + 1] or phone_distance(reference[k], reference[k + 1]) <= config.similar_word:
        return None
    is_word = {r: (lambda h, r=r: h.text == words[r] or
                   phone_distance(reference[r], h.phones) <= config.similar_word) for r in (k, k + 1)}
    for i in range(len(heard) - 1):
        later, earlier = heard[i], heard[i + 1]
        if (is_word[k + 1](later) and is_word[k](earlier)
                and owner.get(i) in (None, k, k + 1) and owner.get(i + 1) in (None, k, k + 1)
                and not any(r in is_word and j not in (i, i + 1) and is_word[r](heard[j]) for j, r in owner.items())):
            return earlier, later  # (the last condition: one of them also heard in its own place is a repetition)
    return None


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return min(a[1], b[1]) > max(a[0], b[0])


def _heard_other(reference: tuple[str, ...], heard: HeardWord | None, config: VerifierConfig) -> bool:
    return heard is not None and phone_distance(reference, heard.phones) > config.short_text_other_word


def _recogniser_agrees(evidence: Evidence, k: int) -> bool:
    """Whether the phone recogniser, which has no language model, also finds the prompted transcription's other
    word in word k's place likelier than the text's word (True where that was not measured). On a word read alone
    Whisper's language model often writes a common word ("asked" with its final phones dropped came out "YES")."""
    gains = evidence.other_word_gains
    return gains is None or gains[k] is None or gains[k] > 0.0


def _flagged(check: WordCheck, word: str, in_place: HeardWord | None) -> WordCheck:
    """A word the detector says was not read: substituted when the prompted transcription, which was given the
    text, still heard another word in its place; else omitted."""
    if in_place is not None and in_place.text != word:
        return WordCheck(SUBSTITUTED, in_place.text, check.probability, in_place.start, in_place.end)
    return WordCheck(OMITTED, None, check.probability, None, None)


def _in_place(reference: list[tuple[str, ...]], heard: list[HeardWord]) -> list[HeardWord | None]:
    """Per reference word, the heard word aligned to it (None where nothing was)."""
    found: list[HeardWord | None] = [None] * len(reference)
    for r, h in align_words(reference, [w.phones for w in heard]):
        if r is not None and h is not None:
            found[r] = heard[h]
    return found


def _gap_insertion(k: int, candidates: list[Insertion], evidence: Evidence, words: list[str],
                   aligned: list[tuple[float, float, int]]) -> Insertion:
    """What was heard in the gap after word k: the free transcription's extra word there, else a neighbour read
    twice when the phone recogniser or the forced text says so, else unrecognised speech over the gap. Where the
    aligner left no gap (it stretched a neighbour over the extra word), the span is the repeated word's, else the
    more stretched neighbour's."""
    heard = next((i for i in candidates if i.after_word == k), None)
    if heard is not None:
        return replace(heard, after_word=int(k))
    again = _repeated_neighbour(k, evidence, len(words))
    start, end = round(aligned[k][1], 2), round(aligned[k + 1][0], 2)
    if end - start < MIN_GAP_S:  # the repeated word's span holds both readings; else the more stretched one's
        stretched = again if again is not None else max(
            (k, k + 1), key=lambda j: (aligned[j][1] - aligned[j][0]) / max(aligned[j][2], 1))
        start, end = round(aligned[stretched][0], 2), round(aligned[stretched][1], 2)
    if again is not None:
        return Insertion(words[again], start, end, "Repetition", int(k))
    return Insertion("(unrecognised speech)", start, end, "Insertion", int(k))


def _repeated_neighbour(k: int, evidence: Evidence, n_words: int) -> int | None:
    """Word k or k + 1 when reading it twice makes the text likelier: by the phone recogniser's repeat gain (no
    language model: Whisper's finds "the the" unlikely however clearly it was said), else by Whisper's forced
    text; None when neither prefers a doubled neighbour."""
    for gains in ((evidence.phone_gains.repeat if evidence.phone_gains is not None else ()), evidence.doubled):
        if len(gains) == n_words and max(gains[k], gains[k + 1]) > 0:
            return k if gains[k] >= gains[k + 1] else k + 1
    return None


def _unexplained_speech(aligned: list[tuple[float, float, int]], speech: tuple[tuple[float, float], ...],
                        known: list[Insertion], config: VerifierConfig) -> list[Insertion]:
    """Insertions for voice activity of at least `gap_speech_s` in a gap between consecutive aligned words."""
    reported = {i.after_word for i in known}
    found = []
    for k in range(len(aligned) - 1):
        gap = (aligned[k][1], aligned[k + 1][0])
        voiced = sum(max(0.0, min(gap[1], b) - max(gap[0], a)) for a, b in speech)
        if voiced >= config.gap_speech_s and k not in reported:
            found.append(Insertion("(unrecognised speech)", round(gap[0], 2), round(gap[1], 2), "Insertion", k))
    return found


def _unless_squeezed(check: WordCheck, seconds_per_phone: float, config: VerifierConfig) -> WordCheck:
    if check.status == READ and seconds_per_phone <= config.squeezed_s and check.probability < config.squeezed_forced:
        return WordCheck(OMITTED, None, check.probability, None, None)
    return check


def _too_long(reference: list[tuple[str, ...]], speech_seconds: float, config: VerifierConfig) -> bool:
    """More phones than anyone reads in the recording's voice activity: the recording cannot hold the text."""
    return sum(len(p) for p in reference) > config.max_phones_per_second * max(speech_seconds, 0.1)


def _not_english(language: str, probability: float, config: VerifierConfig) -> bool:
    return language != "en" and probability >= config.non_english_probability


def phone_distance(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Normalised Levenshtein distance of two phone sequences (stress ignored): 0 equal, 1 nothing shared."""
    from rapidfuzz.distance import Levenshtein

    if not a and not b:
        return 0.0
    return float(Levenshtein.normalized_distance([split_stress(p)[0] for p in a], [split_stress(p)[0] for p in b]))


def align_words(reference: list[tuple[str, ...]], heard: list[tuple[str, ...]]) -> list[tuple[int | None, int | None]]:
    """Minimum-cost alignment of reference and heard words given as phone sequences.

    Returns (reference index or None, heard index or None) pairs in order: both set for a match or
    substitution (cost: their phone distance), heard None for a deletion, reference None for an insertion
    (cost 1 each).
    """
    return list(_aligned_pairs(tuple(map(tuple, reference)), tuple(map(tuple, heard))))


# One decision lays the same transcription over the same text several times (the rules, each detector's
# features, the substitution check); a long reading's alignment is a pure-Python O(n m) table, so it is kept.
@lru_cache(maxsize=16)
def _aligned_pairs(reference: tuple[tuple[str, ...], ...], heard: tuple[tuple[str, ...], ...]
                   ) -> tuple[tuple[int | None, int | None], ...]:
    n, m = len(reference), len(heard)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + phone_distance(reference[i - 1], heard[j - 1]))
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:  # on ties the later of two equal heard words is the inserted one
        if j > 0 and np.isclose(cost[i, j], cost[i, j - 1] + 1):
            pairs.append((None, j - 1)); j -= 1
        elif i > 0 and j > 0 and np.isclose(cost[i, j], cost[i - 1, j - 1] + phone_distance(reference[i - 1], heard[j - 1])):
            pairs.append((i - 1, j - 1)); i, j = i - 1, j - 1
        else:
            pairs.append((i - 1, None)); i -= 1
    return tuple(pairs[::-1])


def check_words(reference: list[tuple[str, ...]], heard: list[HeardWord], forced: list[float],
                config: VerifierConfig) -> tuple[list[WordCheck], list[Insertion]]:
    """Each reference word's status, and the heard words that belong to no reference word."""
    pairs = align_words(reference, [h.phones for h in heard])
    checks: list[WordCheck | None] = [None] * len(reference)
    insertions, last_ref = [], -1
    for r, h in pairs:
        if r is None:
            word = heard[h]
            if word.probability >= config.insertion_probability:
                insertions.append(Insertion(word.text, word.start, word.end,
                                            _insertion_kind(word, reference, last_ref, config), last_ref))
            continue
        last_ref = r
        checks[r] = _check(reference[r], heard[h] if h is not None else None, forced[r], config)
    return [c for c in checks if c is not None], insertions


def _check(reference: tuple[str, ...], heard: HeardWord | None, forced: float, config: VerifierConfig) -> WordCheck:
    same = heard is not None and phone_distance(reference, heard.phones) <= config.similar_word
    unsure = (heard is not None and heard.probability < config.substitution_probability
              and forced >= config.unsure_read_probability)
    if same or unsure or forced >= config.read_probability:
        status = READ
    else:
        status = OMITTED if heard is None else SUBSTITUTED
    if heard is None:
        return WordCheck(status, None, forced, None, None)
    return WordCheck(status, heard.text, forced, heard.start, heard.end)


def _insertion_kind(word: HeardWord, reference: list[tuple[str, ...]], last_ref: int, config: VerifierConfig) -> str:
    """Repetition when the extra word is a neighbour read again (within `repetition_distance`: a repeated word is
    often misheard by a phone, "cat" as CUT), else Insertion."""
    neighbours = [reference[k] for k in (last_ref, last_ref + 1) if 0 <= k < len(reference)]
    same = any(phone_distance(word.phones, n) <= config.repetition_distance for n in neighbours)
    return "Repetition" if same else "Insertion"


def chunks_at_pauses(checks: list[WordCheck], pauses: list[tuple[float, float]], duration: float,
                     config: VerifierConfig) -> list[Chunk]:
    """Cut the recording at silences that fall on a boundary between two read words.

    A boundary (between consecutive read words with heard spans) is matched to the silence nearest to it
    (distance 0 inside it) when within `max_boundary_distance_s`; each silence and boundary is used once.
    """
    boundaries = [(k, 0.5 * (checks[k].end + checks[k + 1].start)) for k in range(len(checks) - 1)
                  if _timed(checks[k]) and _timed(checks[k + 1])]
    cuts: list[tuple[int, float]] = []
    used: set[int] = set()
    for s0, s1 in pauses:
        if s1 - s0 < config.min_pause_s:
            continue
        best = min(((max(s0 - t, t - s1, 0.0), k) for k, t in boundaries if k not in used), default=None)
        if best is not None and best[0] <= config.max_boundary_distance_s:
            used.add(best[1])
            cuts.append((best[1] + 1, round(0.5 * (s0 + s1), 3)))
    chunks = _chunks_from_cuts(sorted(cuts), len(checks), duration)
    return [piece for chunk in chunks for piece in _split_long(chunk, checks, config.max_chunk_s)]


def _split_long(chunk: Chunk, checks: list[WordCheck], max_s: float) -> list[Chunk]:
    """Halve a chunk longer than max_s at the widest heard gap between two read words, recursively."""
    if chunk.end - chunk.start <= max_s:
        return [chunk]
    inner = [(checks[k + 1].start - checks[k].end, k) for k in range(chunk.first_word, chunk.end_word - 1)
             if _timed(checks[k]) and _timed(checks[k + 1])
             and chunk.start + 1.0 < checks[k].end and checks[k + 1].start < chunk.end - 1.0]
    if not inner:
        return [chunk]
    _, k = max(inner)
    cut = round(0.5 * (checks[k].end + checks[k + 1].start), 3)
    return (_split_long(Chunk(chunk.start, cut, chunk.first_word, k + 1), checks, max_s)
            + _split_long(Chunk(cut, chunk.end, k + 1, chunk.end_word), checks, max_s))


def spare_cuts(checks: list[WordCheck]) -> list[tuple[int, float]]:
    """(first word after the cut, time s) at the middle of the heard gap between consecutive read words."""
    return [(k + 1, round(0.5 * (checks[k].end + checks[k + 1].start), 3)) for k in range(len(checks) - 1)
            if _timed(checks[k]) and _timed(checks[k + 1]) and checks[k + 1].start >= checks[k].end]


def _timed(check: WordCheck) -> bool:
    return check.status == READ and check.start is not None and check.end is not None


def _chunks_from_cuts(cuts: list[tuple[int, float]], n_words: int, duration: float) -> list[Chunk]:
    chunks, first, start = [], 0, 0.0
    for word, time in cuts:
        if word <= first or time <= start:  # out of order (overlapping spans): keep the earlier cut
            continue
        chunks.append(Chunk(start, time, first, word))
        first, start = word, time
    chunks.append(Chunk(start, duration, first, n_words))
    return chunks


def stopped_after(checks: list[WordCheck], config: VerifierConfig) -> int | None:
    """The last word read, when the reading stopped there: at least `stopped_min_words` words after it unread with
    nothing heard in their place (a word heard as another word was still read out), and at least
    `stopped_read_share` of the words up to it read (else it is not a reading of this text that broke off, but
    another recording)."""
    read = [k for k, c in enumerate(checks) if c.status == READ]
    if not read or len(checks) - 1 - read[-1] < config.stopped_min_words:
        return None
    if any(c.heard for c in checks[read[-1] + 1:]):
        return None
    return read[-1] if len(read) >= config.stopped_read_share * (read[-1] + 1) else None


def summarise(checks: list[WordCheck], insertions: list[Insertion], words: list[str], language: str,
              language_probability: float, config: VerifierConfig, other_text: bool = False,
              foreign_text: TextLanguage | None = None,
              not_english: bool | None = None) -> tuple[float, bool, list[str]]:
    """(share read, whether the audio matches the text, warnings in words a learner can act on).
    not_english: the decision `decide` took; None judges by the language identification alone."""
    if not_english is None:
        not_english = foreign_text is not None or _not_english(language, language_probability, config)
    share = 0.0 if not_english else sum(c.status == READ for c in checks) / max(1, len(checks))
    warnings = []
    if foreign_text is not None:
        warnings.append(f"the text is not English (identified: {foreign_text.language}); orthoepy assesses English "
                        f"read speech, so no word of it counts as read")
    elif not_english:
        warnings.append(f"the speech does not sound like English (language identified: {language}, "
                        f"p={language_probability:.2f}); the text was not recognised in it")
    stop = None if not_english or other_text else stopped_after(checks, config)
    matches = not not_english and not other_text and (share >= config.mismatch_share or stop is not None)
    if not not_english and not matches:
        warnings.append(f"the recording does not match the text: only {round(share * len(checks))} of "
                        f"{len(checks)} words were heard")
    if stop is not None:
        warnings.append(f"the reading stopped after \"{words[stop]}\": {round(share * len(checks))} of "
                        f"{len(checks)} words were heard")
    unread = [w for w, c in zip(words[:None if stop is None else stop + 1], checks) if c.status != READ]
    if matches and unread:
        warnings.append("not read as written: " + ", ".join(unread))
    swapped = [f"{words[k]} {words[k + 1]}" for k in range(len(checks) - 1) if checks[k].reversed and checks[k + 1].reversed]
    if swapped:
        warnings.append("read in another order: " + ", ".join(swapped))
    if insertions:
        warnings.append("extra words: " + ", ".join(f"{i.text} ({i.kind.lower()})" for i in insertions))
    return share, matches, warnings


# ---------------------------------------------------------------------------------------------
# The models
# ---------------------------------------------------------------------------------------------

class ReadingVerifier:
    """Runs VAD, language identification, free transcription and forced word probabilities on one recording.

    One instance holds a Whisper base model (about 75 MB, int8); not safe to share between threads.
    """

    def __init__(self, config: VerifierConfig | None = None, lexicon: Lexicon | None = None, cpu_threads: int = 1,
                 detector: MiscueDetector | None = None, phone_recogniser=None):
        """phone_recogniser: anything with `frame_posteriors(audio)` as encoder.features.posterior_gop.PosteriorGOP
        (the front end's, to load the model once); None loads one."""
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        from .features.whisper import VARIANTS, _model_dir, default_cache_dir

        self.config = config or VerifierConfig()
        self.lexicon = lexicon or Lexicon()
        self.detector = detector  # learned miscue decisions once aligned (encoder/miscues.py); None: the rules
        self._model = WhisperModel(str(_model_dir(VARIANTS["base"], default_cache_dir())), device="cpu",
                                   compute_type="int8", cpu_threads=cpu_threads)
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, True, task="transcribe", language="en")
        self._vocabulary = self._model.hf_tokenizer.get_vocab()
        if phone_recogniser is None:
            from .features.posterior_gop import PosteriorGOP

            phone_recogniser = PosteriorGOP()
        self._phone_recogniser = phone_recogniser

    def verify(self, audio: Audio, words: list[str], reference: list[tuple[str, ...]]) -> Verification:
        """words: the text's normalised words; reference: their canonical phones (one tuple per word).

        Raises NoSpeechError when voice activity detection finds less than `min_speech_s` of speech.
        """
        return decide(self.gather(audio, words, reference), words, reference, self.config, detector=self.detector)

    def gather(self, audio: Audio, words: list[str], reference: list[tuple[str, ...]]) -> Evidence:
        """The models' evidence, before any threshold is applied (NoSpeechError when there is no speech)."""
        segments = self.speech_segments(audio)
        speech_seconds = sum(e - s for s, e in segments)
        if speech_seconds < self.config.min_speech_s:
            raise NoSpeechError(f"no speech found in the recording ({speech_seconds:.2f} s of voice activity "
                                f"in {audio.duration:.1f} s): record the sentence again, close to the microphone")
        windows = _windows(segments, audio.duration)
        encoded = [self._encode(audio, w) for w in windows]
        language, language_p = self._language(encoded[0][0])
        transcribed = [self._transcribe(enc, frames, w[0]) for (enc, frames), w in zip(encoded, windows)]
        silent = all(self._silent(no_speech, logprob) for _, no_speech, logprob in transcribed)
        heard = [h for words, _, _ in transcribed for h in words]
        forced = self._forced(encoded, windows, words, reference, heard)
        owner = _window_of_words(reference, heard, windows)
        prompted = [h for k, ((enc, frames), w) in enumerate(zip(encoded, windows))
                    for h in self._transcribe_prompted(enc, frames, w[0], [words[i] for i in range(len(words))
                                                                           if owner[i] == k])]
        doubled = self._doubled(encoded, words, owner)
        times = word_times(reference, [heard, prompted], audio.duration)
        return Evidence(round(speech_seconds, 2), language, round(language_p, 3), tuple(heard), tuple(forced),
                        tuple(_pauses(segments, audio.duration)), silent,
                        tuple((round(a, 2), round(b, 2)) for a, b in segments), tuple(prompted),
                        tuple(round(d, 3) for d in doubled), identify(words, [self._source(w) for w in words]),
                        self._phone_gains(audio, reference, owner, windows, times),
                        self._other_word_gains(audio, reference, prompted, owner, windows, times),
                        self._text_lpr(audio, reference, owner, windows))

    def confirm(self, verification: Verification, words: list[str], reference: list[tuple[str, ...]],
                aligned: list[tuple[float, float, int]]) -> Verification:
        """The decisions again, with each word's alignment (start s, end s, phone count) as extra evidence."""
        return decide(verification.evidence, words, reference, self.config, aligned, self.detector)

    def chunks(self, verification: Verification, duration: float) -> list[Chunk]:
        return chunks_at_pauses(list(verification.words), list(verification.pauses), duration, self.config)

    def anchors(self, verification: Verification, reference: list[tuple[str, ...]]) -> list[tuple[float, float] | None]:
        """Per word, where a transcription heard it as itself (within `similar_word`), else None: the forced
        alignment's check (ForcedAligner.align_chunks)."""
        evidence = verification.evidence
        if evidence is None:
            return [None] * len(reference)
        return heard_spans(reference, [list(evidence.heard), list(evidence.prompted)], self.config.similar_word)

    @staticmethod
    def spare_cuts(verification: Verification) -> list[tuple[int, float]]:
        """(first word after the cut, time s) between every two consecutive read words with heard spans."""
        return spare_cuts(list(verification.words))

    # -- stages -------------------------------------------------------------------------------

    def speech_segments(self, audio: Audio) -> list[tuple[float, float]]:
        """Stretches of voice activity in seconds (Silero VAD; pauses of 200 ms and more separate them)."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(min_silence_duration_ms=200, speech_pad_ms=60, max_speech_duration_s=WINDOW_S - 2)
        found = get_speech_timestamps(np.asarray(audio.samples, np.float32), options)
        return [(s["start"] / audio.sample_rate, s["end"] / audio.sample_rate) for s in found]

    def _encode(self, audio: Audio, window: tuple[float, float]):
        from faster_whisper.audio import pad_or_trim

        a, b = (int(t * audio.sample_rate) for t in window)
        features = self._model.feature_extractor(np.asarray(audio.samples[a:b], np.float32))
        frames = min(features.shape[-1], self._model.feature_extractor.nb_max_frames)
        return self._model.encode(pad_or_trim(features)), frames

    def _language(self, encoded) -> tuple[str, float]:
        token, probability = self._model.model.detect_language(encoded)[0][0]
        return token[2:-2], float(probability)

    def _prompt(self) -> list[int]:
        return list(self._tokenizer.sot_sequence) + [self._tokenizer.no_timestamps]

    def _silent(self, no_speech: float, logprob: float) -> bool:
        return no_speech > self.config.no_speech_probability and logprob < self.config.no_speech_logprob

    def _transcribe(self, encoded, frames: int, offset: float) -> tuple[list[HeardWord], float, float]:
        """(heard words, Whisper's no-speech probability, mean token log-probability) of one window."""
        result = self._model.model.generate(encoded, [self._prompt()], beam_size=1, max_length=224,
                                            suppress_blank=True, no_repeat_ngram_size=4, return_scores=True,
                                            return_no_speech_prob=True)[0]
        no_speech, logprob = float(result.no_speech_prob), float(result.scores[0])
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        return self._timed_words(tokens, encoded, frames, offset), no_speech, logprob

    def _transcribe_prompted(self, encoded, frames: int, offset: float, words: list[str]) -> list[HeardWord]:
        """A transcription of one window with its reference words as Whisper's previous text (the last
        `PREVIOUS_TOKENS` tokens of them)."""
        text = [t for i, w in enumerate(words) for t in self._word_tokens(w, first=(i == 0))][-PREVIOUS_TOKENS:]
        prompt = [self._tokenizer.sot_prev] + text + self._prompt()
        result = self._model.model.generate(encoded, [prompt], beam_size=1, max_length=224, suppress_blank=True,
                                            no_repeat_ngram_size=4)[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        return self._timed_words(tokens, encoded, frames, offset)

    def frame_log_probs(self, audio: Audio) -> np.ndarray:
        """(T, 41) the phone recogniser's frame log-probabilities as the phone gains read them
        (encoder.phone_gains.ctc_log_probs; 20 ms frames); the recogniser's pass is cached per recording."""
        return self._phone_recogniser.frame_log_probs(audio)

    def _phone_gains(self, audio: Audio, reference: list[tuple[str, ...]], owner: list[int],
                     windows: list[tuple[float, float]], times: list[tuple[float, float]]) -> PhoneGains:
        from .features.posterior_gop import FRAME_SECONDS

        return window_gains(self.frame_log_probs(audio), phone_ids(reference), owner, windows, times, FRAME_SECONDS)

    def _text_lpr(self, audio: Audio, reference: list[tuple[str, ...]], owner: list[int],
                  windows: list[tuple[float, float]]) -> float | None:
        from .features.posterior_gop import FRAME_SECONDS

        return text_lpr(self.frame_log_probs(audio), phone_ids(reference), owner, windows, FRAME_SECONDS)

    def _other_word_gains(self, audio: Audio, reference: list[tuple[str, ...]], prompted: list[HeardWord],
                          owner: list[int], windows: list[tuple[float, float]],
                          times: list[tuple[float, float]]) -> tuple[float | None, ...]:
        """Per word the prompted transcription heard as another word (phone distance above `similar_word`), the
        recogniser's gain for that word in its place (encoder.phone_gains.replace_gains); None elsewhere."""
        from .features.posterior_gop import FRAME_SECONDS

        others = {k: p.phones for k, (ref, p) in enumerate(zip(reference, _in_place(reference, prompted)))
                  if p is not None and p.phones and phone_distance(ref, p.phones) > self.config.similar_word}
        ids = {}
        for k, phones in others.items():
            try:
                ids[k] = phone_ids([phones])[0]
            except (KeyError, ValueError):  # a heard phone with no ARPAbet counterpart: not measured
                continue
        found = window_replace_gains(self.frame_log_probs(audio), phone_ids(reference), ids, owner, windows, times,
                                     FRAME_SECONDS) if ids else {}
        return tuple(found.get(k) for k in range(len(reference)))

    def _doubled(self, encoded, words: list[str], owner: list[int]) -> list[float]:
        """Per reference word, log P(text with the word read twice) - log P(text), nats, forced per window
        (in pieces of at most `FORCED_PIECE_TOKENS` tokens, so any text fits the decoder); DOUBLED_UNKNOWN for the
        words of a window of more than DOUBLED_MAX_WORDS words."""
        gains = [DOUBLED_UNKNOWN] * len(words)
        for k, (enc, frames) in enumerate(encoded):
            mine = [i for i in range(len(words)) if owner[i] == k]
            if len(mine) > DOUBLED_MAX_WORDS:  # one forced pass per word: left out where that costs seconds
                continue
            tokens = [self._word_tokens(words[i], first=(j == 0)) for j, i in enumerate(mine)]
            done = 0
            for piece in forced_pieces(tokens, FORCED_PIECE_TOKENS):
                part = mine[done:done + len(piece)]
                for d, gain in enumerate(self._doubled_piece(enc, frames, piece, [words[i] for i in part])):
                    gains[part[d]] = gain
                done += len(piece)
        return gains

    def _doubled_piece(self, enc, frames: int, tokens: list[list[int]], words: list[str]) -> list[float]:
        import ctranslate2

        texts = [[t for p in tokens for t in p]]
        for d, word in enumerate(words):
            again = self._word_tokens(word)[:FORCED_PIECE_TOKENS]
            texts.append([t for j, p in enumerate(tokens) for t in (p + again if j == d else p)])
        batch = ctranslate2.StorageView.from_array(np.repeat(np.asarray(enc), len(texts), axis=0))
        results = self._model.model.align(batch, self._prompt(), texts, [frames] * len(texts))
        logp = [float(np.log(np.maximum(np.asarray(r.text_token_probs, np.float64), 1e-9)).sum()) for r in results]
        return [lp - logp[0] for lp in logp[1:]]

    def _timed_words(self, tokens: list[int], encoded, frames: int, offset: float) -> list[HeardWord]:
        if not tokens:
            return []
        timed = self._model.find_alignment(self._tokenizer, [tokens], encoded, frames)[0]
        heard = []
        for w in timed:
            for text in self._spoken_words(w["word"]):
                heard.append(HeardWord(text, round(offset + float(w["start"]), 2), round(offset + float(w["end"]), 2),
                                       float(w["probability"]), self._phones(text)))
        return heard

    def _spoken_words(self, written: str) -> list[str]:
        try:
            return normalise_text(written)
        except TextError:
            return []

    def _source(self, word: str) -> str:
        try:
            return self.lexicon.pronunciations(word)[1]
        except TextError:
            return "g2p"

    def _phones(self, word: str) -> tuple[str, ...]:
        try:
            return tuple(split_stress(p)[0] for p in self.lexicon.lookup(word)[0])
        except TextError:
            return ()

    def _forced(self, encoded, windows, words: list[str], reference, heard: list[HeardWord]) -> list[float]:
        """Each reference word's mean token probability with the text forced through the decoder, per window."""
        owner = _window_of_words(reference, heard, windows)
        probabilities = [0.0] * len(words)
        for k, (enc, frames) in enumerate(encoded):
            mine = [i for i in range(len(words)) if owner[i] == k]
            if not mine:
                continue
            tokens = [self._word_tokens(words[i], first=(i == mine[0])) for i in mine]
            for i, p in zip(mine, self._forced_window(enc, frames, tokens)):
                probabilities[i] = p
        return probabilities

    def _forced_window(self, encoded, frames: int, tokens: list[list[int]]) -> list[float]:
        """Mean forced probability per word of one window; tokens: each word's Whisper tokens, in reading order.

        Whisper's decoder has 448 positions, so the words are forced in pieces of at most FORCED_PIECE_TOKENS
        tokens; each piece after the first gets the last PREVIOUS_TOKENS tokens of the text before it as the
        previous-text prompt (<|startofprev|> ...), as Whisper conditions on earlier windows. A text of one piece is
        forced exactly as before pieces existed (one call, no previous text).
        """
        means, previous = [], []
        for piece in forced_pieces(tokens, FORCED_PIECE_TOKENS):
            flat = [t for word in piece for t in word]
            token_p, start = self._forced_tokens(encoded, frames, flat, previous), 0
            for word in piece:
                means.append(float(token_p[start:start + len(word)].mean()) if word else 0.0)
                start += len(word)
            previous += flat
        return means

    def _forced_tokens(self, encoded, frames: int, tokens: list[int], previous: list[int]) -> np.ndarray:
        """Per-token probabilities of `tokens` forced after the previous text's last PREVIOUS_TOKENS tokens.

        With no previous text the prompt is the plain start sequence (`_prompt()`), as Whisper's first window's.
        """
        context = previous[max(0, len(previous) - PREVIOUS_TOKENS):]
        prompt = ([self._tokenizer.sot_prev] + context if context else []) + self._prompt()
        result = self._model.model.align(encoded, prompt, [tokens], frames)[0]
        return np.asarray(result.text_token_probs, np.float64)

    def _word_tokens(self, word: str, first: bool = False) -> list[int]:
        """Whisper tokens of ' word' as the decoder writes it (the packaged tokenizer's merges split off the space).

        Whisper capitalises the first word and "I"; other words are looked up in lower case first.
        """
        lower = word.lower()
        capital = first or lower == "i" or lower.startswith("i'")
        forms = (lower.capitalize(), lower) if capital else (lower, lower.capitalize())
        for form in forms:
            single = self._vocabulary.get("\u0120" + form)
            if single is not None:
                return [single]
        ids = self._tokenizer.encode(" " + forms[0])
        if len(ids) > 1 and self._tokenizer.decode(ids[:1]) == " ":
            head = self._vocabulary.get("\u0120" + self._tokenizer.decode(ids[1:2]))
            if head is not None:
                return [head] + ids[2:]
        return ids


def _windows(segments: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """Whisper-sized windows (at most 30 s) cut between stretches of speech."""
    windows, start, end = [], 0.0, 0.0
    for s, e in segments:
        if e - start > WINDOW_S - 0.5 and end > start:
            cut = 0.5 * (end + s)
            windows.append((start, cut))
            start = cut
        end = e
    windows.append((start, duration))
    if windows[-1][1] - windows[-1][0] > WINDOW_S:  # one stretch longer than a window (VAD caps them, but be safe)
        last = windows.pop()
        edges = np.arange(last[0], last[1], WINDOW_S - 1.0).tolist() + [last[1]]
        windows += list(zip(edges[:-1], edges[1:]))
    return windows


def _window_of_words(reference, heard: list[HeardWord], windows) -> list[int]:
    """The window each reference word is read in: its aligned heard word's, else its neighbours'."""
    owner: list[int | None] = [None] * len(reference)
    if len(windows) > 1:
        for r, h in align_words(reference, [w.phones for w in heard]):
            if r is not None and h is not None:
                mid = 0.5 * (heard[h].start + heard[h].end)
                owner[r] = next((k for k, (a, b) in enumerate(windows) if a <= mid < b), len(windows) - 1)
    last = 0
    for i, o in enumerate(owner):
        if o is None:
            owner[i] = last
        last = owner[i]
    return [int(o) for o in owner]


def word_times(reference: list[tuple[str, ...]], transcriptions: list[list[HeardWord]],
               duration: float) -> list[tuple[float, float]]:
    """Per reference word, the span (s) of the heard word aligned to it in the transcription that matches most
    words; a word heard nowhere gets the stretch between its neighbours' spans (the recording's start or end at
    the edges)."""
    spans, times = heard_spans(reference, transcriptions, 0.5), []
    for i, span in enumerate(spans):
        if span is None:
            before = next((spans[j][1] for j in range(i - 1, -1, -1) if spans[j] is not None), 0.0)
            after = next((spans[j][0] for j in range(i + 1, len(spans)) if spans[j] is not None), duration)
            span = (before, max(before, after))
        times.append(span)
    return times


def heard_spans(reference: list[tuple[str, ...]], transcriptions: list[list[HeardWord]],
                max_distance: float) -> list[tuple[float, float] | None]:
    """Per reference word, the span (s) of the heard word aligned to it within `max_distance` (phone edit
    distance, 0-1), in the transcription that has the most words so; None where that one has none."""
    best: list[tuple[float, float] | None] = [None] * len(reference)
    for heard in transcriptions:
        spans: list[tuple[float, float] | None] = [None] * len(reference)
        for r, h in align_words(reference, [w.phones for w in heard]):
            if r is not None and h is not None and phone_distance(reference[r], heard[h].phones) <= max_distance:
                spans[r] = (heard[h].start, heard[h].end)
        if sum(s is not None for s in spans) > sum(s is not None for s in best):
            best = spans
    return best


def forced_pieces(tokens: list[list[int]], limit: int) -> list[list[list[int]]]:
    """Consecutive words (their token lists) grouped greedily into pieces of at most `limit` tokens.

    A word longer than `limit` tokens forms a piece of its own, cut to its first `limit` tokens (its forced
    probability is then the mean over those). Every word is in exactly one piece, in order.
    """
    pieces: list[list[list[int]]] = []
    size = 0
    for word in tokens:
        word = word[:limit]
        if not pieces or size + len(word) > limit:
            pieces.append([])
            size = 0
        pieces[-1].append(word)
        size += len(word)
    return pieces


def _pauses(segments: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    return [(round(a[1], 2), round(b[0], 2)) for a, b in zip(segments, segments[1:]) if b[0] > a[1]]
