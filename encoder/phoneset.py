"""The ARPAbet phone set shared by labels, alignment and features.

speechocean762 labels phones as ARPAbet with optional stress digits ("AO0", "IH").
Everything downstream works on the 39 stress-less base phones; stress travels separately.
"""
from __future__ import annotations

from dataclasses import dataclass

PHONES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G",
    "HH", "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH",
    "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)
PHONE_INDEX: dict[str, int] = {p: i for i, p in enumerate(PHONES)}
VOWELS: frozenset[str] = frozenset(
    {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
)
WORD_POSITIONS: tuple[str, ...] = ("B", "I", "E", "S")


@dataclass(frozen=True)
class CanonicalPhone:
    """One phone of the text the learner was asked to read."""

    symbol: str  # as labelled, e.g. "AO0"
    base: str  # stress-less ARPAbet, e.g. "AO"
    stress: int | None  # 0/1/2 for vowels where given
    word_index: int
    position: str  # B(egin), I(nside), E(nd) or S(ingle-phone word)

    @property
    def is_vowel(self) -> bool:
        return self.base in VOWELS


def split_stress(symbol: str) -> tuple[str, int | None]:
    """'AO0' -> ('AO', 0); 'T' -> ('T', None). Raises ValueError for unknown phones."""
    symbol = symbol.strip().upper()
    stress = None
    if symbol and symbol[-1].isdigit():
        stress = int(symbol[-1])
        symbol = symbol[:-1]
    if symbol not in PHONE_INDEX:
        raise ValueError(f"unknown ARPAbet phone {symbol!r}; expected one of {', '.join(PHONES)}")
    return symbol, stress


def canonical_phones(word_phones: list[list[str]]) -> list[CanonicalPhone]:
    """Flatten per-word phone lists into CanonicalPhone records with word positions."""
    out: list[CanonicalPhone] = []
    for w, phones in enumerate(word_phones):
        n = len(phones)
        for i, sym in enumerate(phones):
            base, stress = split_stress(sym)
            pos = "S" if n == 1 else "B" if i == 0 else "E" if i == n - 1 else "I"
            out.append(CanonicalPhone(sym, base, stress, w, pos))
    return out


# Articulatory traits: targets for multi-task pretraining and inputs for diagnosis.
_CONSONANT_TRAITS: dict[str, tuple[str, str, bool]] = {
    # phone: (place, manner, voiced)
    "B": ("bilabial", "stop", True), "P": ("bilabial", "stop", False),
    "D": ("alveolar", "stop", True), "T": ("alveolar", "stop", False),
    "G": ("velar", "stop", True), "K": ("velar", "stop", False),
    "CH": ("postalveolar", "affricate", False), "JH": ("postalveolar", "affricate", True),
    "F": ("labiodental", "fricative", False), "V": ("labiodental", "fricative", True),
    "TH": ("dental", "fricative", False), "DH": ("dental", "fricative", True),
    "S": ("alveolar", "fricative", False), "Z": ("alveolar", "fricative", True),
    "SH": ("postalveolar", "fricative", False), "ZH": ("postalveolar", "fricative", True),
    "HH": ("glottal", "fricative", False),
    "M": ("bilabial", "nasal", True), "N": ("alveolar", "nasal", True), "NG": ("velar", "nasal", True),
    "L": ("alveolar", "lateral", True), "R": ("alveolar", "approximant", True),
    "W": ("labiovelar", "approximant", True), "Y": ("palatal", "approximant", True),
}
_VOWEL_TRAITS: dict[str, tuple[str, str, bool]] = {
    # phone: (height, backness, diphthong)
    "IY": ("high", "front", False), "IH": ("high", "front", False), "UW": ("high", "back", False),
    "UH": ("high", "back", False), "EY": ("mid", "front", True), "EH": ("mid", "front", False),
    "AH": ("mid", "central", False), "ER": ("mid", "central", False), "OW": ("mid", "back", True),
    "AO": ("low", "back", False), "AE": ("low", "front", False), "AA": ("low", "back", False),
    "AY": ("low", "front", True), "AW": ("low", "back", True), "OY": ("mid", "back", True),
}
PLACES = ("bilabial", "labiodental", "dental", "alveolar", "postalveolar", "palatal", "velar",
          "labiovelar", "glottal", "vowel")
MANNERS = ("stop", "affricate", "fricative", "nasal", "lateral", "approximant", "vowel")
HEIGHTS = ("high", "mid", "low", "consonant")
BACKNESS = ("front", "central", "back", "consonant")


@dataclass(frozen=True)
class ArticulatoryTraits:
    place: str
    manner: str
    voiced: bool
    height: str
    backness: str


def traits(base: str) -> ArticulatoryTraits:
    if base in _VOWEL_TRAITS:
        height, backness, _ = _VOWEL_TRAITS[base]
        return ArticulatoryTraits("vowel", "vowel", True, height, backness)
    place, manner, voiced = _CONSONANT_TRAITS[base]
    return ArticulatoryTraits(place, manner, voiced, "consonant", "consonant")


# IPA tokens of the CTC phone recogniser that stand for each ARPAbet phone (General American).
IPA_TO_ARPABET: dict[str, str] = {
    "ɑ": "AA", "a": "AA", "ɒ": "AA", "ä": "AA",
    "æ": "AE",
    "ʌ": "AH", "ə": "AH", "ɐ": "AH", "ᵊ": "AH",
    "ɔ": "AO",
    "aʊ": "AW",
    "aɪ": "AY",
    "b": "B", "ɓ": "B", "β": "B",
    "t͡ʃ": "CH", "t͡ɕ": "CH", "t͡ɕʰ": "CH",
    "d": "D", "ɖ": "D", "ɗ": "D", "ɾ": "D",
    "ð": "DH",
    "ɛ": "EH", "e": "EH", "eə": "EH",
    "ɝ": "ER", "ɚ": "ER", "ɜ": "ER",
    "eɪ": "EY",
    "f": "F", "ɸ": "F",
    "g": "G", "ɡ": "G", "ɣ": "G",
    "h": "HH", "ɦ": "HH", "x": "HH", "χ": "HH", "ħ": "HH",
    "ɪ": "IH", "ɨ": "IH", "ɪə": "IH",
    "i": "IY", "ì": "IY",
    "d͡ʒ": "JH", "ʑ": "JH", "ʝ": "JH",
    "k": "K", "kʰ": "K", "k͈": "K", "c": "K",
    "l": "L", "ɫ": "L", "ʎ": "L", "ɮ": "L",
    "m": "M", "ɱ": "M",
    "n": "N", "ɲ": "N", "ñ": "N",
    "ŋ": "NG", "ɴ": "NG",
    "oʊ": "OW", "o": "OW", "ɵ": "OW",
    "ɔɪ": "OY",
    "p": "P", "pʰ": "P", "p͈": "P",
    "ɹ": "R", "r": "R", "ɻ": "R", "ʀ": "R", "ʁ": "R", "ɽ": "R",
    "s": "S", "s͈": "S",
    "ʃ": "SH", "ɕ": "SH", "ʂ": "SH",
    "t": "T", "tʰ": "T", "t͈": "T", "ʈ": "T",
    "θ": "TH",
    "ʊ": "UH",
    "u": "UW", "ʉ": "UW", "ɯ": "UW", "ju": "UW",
    "v": "V", "ʋ": "V",
    "w": "W", "ɰ": "W",
    "j": "Y", "ɥ": "Y",
    "z": "Z", "ʐ": "Z",
    "ʒ": "ZH",
}
