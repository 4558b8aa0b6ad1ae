"""Training data that contains errors: altered texts for real train recordings, and non-speech.

About 93% of speechocean762 train phones are scored 2, so a scorer trained on the corpus alone rarely sees
an error and learns to say "fine". Each augmented item is an ordinary `Utterance` record (its own id, the
audio it reads, altered canonical phones, altered labels) so that the front-end extracts its features
exactly as at inference and `build_examples` turns it into a training example unchanged.

Kinds (AUGMENT_KINDS):
- ``substitution``: canonical phones the learner pronounced well (label >= 1.5) are replaced in the text by a
  confusable phone (CONFUSABLE, L2 English confusions). The recording still has the original sound, so
  against the altered text it is "X heard for Y": the replaced phones' targets are 0.
- ``omission``: a word of another utterance is inserted into the text; the recording never says it. Its
  phones and word scores are 0; completeness drops to the share of words read.
- ``mismatch``: the recording scored against another utterance's text: phones, words, accuracy, completeness
  and total 0; fluency and prosodic unknown (the speech itself may be fluent), so not trained.
- ``nonspeech``: noise, tones, or near-silence with a train text: every target 0.

Word and sentence targets of substitutions and omissions move by slopes fitted on the train labels
(`TargetSlopes.fit`): a word's accuracy and total follow its mean phone score, a sentence's accuracy and
total follow its mean word accuracy, each by its least-squares slope (scipy.stats.linregress).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile
from scipy.stats import linregress

from ..corpus import SentenceLabels, Utterance, WordLabel
from ..phoneset import VOWELS, split_stress

AUGMENT_KINDS = ("substitution", "omission", "mismatch", "nonspeech")
WELL_PRONOUNCED = 1.5  # only phones the annotators scored at least this are replaced (the audio has them right)
SAMPLE_RATE = 16000
NONSPEECH_SPEAKER = "nonspeech"  # never a train speaker: non-speech items train in every fold

# Typical L2 English confusions (the substitution set of the issue "Phone evidence v2" and a few more),
# consonant for consonant and vowel for vowel.
CONFUSABLE: dict[str, tuple[str, ...]] = {
    "TH": ("S", "F", "T"), "DH": ("D", "Z"), "V": ("B", "W", "F"), "W": ("V",), "L": ("R", "N"), "R": ("L",),
    "N": ("L", "NG"), "NG": ("N",), "Z": ("S",), "SH": ("S",), "S": ("SH", "TH"), "ZH": ("Z", "JH"),
    "CH": ("SH",), "JH": ("ZH", "Y"), "P": ("B",), "B": ("P", "V"), "T": ("D",), "D": ("T",),
    "K": ("G",), "G": ("K",), "F": ("P",), "HH": ("F",),
    "IY": ("IH",), "IH": ("IY",), "AE": ("EH", "AA"), "EH": ("AE",), "UW": ("UH",), "UH": ("UW",),
    "AA": ("AH", "AO"), "AH": ("AA",), "AO": ("OW",), "OW": ("AO",), "EY": ("EH",), "ER": ("AA",),
}


@dataclass(frozen=True)
class TargetSlopes:
    """How labels follow one another on the train split (least-squares slopes, 0-10 per unit of the input)."""

    word_accuracy: float  # word accuracy per unit of the word's mean phone score (0-2)
    word_total: float  # word total per unit of the word's mean phone score
    sentence_accuracy: float  # sentence accuracy per unit of the mean word accuracy (0-10)
    sentence_total: float  # sentence total per unit of the mean word accuracy

    @classmethod
    def fit(cls, utterances: Sequence[Utterance]) -> "TargetSlopes":
        """Raises ValueError when the utterances carry too few labels to fit a slope."""
        words = [(np.mean(w.phone_accuracy), w.accuracy, w.total) for u in utterances for w in u.words
                 if w.phone_accuracy and w.accuracy is not None and w.total is not None]
        sentences = [(_mean_word_accuracy(u.words), u.sentence.accuracy, u.sentence.total) for u in utterances
                     if u.sentence.accuracy is not None and u.sentence.total is not None
                     and np.isfinite(_mean_word_accuracy(u.words))]
        if len(words) < 3 or len(sentences) < 3:
            raise ValueError(f"too few labelled words ({len(words)}) or sentences ({len(sentences)}) to fit slopes")
        w, s = np.array(words, float), np.array(sentences, float)
        return cls(*(float(linregress(x, y).slope) for x, y in
                     ((w[:, 0], w[:, 1]), (w[:, 0], w[:, 2]), (s[:, 0], s[:, 1]), (s[:, 0], s[:, 2]))))


@dataclass(frozen=True)
class AugmentationPlan:
    """How many altered items per train recording (fractions are probabilities) and how many non-speech items."""

    substitution: float = 1.0
    max_substitutions: int = 3  # phones replaced in one item: 1..max, uniformly
    omission: float = 0.25
    mismatch: float = 0.25
    nonspeech: int = 100
    seed: int = 0


def substitute_phones(utt: Utterance, replacements: dict[int, str], slopes: TargetSlopes, new_id: str) -> Utterance:
    """The utterance with canonical phone i (flat index) replaced by base phone replacements[i].

    The replaced phones' targets become 0; their words' accuracy and total drop by the slopes; the sentence's
    accuracy and total drop with its mean word accuracy. Raises ValueError for an index out of range or a
    replacement of another class (vowel for consonant).
    """
    words, flat = list(utt.words), 0
    changed = dict(replacements)
    for w, word in enumerate(utt.words):
        inside = {i - flat: changed.pop(i) for i in list(changed) if flat <= i < flat + len(word.phones)}
        if inside:
            words[w] = _substituted_word(word, inside, slopes)
        flat += len(word.phones)
    if changed:
        raise ValueError(f"{utt.utt_id}: phone indices {sorted(changed)} out of range ({flat} phones)")
    return _with_words(utt, new_id, tuple(words), slopes, utt.sentence.completeness)


def omit_word(utt: Utterance, word: WordLabel, at: int, slopes: TargetSlopes, new_id: str) -> Utterance:
    """The utterance's text with `word` (from another text) inserted before word `at`; the recording lacks it."""
    if not 0 <= at <= len(utt.words):
        raise ValueError(f"{utt.utt_id}: cannot insert a word at {at} of {len(utt.words)}")
    unread = WordLabel(word.text, word.phones, (0.0,) * len(word.phones), 0.0, None, 0.0)
    words = utt.words[:at] + (unread,) + utt.words[at:]
    completeness = None if utt.sentence.completeness is None else utt.sentence.completeness * len(utt.words) / len(words)
    return _with_words(utt, new_id, words, slopes, completeness)


def mismatched(recording: Utterance, text_of: Utterance, new_id: str) -> Utterance:
    """`recording`'s audio scored against `text_of`'s text: everything 0 except fluency and prosodic (unknown)."""
    sentence = SentenceLabels(accuracy=0.0, completeness=0.0, fluency=None, prosodic=None, total=0.0)
    return Utterance(new_id, recording.speaker, recording.split, recording.audio_path, text_of.text,
                     _zero_words(text_of.words), sentence)


def nonspeech(audio_path: Path, text_of: Utterance, new_id: str) -> Utterance:
    """A non-speech recording with a train text: every target 0."""
    return Utterance(new_id, NONSPEECH_SPEAKER, "train", Path(audio_path), text_of.text, _zero_words(text_of.words),
                     SentenceLabels(0.0, 0.0, 0.0, 0.0, 0.0))


def nonspeech_signal(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """(n,) float32 at 16 kHz: "noise" (white), "tone" (a sine of 150-1000 Hz) or "silence" (faint noise)."""
    n = int(SAMPLE_RATE * seconds)
    if kind == "noise":
        x = rng.normal(0, rng.uniform(0.02, 0.3), n)
    elif kind == "tone":
        x = 0.3 * np.sin(2 * np.pi * rng.uniform(150, 1000) * np.arange(n) / SAMPLE_RATE)
    elif kind == "silence":
        x = rng.normal(0, 0.003, n)
    else:
        raise ValueError(f"unknown non-speech kind {kind!r}: noise, tone or silence")
    return np.clip(x, -1, 1).astype(np.float32)


def augment(utterances: Sequence[Utterance], plan: AugmentationPlan, slopes: TargetSlopes,
            audio_dir: str | Path) -> list[Utterance]:
    """Altered items for the given (train) utterances, deterministic in plan.seed; non-speech audio is written to
    audio_dir. Mismatched texts and omitted words come from other speakers' utterances of the same list."""
    rng = np.random.default_rng(plan.seed)
    utts = sorted(utterances, key=lambda u: u.utt_id)
    out: list[Utterance] = []
    for u in utts:
        if rng.random() < plan.substitution:
            item = _random_substitution(u, plan, slopes, rng)
            out += [item] if item is not None else []
        if rng.random() < plan.omission:
            donor = _other_speaker(u, utts, rng)
            word = donor.words[int(rng.integers(len(donor.words)))]
            out.append(omit_word(u, word, int(rng.integers(len(u.words) + 1)), slopes, f"{u.utt_id}~omission"))
        if rng.random() < plan.mismatch:
            out.append(mismatched(u, _other_speaker(u, utts, rng), f"{u.utt_id}~mismatch"))
    out += _nonspeech_items(utts, plan.nonspeech, Path(audio_dir), rng)
    return out


def save_augmented(items: Sequence[Utterance], path: str | Path) -> None:
    """The items as JSON (a list of utterance records, paths as strings)."""
    Path(path).write_text(json.dumps([{**asdict(u), "audio_path": str(u.audio_path)} for u in items], indent=0))


def load_augmented(path: str | Path) -> list[Utterance]:
    """Raises FileNotFoundError or ValueError with the file's name when it is missing or not such a list."""
    try:
        records = json.loads(Path(path).read_text())
        return [_utterance_from_dict(r) for r in records]
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a list of augmented utterances ({type(err).__name__}: {err})") from None


def is_augmented(utt_id: str) -> bool:
    """Whether an id names an augmented item ("<source>~<kind>")."""
    return "~" in utt_id


def source_id(utt_id: str) -> str:
    """The recording an augmented item reads ("<utt>~substitution" -> "<utt>"); an ordinary id is its own source."""
    return utt_id.split("~", 1)[0]


def _substituted_word(word: WordLabel, inside: dict[int, str], slopes: TargetSlopes) -> WordLabel:
    phones, scores = list(word.phones), list(word.phone_accuracy or (2.0,) * len(word.phones))
    for i, base in inside.items():
        old, stress = split_stress(phones[i])
        if (old in VOWELS) != (base in VOWELS):
            raise ValueError(f"{word.text}: cannot replace {old} by {base} (vowel for consonant or back)")
        phones[i], scores[i] = base + ("" if stress is None else str(stress)), 0.0
    drop = np.mean(word.phone_accuracy or scores) - np.mean(scores)
    return WordLabel(word.text, tuple(phones), tuple(scores), _lowered(word.accuracy, slopes.word_accuracy * drop),
                     word.stress, _lowered(word.total, slopes.word_total * drop))


def _with_words(utt: Utterance, new_id: str, words: tuple[WordLabel, ...], slopes: TargetSlopes,
                completeness: float | None) -> Utterance:
    drop = _mean_word_accuracy(utt.words) - _mean_word_accuracy(words)
    drop = 0.0 if not np.isfinite(drop) else drop
    s = utt.sentence
    sentence = SentenceLabels(_lowered(s.accuracy, slopes.sentence_accuracy * drop), completeness, s.fluency,
                              s.prosodic, _lowered(s.total, slopes.sentence_total * drop))
    return replace(utt, utt_id=new_id, text=" ".join(w.text for w in words), words=words, sentence=sentence)


def _lowered(value: float | None, drop: float) -> float | None:
    return None if value is None else float(np.clip(value - max(drop, 0.0), 0.0, 10.0))


def _mean_word_accuracy(words: Sequence[WordLabel]) -> float:
    values = [w.accuracy for w in words if w.accuracy is not None]
    return float(np.mean(values)) if values else float("nan")


def _zero_words(words: Sequence[WordLabel]) -> tuple[WordLabel, ...]:
    return tuple(WordLabel(w.text, w.phones, (0.0,) * len(w.phones), 0.0, None, 0.0) for w in words)


def _random_substitution(u: Utterance, plan: AugmentationPlan, slopes: TargetSlopes,
                         rng: np.random.Generator) -> Utterance | None:
    scores = u.phone_accuracy
    candidates = [i for i, p in enumerate(u.canonical_phones)
                  if p.base in CONFUSABLE and scores is not None and scores[i] >= WELL_PRONOUNCED]
    if not candidates:
        return None
    k = min(len(candidates), int(rng.integers(1, plan.max_substitutions + 1)))
    chosen = rng.choice(candidates, size=k, replace=False)
    bases = [p.base for p in u.canonical_phones]
    replacements = {int(i): str(rng.choice(CONFUSABLE[bases[i]])) for i in chosen}
    return substitute_phones(u, replacements, slopes, f"{u.utt_id}~substitution")


def _other_speaker(u: Utterance, utts: Sequence[Utterance], rng: np.random.Generator) -> Utterance:
    while True:
        other = utts[int(rng.integers(len(utts)))]
        if other.speaker != u.speaker or len({x.speaker for x in utts}) == 1:
            return other


def _nonspeech_items(utts: Sequence[Utterance], n: int, audio_dir: Path, rng: np.random.Generator) -> list[Utterance]:
    if n:
        audio_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for k in range(n):
        kind = ("noise", "tone", "silence")[k % 3]
        path = audio_dir / f"{kind}{k}.wav"
        soundfile.write(path, nonspeech_signal(kind, rng.uniform(1.0, 6.0), rng), SAMPLE_RATE)
        items.append(nonspeech(path, utts[int(rng.integers(len(utts)))], f"{NONSPEECH_SPEAKER}{k}~{kind}"))
    return items


def _utterance_from_dict(r: dict) -> Utterance:
    words = tuple(WordLabel(w["text"], tuple(w["phones"]),
                            None if w["phone_accuracy"] is None else tuple(w["phone_accuracy"]),
                            w["accuracy"], w["stress"], w["total"]) for w in r["words"])
    return Utterance(r["utt_id"], r["speaker"], r["split"], Path(r["audio_path"]), r["text"], words,
                     SentenceLabels(**r["sentence"]))
