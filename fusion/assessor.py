"""One call from a recording and its text to a full assessment:
audio -> verification -> alignment -> phone features -> scores -> diagnosis -> rationale.

The rationale is written by the model directory's rationalizer and checked by the fusion guard
(fusion.rationale) against the scores before it is returned.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..encoder.alignment import word_spans
from ..encoder.audio import load_audio, quality_warnings
from ..encoder.corpus import SENTENCE_ASPECTS, WORD_ASPECTS
from ..encoder.features.frontend import FrontEnd, FrontEndConfig, PhoneFeatures
from ..encoder.lexicon import MAX_TEXT_PHONES, Lexicon, Pronunciation, check_length  # noqa: F401 (re-exported)
from ..encoder.scorer.phone_evidence import PhoneEvidenceError, PhoneEvidenceFusion
from ..encoder.scorer.pipeline import ModelDirectoryError, Scorer, ScoredUtterance
from ..encoder.variants import choose_pronunciation
from ..encoder.miscues import MiscueDetector
from ..encoder.phone_gains import PhoneEditGains
from ..encoder.phoneset import PHONES
from ..encoder.verification import Chunk, ReadingVerifier, Verification
from ..rationalizer.bands import SCALES, band
from ..rationalizer.data import pool_words
from .diagnosis import (expects_break, gated_sentence, monotone, punctuation_or_blank, share_attempted,
                        verified_error_type, word_error_type)
from .rationale import RationaleGuard, RationaleResult, sheet_from_words
from .schema import RESPONSE_SCHEMA_VERSION

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "default"
SAMPLE_DIR = Path(__file__).resolve().parent / "samples"
MODEL_CARD = "README.md"
LOW_PHONE_SCORE = SCALES["phone"].edges[0]  # below this a phone is reported as mispronounced or missing: "poor"
ANCHORED_ALIGNMENT = False  # Assessor.anchored_alignment's default: measured, not on (docs/frontend.md)


@dataclass
class PhoneResult:
    phone: str  # canonical ARPAbet with stress, e.g. "AO0"
    score: float  # 0-2
    start: float  # seconds
    end: float
    heard: str | None  # the phone likeliest said at this position (heard_nbest[0]); may be the canonical phone
    heard_probability: float | None
    mispronounced: bool
    heard_nbest: list[dict] = field(default_factory=list)  # [{"phone", "probability"}], best first; [0] = heard


@dataclass
class WordResult:
    text: str
    accuracy: float  # 0-10
    stress: float
    total: float
    error_type: str  # one of diagnosis.WORD_ERROR_TYPES
    phones: list[PhoneResult]
    heard_word: str | None = None  # what the verification heard in this word's place, when it was not this word


@dataclass
class InsertionResult:
    text: str  # the extra word heard
    start: float  # seconds
    end: float
    kind: str  # "Insertion" or "Repetition"
    after_word: int  # index of the word of the text it follows, -1 before the first


@dataclass
class Assessment:
    text: str
    sentence: dict[str, float]  # accuracy, completeness, fluency, prosodic, total, 0-10
    words: list[WordResult]
    alignment_fallback: bool
    model: str
    timings: dict[str, float] = field(default_factory=dict)
    rationale: RationaleResult | None = None  # None when the assessor was built without one
    verification: dict | None = None  # encoder.verification.Verification.to_dict(); None when not verified
    insertions: list[InsertionResult] = field(default_factory=list)
    audio_warnings: list[str] = field(default_factory=list)  # encoder.audio.quality_warnings

    def to_dict(self) -> dict:
        return {"schema_version": RESPONSE_SCHEMA_VERSION, **asdict(self)}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)


class Assessor:
    """Loads the front-end and a trained scorer once; `assess` scores one recording against its text."""

    def __init__(self, scorer: Scorer, model_name: str, lexicon: Lexicon | None = None,
                 rationale: RationaleGuard | None = None, verify: bool = True, miscues: MiscueDetector | None = None,
                 phone_evidence: PhoneEvidenceFusion | None = None):
        self.scorer, self.model_name, self.phone_evidence = scorer, model_name, phone_evidence
        self.lexicon = lexicon or Lexicon()
        self.frontend = FrontEnd(frontend_config(scorer))
        self.rationale = rationale
        self.verifier = ReadingVerifier(lexicon=self.lexicon, detector=miscues,
                                        phone_recogniser=self.frontend.groups.get("posterior_gop")) if verify else None
        # split a chunk whose alignment misplaces the words the transcriptions heard (docs/frontend.md)
        self.anchored_alignment = ANCHORED_ALIGNMENT

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, backend: str = "auto", lexicon: Lexicon | None = None,
                        rationale: str = "auto", verify: bool = True, warm: bool = False) -> "Assessor":
        """The shipped default model when path is None, else a model directory from `orthoepy train-scorer`.

        rationale: "auto" (the directory's rationalizer/ when it loads, else rubric text), "model", "rubric" or "none".
        verify: run the reading verification (speech, language, words read); False scores the text as given.
        warm: call `warm_up` before returning (a service's workers: the first request then costs what others do).
        """
        directory = Path(path) if path is not None else DEFAULT_MODEL_DIR
        if not directory.is_dir():
            raise ModelDirectoryError(f"model directory not found: {directory}")
        assessor = cls(Scorer.from_pretrained(directory, backend=backend), directory.name, lexicon,
                       RationaleGuard.for_model_directory(directory, rationale), verify, _miscue_detector(directory),
                       _phone_evidence(directory))
        if warm:
            assessor.warm_up()
        return assessor

    def warm_up(self) -> None:
        """Loads what the first assessment would otherwise load (the verification's and the rationale's models,
        the number reader): one assessment of the bundled sample, then a text with a number. A service calls it at
        startup so that its first request costs what the others do (the number reader's import alone takes about
        4 s here)."""
        meta = json.loads((SAMPLE_DIR / "demo.json").read_text())
        self.assess(SAMPLE_DIR / meta["audio"], meta["text"])
        self.lexicon.readings("It was 1990.")

    def assess(self, audio, text: str, sample_rate: int | None = None) -> Assessment:
        """audio: a path, encoded bytes, or a sample array with its sample_rate.

        Raises AudioError (NoSpeechError when no speech is found), TextError or FrontEndError on unusable input
        (TextError too for a text of more than MAX_TEXT_PHONES phones, before any model runs).
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        candidates = self.lexicon.readings(text)
        check_length(candidates)
        clip = load_audio(audio, sample_rate)
        pronunciation = self._reading(clip, candidates, timings)
        first_pass = self._verify(clip, pronunciation, timings)
        features = self._features(clip, pronunciation, first_pass, timings)
        verification = None if first_pass is None else self._confirmed(first_pass, pronunciation, features)
        mark = time.perf_counter()
        heard_words = read_words(verification, len(pronunciation.words))
        gains = self.edit_gains(clip, features.select_words(heard_words))
        timings["phone_evidence"] = time.perf_counter() - mark
        mark = time.perf_counter()
        scored_features, examples, scored = self._scores(features, heard_words, gains)
        timings["scorer"] = time.perf_counter() - mark
        assessment = build_assessment(text, pronunciation.words, features, scored, self.model_name, timings,
                                      pronunciation.punctuation)
        if gains is not None:
            hear_phones(assessment, gains, heard_words)
        assessment.audio_warnings = quality_warnings(clip)
        if verification is not None:
            apply_verification(assessment, verification)
        if self.rationale is not None:
            rationale = self._rationale(assessment, scored_features, heard_words, examples)
            assessment.rationale = lead_with_mismatch(rationale, verification)
            assessment.timings["rationale"] = round(time.perf_counter() - started - sum(timings.values()), 3)
        return assessment

    def _scores(self, features: PhoneFeatures, heard_words: list[int],
                gains: PhoneEditGains | None) -> tuple[PhoneFeatures, dict, ScoredUtterance]:
        """(what the scorer read, its input, the scores spread over the whole text with 0 for the other words).
        The scorer reads each phone in the context of the others, so the squeezed spans of words nobody said stay
        out of its input. The network's phone scores are fused with the recogniser's segmentation-free gains of the
        same words (gains: over features.select_words(heard_words); encoder.scorer.phone_evidence) where the model
        directory has the fusion."""
        kept = features.select_words(heard_words)
        examples = self.scorer.examples({"input": kept})
        (scored,) = self.scorer.score_examples(examples)
        if self.phone_evidence is not None and gains is not None:
            scored = fuse_phone_scores(scored, gains, self.phone_evidence)
        return kept, examples, spread_scores(scored, features, heard_words)

    def edit_gains(self, clip, features: PhoneFeatures) -> PhoneEditGains | None:
        """Every phone's segmentation-free substitution/deletion gains and heard n-best under the CTC phone
        recogniser, its words placed by the alignment; None when the front end has no recogniser. Give it the words
        that were read (PhoneFeatures.select_words): an omitted word left in the text makes its neighbours' phones
        look wrong."""
        recogniser = self.frontend.groups.get("posterior_gop")
        return None if recogniser is None else aligned_edit_gains(recogniser, clip, features)

    def _reading(self, clip, candidates: list[Pronunciation], timings: dict[str, float]) -> Pronunciation:
        """The reading of the text (numbers, variants) that the audio supports best (encoder.variants)."""
        if len(candidates) == 1 and all(len(v) == 1 for v in candidates[0].variants):
            return candidates[0]
        mark = time.perf_counter()
        recogniser = self.frontend.groups.get("posterior_gop")  # its posteriors are cached for what follows
        log_probs = recogniser.frame_log_probs(clip) if recogniser is not None and len(candidates) > 1 else None
        chosen = choose_pronunciation(self.frontend.aligner, clip, candidates, log_probs)
        timings["reading"] = time.perf_counter() - mark
        return chosen

    def _verify(self, clip, pronunciation: Pronunciation, timings: dict[str, float]) -> Verification | None:
        if self.verifier is None:
            return None
        mark = time.perf_counter()
        verification = self.verifier.verify(clip, list(pronunciation.words), [tuple(p) for p in pronunciation.phones])
        timings["verification"] = time.perf_counter() - mark
        return verification

    def _features(self, clip, pronunciation: Pronunciation, verification: Verification | None,
                  timings: dict[str, float]) -> PhoneFeatures:
        """Alignment (in chunks cut at verified pauses, when verified) and the phone features."""
        chunks = spare = anchors = None
        if verification is not None:
            chunks = _chunk_tuples(self.verifier.chunks(verification, clip.duration))
            spare = self.verifier.spare_cuts(verification)
            if self.anchored_alignment:
                anchors = self.verifier.anchors(verification, [tuple(p) for p in pronunciation.phones])
        mark = time.perf_counter()
        features = self.frontend.extract(clip, pronunciation.canonical, chunks, spare, anchors)
        timings["frontend"] = time.perf_counter() - mark
        return features

    def _confirmed(self, verification: Verification, pronunciation: Pronunciation,
                   features: PhoneFeatures) -> Verification:
        """The verification's decisions again with the aligned durations. On a fallback alignment (spans spread
        evenly over the speech, so durations say little) the word detector still outweighs the first pass's rules,
        which count a word read when Whisper's language model merely expects it after what was heard."""
        return self.verifier.confirm(verification, list(pronunciation.words), [tuple(p) for p in pronunciation.phones],
                                     aligned_words(features))

    def _rationale(self, assessment: Assessment, scored_features: PhoneFeatures, heard_words: list[int],
                   examples) -> RationaleResult:
        """scored_features: what the scorer read (the words in heard_words, renumbered); examples: its input."""
        sheet = sheet_from_words(assessment.text, assessment.sentence, assessment.words)
        word_states = None
        if self.rationale.rationalizer is not None:
            (states,) = self.scorer.phone_states(examples)
            word_states = pool_words(states, [heard_words[p.word_index] for p in scored_features.phones],
                                     len(assessment.words))
        return self.rationale.explain(sheet, word_states)

    def assess_many(self, items, progress: bool = True) -> list[Assessment]:
        """items: (audio, text) pairs; assessed in order with a progress bar."""
        items = list(items)
        return [self.assess(audio, text) for audio, text in tqdm(items, desc="assess", unit="utt", disable=not progress)]


def read_words(verification: Verification | None, n_words: int) -> list[int]:
    """Indices of the words the scorer should read: all but those the verification found omitted (nothing heard
    where they should be); all of them without a verification, or when none at all was heard."""
    if verification is None:
        return list(range(n_words))
    heard = [k for k, check in enumerate(verification.words) if check.status != "omitted"]
    return heard or list(range(n_words))


def spread_scores(scored: ScoredUtterance, features: PhoneFeatures, heard_words: list[int]) -> ScoredUtterance:
    """Scores of the selected words (as `PhoneFeatures.select_words` numbered them) laid over the whole text;
    the other words and their phones get 0."""
    n_words = 1 + max((p.word_index for p in features.phones), default=-1)
    if len(heard_words) == n_words:
        return scored
    rows = features.rows_of(heard_words)
    phone = np.zeros(len(features.phones), dtype=np.asarray(scored.phone).dtype)
    phone[rows] = scored.phone
    word = {}
    for aspect, values in scored.word.items():
        word[aspect] = np.zeros(n_words, dtype=np.asarray(values).dtype)
        word[aspect][heard_words] = values
    return replace(scored, phone=phone, word=word)


def frontend_config(scorer: Scorer) -> FrontEndConfig:
    """The front-end the scorer's training features came from (older models: the defaults with its groups)."""
    if scorer.frontend_config is None:
        return FrontEndConfig(groups=scorer.groups or FrontEndConfig().groups)
    known = set(FrontEndConfig.__dataclass_fields__)
    config = {k: v for k, v in scorer.frontend_config.items() if k in known}
    return FrontEndConfig(**{**config, "groups": tuple(config["groups"])})


def build_assessment(text: str, word_texts, features: PhoneFeatures, scored: ScoredUtterance,
                     model_name: str, timings: dict[str, float], punctuation=None) -> Assessment:
    """The response for one utterance from its features and calibrated scores (word_texts: one per word;
    punctuation: what followed each word in the text, so that breaks at punctuation are not flagged)."""
    phones = [_phone_result(features, scored, i) for i in range(len(features.phones))]
    marks = punctuation_or_blank(punctuation, len(word_texts))
    words, previous_end = [], None
    for j, word in enumerate(word_texts):
        word_phones = [p for p, c in zip(phones, features.phones) if c.word_index == j]
        accuracy, stress, total = (round(float(scored.word[a][j]), 2) for a in WORD_ASPECTS)
        pause = 0.0 if previous_end is None else max(0.0, word_phones[0].start - previous_end)
        before = marks[j - 1] if j else ""
        error = word_error_type([p.score for p in word_phones], LOW_PHONE_SCORE, accuracy, pause,
                                before, bool(j) and expects_break(before))
        words.append(WordResult(word, accuracy, stress, total, error, word_phones))
        previous_end = word_phones[-1].end
    if _monotone(features, len(words)):
        for word in words:
            word.error_type = "Monotone" if word.error_type == "None" else word.error_type
    sentence = {a: round(scored.sentence[a], 2) for a in SENTENCE_ASPECTS}
    return Assessment(text, sentence, words, features.alignment_fallback, model_name,
                      {k: round(v, 3) for k, v in timings.items()})


def _monotone(features: PhoneFeatures, n_words: int) -> bool:
    """diagnosis.monotone on the front-end's utterance pitch summary (no judgement without one)."""
    names = features.utterance.names if features.utterance is not None else ()
    wanted = ("prosody_summary_f0_range_st", "prosody_summary_f0_voiced_ratio")
    if not len(features.starts) or not all(n in names for n in wanted):
        return False
    values = features.utterance.values[0]
    f0_range, voiced_ratio = (float(values[names.index(n)]) for n in wanted)
    span = float(features.ends[-1] - features.starts[0])
    return monotone(f0_range, voiced_ratio * span, n_words)


def aligned_edit_gains(recogniser, clip, features: PhoneFeatures) -> PhoneEditGains:
    """recogniser.edit_gains (encoder.features.posterior_gop.PosteriorGOP) for the words of `features`, each
    placed by its aligned span."""
    return recogniser.edit_gains(clip, word_phones(features), [(s, e) for s, e, _ in aligned_words(features)])


def fuse_phone_scores(scored: ScoredUtterance, gains: PhoneEditGains,
                      fusion: PhoneEvidenceFusion) -> ScoredUtterance:
    """`scored` with its phone scores fused with the gains of the same phones (encoder.scorer.phone_evidence)."""
    fused = fusion.rescore(scored.phone, gains.substitute, gains.delete)
    return replace(scored, phone=fused.astype(np.asarray(scored.phone).dtype))


def hear_phones(assessment: Assessment, gains: PhoneEditGains, heard_words: list[int]) -> None:
    """Each phone's `heard` and `heard_nbest` from the segmentation-free n-best (encoder.phone_gains) of the words
    read (gains: over those words, in order): the phones likeliest at that position given the rest of the text.
    Unlike the phones pooled over the aligned segment, it does not lag the alignment, and it names the canonical
    phone where that is the likeliest. The phones of words not read have nothing heard (None, [])."""
    read = [p for k in heard_words for p in assessment.words[k].phones]
    for phone in (p for w in assessment.words for p in w.phones):
        phone.heard, phone.heard_probability, phone.heard_nbest = None, None, []
    for phone, nbest in zip(read, gains.nbest):
        listed = [{"phone": PHONES[i], "probability": round(p, 2)} for i, p in nbest]
        phone.heard, phone.heard_probability, phone.heard_nbest = listed[0]["phone"], listed[0]["probability"], listed


def word_phones(features: PhoneFeatures) -> list[list[str]]:
    """Each word's canonical phones (ARPAbet with stress), in text order."""
    words: list[list[str]] = [[] for _ in range(1 + max((p.word_index for p in features.phones), default=-1))]
    for phone in features.phones:
        words[phone.word_index].append(phone.symbol)
    return words


def _phone_evidence(directory: Path) -> PhoneEvidenceFusion | None:
    """The directory's phone-evidence fusion; a directory without one scores with the network alone."""
    try:
        return PhoneEvidenceFusion.load(directory)
    except PhoneEvidenceError as err:
        raise ModelDirectoryError(str(err)) from None


def _miscue_detector(directory: Path) -> MiscueDetector | None:
    """The directory's miscue detectors, else the shipped model's (they do not depend on the scorer)."""
    return MiscueDetector.load(directory) or MiscueDetector.load(DEFAULT_MODEL_DIR)


def apply_verification(assessment: Assessment, verification: Verification) -> None:
    """Make the scores follow what was read (fusion.diagnosis): unread words and their phones score 0,
    completeness is the share of words attempted (not omitted), the other sentence scores are scaled by the share
    read as written; insertions are listed."""
    for word, check in zip(assessment.words, verification.words):
        word.error_type = verified_error_type(check.status, word.error_type, check.reversed)
        if check.status == "read":
            continue
        word.heard_word = check.heard
        word.accuracy = word.stress = word.total = 0.0
        for phone in word.phones:
            phone.score, phone.mispronounced = 0.0, True
    attempted = share_attempted([c.status for c in verification.words], verification.share_read,
                                verification.matches_text)
    assessment.sentence = gated_sentence(assessment.sentence, verification.share_read, attempted)
    assessment.verification = verification.to_dict()
    assessment.insertions = [InsertionResult(i.text, i.start, i.end, i.kind, i.after_word)
                             for i in verification.insertions]


def lead_with_mismatch(rationale: RationaleResult, verification: Verification | None) -> RationaleResult:
    """A recording that is not a reading of the text: say so first, before any advice on single sounds."""
    if verification is None or verification.matches_text or not verification.warnings:
        return rationale
    first = verification.warnings[0]
    return replace(rationale, text=f"{first[0].upper()}{first[1:]}, so the scores are low. {rationale.text}")


def aligned_words(features: PhoneFeatures) -> list[tuple[float, float, int]]:
    """Each word's aligned (start s, end s, phone count)."""
    return word_spans([p.word_index for p in features.phones], features.starts, features.ends)


def _chunk_tuples(chunks: list[Chunk]) -> list[tuple[float, float, int, int]]:
    return [(c.start, c.end, c.first_word, c.end_word) for c in chunks]


def _phone_result(features: PhoneFeatures, scored: ScoredUtterance, i: int) -> PhoneResult:
    score = round(float(scored.phone[i]), 2)
    heard = features.heard[i] if features.heard else None
    return PhoneResult(features.phones[i].symbol, score, round(float(features.starts[i]), 2),
                       round(float(features.ends[i]), 2), heard.base if heard else None,
                       round(heard.probability, 2) if heard else None, bool(score < LOW_PHONE_SCORE),
                       [{"phone": b, "probability": round(p, 2)} for b, p in heard.nbest] if heard else [])


def _heard_text(p: PhoneResult) -> str:
    """'S (0.62), TH (0.20), F (0.05)': the n-best list where there is one, else the top phone."""
    nbest = p.heard_nbest or [{"phone": p.heard, "probability": p.heard_probability}]
    return ", ".join(f"{n['phone']} ({n['probability']:.2f})" for n in nbest)


def format_assessment(result: Assessment) -> str:
    """A readable plain-text view: sentence scores, then each word with its phones; each sentence score, word
    accuracy and phone score is followed by its band word (rationalizer.bands), as the page colours it."""
    sentence = ", ".join(f"{k} {v:.1f} ({band(v, 'sentence').name})" for k, v in result.sentence.items())
    lines = [f"text: {result.text}", f"sentence: {sentence}", ""]
    for word in result.words:
        error = "" if word.error_type == "None" else f"  [{word.error_type}]"
        error += f" heard {word.heard_word!r}" if word.heard_word else ""
        accuracy = f"{word.accuracy:4.1f} {'(' + band(word.accuracy, 'word').name + ')':<11}"
        lines.append(f"{word.text:<14} accuracy {accuracy} stress {word.stress:4.1f}  total {word.total:4.1f}{error}")
        for p in word.phones:
            heard = "heard " + _heard_text(p) if p.heard else ""
            flag = "  <- check" if p.mispronounced else ""
            lines.append(f"    {p.phone:<5} {p.score:4.2f} {band(p.score, 'phone').name:<9}  "
                         f"{p.start:5.2f}-{p.end:5.2f}s  {heard}{flag}")
    if result.rationale is not None:
        lines += ["", f"rationale ({result.rationale.source}): {result.rationale.text}"]
        if result.rationale.note:
            lines.append(f"  note: {result.rationale.note}")
    for insertion in result.insertions:
        lines.append(f"extra word {insertion.text!r} ({insertion.kind}) at {insertion.start:.2f}-{insertion.end:.2f}s")
    if result.verification is not None:
        lines += [f"warning: {w}" for w in result.verification["warnings"]]
    lines += [f"warning: {w}" for w in result.audio_warnings]
    if result.alignment_fallback:
        lines.append("\nnote: forced alignment failed; phone times are a uniform estimate")
    lines.append(f"\nmodel {result.model}; " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in result.timings.items()))
    return "\n".join(lines)
