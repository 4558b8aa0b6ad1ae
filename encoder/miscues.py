"""Learned miscue detection: which words of the text were not read, and where something was read that is not in it.

The verification's thresholds (encoder/verification.py) look at one kind of evidence at a time; here two logistic
regressions (scikit-learn) weigh all of it together once the recording is aligned:

- the **word detector**, per reference word: P(the word was not read), from its forced probability, the free
  and the prompted transcriptions (did either hear this word, how sure), its aligned duration (a word the
  aligner squeezed to its minimum was not there), and the phone recogniser's skip gain (encoder/phone_gains.py:
  how much likelier the text's phones are without the word, with no language model to fill it in);
- the **text detector**, per recording: P(it is not a reading of this text at all: another sentence, another
  language), from the forced probabilities over the whole text, how much of the text either transcription
  heard, and the language identification;
- the **gap detector**, per gap between two consecutive reference words: P(an extra word was read there), from
  the voice activity the alignment leaves unexplained in the gap, the words the transcriptions heard there that
  are not in the text, the gain in the forced text's probability when a neighbouring word is read twice, the
  neighbours' stretched durations, and the phone recogniser's repeat gains of both neighbours and insert gain
  of the gap (unknown phones there).

Trained by `recipes/local/train_miscues.py` on the verification benchmark's train cases (words cut out of the
audio, texts longer than what was read, words spliced in from other recordings, repeated words, untouched
readings as negatives); the two thresholds are set by speaker-disjoint cross-validation to a budget of false flags
on untouched readings (docs/verification.md). The fitted pipelines (StandardScaler + LogisticRegression) are
stored as plain numbers in JSON (`miscues.json` in a model directory), so loading runs no pickle.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the evidence record; imported lazily at run time to keep this module model-free
    from .phone_gains import PhoneGains
    from .verification import Evidence

FILE = "miscues.json"
WORD_FEATURES = ("log_forced", "utterance_log_forced", "plain_distance", "plain_probability", "prompted_distance",
                 "prompted_probability", "plain_share", "prompted_share", "log_s_per_phone", "log_relative_s_per_phone",
                 "skip_gain", "relative_skip_gain")
GAP_FEATURES = ("voiced_s", "gap_s", "plain_extra_probability", "prompted_extra_probability", "doubled_before",
                "doubled_after", "relative_doubled_before", "log_relative_s_per_phone", "low_log_forced",
                "repeat_gain_before", "repeat_gain_after", "insert_gain", "relative_insert_gain")
TEXT_FEATURES = ("median_log_forced", "mean_log_forced", "plain_share", "prompted_share", "prompted_mean_distance",
                 "english_probability", "log_words")
SAME_WORD = 0.25  # phone distance up to which a heard word counts as the reference word (as the verifier's default)
FLOOR = 1e-4  # probabilities are clipped here before the log
DOUBLED_UNKNOWN = -11.0  # doubled-word gain where it was not computed: the median over words of untouched train readings


class MiscueModelError(ValueError):
    """A miscues.json that cannot be used (wrong features, wrong shapes); the message says which."""


@dataclass(frozen=True)
class LogisticScorer:
    """A standardised logistic regression as numbers: p = sigmoid(((e(x) - mean) / scale) @ coef + intercept), where
    e expands the features to all their products up to `degree` (scikit-learn's PolynomialFeatures order)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float  # probability from which the detector flags
    degree: int = 1

    @classmethod
    def from_pipeline(cls, pipeline, features: tuple[str, ...], threshold: float) -> "LogisticScorer":
        """From a fitted sklearn Pipeline([PolynomialFeatures,] StandardScaler, LogisticRegression)."""
        scaler, logistic = pipeline[-2], pipeline[-1]
        degree = int(pipeline[0].degree) if len(pipeline) == 3 else 1
        return cls(tuple(features), tuple(map(float, scaler.mean_)), tuple(map(float, scaler.scale_)),
                   tuple(map(float, logistic.coef_[0])), float(logistic.intercept_[0]), float(threshold), degree)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """x: (n, len(features)) -> (n,) probabilities."""
        if x.size == 0:
            return np.zeros(len(x))
        if self.degree > 1:
            from sklearn.preprocessing import PolynomialFeatures

            x = PolynomialFeatures(self.degree, include_bias=False).fit_transform(x)
        z = ((x - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class MiscueDetector:
    """The word and gap detectors; `load`/`save` read and write `miscues.json`."""

    word: LogisticScorer
    gap: LogisticScorer
    text: LogisticScorer  # P(the recording is not a reading of this text): another text, another language
    trained_on: str = ""  # how it was trained (the recipe's command and case counts)

    def other_text(self, evidence: "Evidence", reference: list[tuple[str, ...]]) -> float:
        """P(the recording is not a reading of the text at all); needs no alignment."""
        return float(self.text.probabilities(text_features(evidence, reference)[None, :])[0])

    def not_read(self, evidence: "Evidence", reference: list[tuple[str, ...]],
                 aligned: list[tuple[float, float, int]]) -> np.ndarray:
        """(n_words,) P(word not read); aligned: per word (start s, end s, phone count)."""
        return self.word.probabilities(word_features(evidence, reference, aligned))

    def extra_read(self, evidence: "Evidence", reference: list[tuple[str, ...]],
                   aligned: list[tuple[float, float, int]]) -> np.ndarray:
        """(n_words - 1,) P(an extra word was read between word k and word k + 1)."""
        return self.gap.probabilities(gap_features(evidence, reference, aligned))

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILE
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> "MiscueDetector | None":
        """The detector of a model directory, None when it has no miscues.json; MiscueModelError if unusable."""
        path = Path(directory) / FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        word, gap, text = (LogisticScorer(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw[name].items()})
                           for name in ("word", "gap", "text"))
        for scorer, expected in ((word, WORD_FEATURES), (gap, GAP_FEATURES), (text, TEXT_FEATURES)):
            if tuple(scorer.features) != expected or len(scorer.mean) != len(scorer.coef):
                raise MiscueModelError(f"{path}: features {scorer.features} differ from this version's {expected}")
        return cls(word, gap, text, raw.get("trained_on", ""))


# ------------------------------------------------------------------------------------------------- features

@dataclass(frozen=True)
class HeardAt:
    """One transcription laid over the reference words."""

    distance: np.ndarray  # (n_words,) phone distance of the heard word aligned to each word, 1.0 for none
    probability: np.ndarray  # (n_words,) its recogniser confidence, 0 for none
    extra: np.ndarray  # (n_words + 1,) highest confidence of a heard word in no word's place, after word k - 1


def heard_at(reference: list[tuple[str, ...]], heard) -> HeardAt:
    from .verification import align_words, phone_distance

    n = len(reference)
    distance, probability, extra = np.ones(n), np.zeros(n), np.zeros(n + 1)
    last = -1
    for r, h in align_words(reference, [w.phones for w in heard]):
        if r is None:
            extra[last + 1] = max(extra[last + 1], heard[h].probability)
            continue
        last = r
        if h is not None:
            distance[r], probability[r] = phone_distance(reference[r], heard[h].phones), heard[h].probability
    return HeardAt(distance, probability, extra)


def _seconds_per_phone(aligned: list[tuple[float, float, int]]) -> np.ndarray:
    return np.array([max(end - start, 1e-3) / max(n, 1) for start, end, n in aligned])


def word_features(evidence: "Evidence", reference: list[tuple[str, ...]],
                  aligned: list[tuple[float, float, int]]) -> np.ndarray:
    """(n_words, len(WORD_FEATURES)) in WORD_FEATURES order."""
    log_forced = np.log(np.clip(np.asarray(evidence.forced, float), FLOOR, 1.0))
    plain, prompted = heard_at(reference, evidence.heard), heard_at(reference, evidence.prompted)
    log_spp = np.log(_seconds_per_phone(aligned))
    n = len(reference)
    skip = np.asarray(_phone_gains(evidence, n).skip, float)
    columns = (log_forced, np.full(n, np.median(log_forced)), plain.distance, plain.probability,
               prompted.distance, prompted.probability, np.full(n, np.mean(plain.distance <= SAME_WORD)),
               np.full(n, np.mean(prompted.distance <= SAME_WORD)), log_spp, log_spp - np.median(log_spp),
               skip, skip - np.median(skip))
    return np.stack(columns, axis=1) if len(reference) else np.zeros((0, len(WORD_FEATURES)))


def gap_features(evidence: "Evidence", reference: list[tuple[str, ...]],
                 aligned: list[tuple[float, float, int]]) -> np.ndarray:
    """(n_words - 1, len(GAP_FEATURES)) in GAP_FEATURES order; row k is the gap after word k."""
    n = len(reference)
    if n < 2:
        return np.zeros((0, len(GAP_FEATURES)))
    log_forced = np.log(np.clip(np.asarray(evidence.forced, float), FLOOR, 1.0))
    plain, prompted = heard_at(reference, evidence.heard), heard_at(reference, evidence.prompted)
    doubled = np.asarray(evidence.doubled, float) if len(evidence.doubled) == n else np.full(n, DOUBLED_UNKNOWN)
    log_spp = np.log(_seconds_per_phone(aligned))
    relative = log_spp - np.median(log_spp)
    phone = _phone_gains(evidence, n)
    repeat, insert = np.asarray(phone.repeat, float), np.asarray(phone.insert, float)
    rows = []
    for k in range(n - 1):
        gap = (aligned[k][1], aligned[k + 1][0])
        voiced = sum(max(0.0, min(gap[1], b) - max(gap[0], a)) for a, b in evidence.speech)
        rows.append((voiced, gap[1] - gap[0], plain.extra[k + 1], prompted.extra[k + 1], doubled[k], doubled[k + 1],
                     doubled[k] - np.median(doubled), max(relative[k], relative[k + 1]),
                     min(log_forced[k], log_forced[k + 1]), repeat[k], repeat[k + 1], insert[k],
                     insert[k] - np.median(insert[:-1])))
    return np.asarray(rows, float)


def _phone_gains(evidence: "Evidence", n_words: int) -> "PhoneGains":
    """The evidence's phone-recogniser gains, or the unknown values where they were not computed (older records)."""
    from .phone_gains import PhoneGains

    gains = evidence.phone_gains
    return gains if gains is not None and len(gains.skip) == n_words else PhoneGains.unknown(n_words)


def text_features(evidence: "Evidence", reference: list[tuple[str, ...]]) -> np.ndarray:
    """(len(TEXT_FEATURES),) in TEXT_FEATURES order."""
    log_forced = np.log(np.clip(np.asarray(evidence.forced, float), FLOOR, 1.0))
    plain, prompted = heard_at(reference, evidence.heard), heard_at(reference, evidence.prompted)
    english = evidence.language_probability if evidence.language == "en" else 0.0
    return np.array([np.median(log_forced), np.mean(log_forced), np.mean(plain.distance <= SAME_WORD),
                     np.mean(prompted.distance <= SAME_WORD), np.mean(prompted.distance), english,
                     np.log(len(reference))])
