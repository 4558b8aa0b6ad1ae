"""Is the text to be read English at all? orthoepy assesses English read speech only.

A text is judged not English when both hold:
- langid.py (Lui & Baldwin 2012; its bundled model, restricted to `LANGUAGES`) identifies another language with
  probability >= `FOREIGN_PROBABILITY`, and
- at least `FOREIGN_UNKNOWN_SHARE` of its words are in neither the corpus lexicon nor CMUdict (pronounced by g2p).
Either alone misfires on short English texts (langid calls "FIVE FIVE ZERO SIX" Basque; names are not in
CMUdict); together they flagged none of the 4,760 speechocean762 texts (train and test) while catching French,
German, Spanish and Italian sentences (recipes/local/verification_benchmark.py's other-language cases).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "pl", "ru", "tr", "sv", "da", "no", "fi", "cs", "ro", "hu",
             "id", "vi", "zh", "ja", "ko", "ar")
FOREIGN_PROBABILITY = 0.99
FOREIGN_UNKNOWN_SHARE = 0.25


@dataclass(frozen=True)
class TextLanguage:
    language: str  # ISO 639-1 code langid.py gives the text
    probability: float  # 0-1
    unknown_share: float  # share of the words pronounced by g2p (not in the corpus lexicon or CMUdict)

    @property
    def foreign(self) -> bool:
        return (self.language != "en" and self.probability >= FOREIGN_PROBABILITY
                and self.unknown_share >= FOREIGN_UNKNOWN_SHARE)


@lru_cache(maxsize=1)
def _identifier():
    from langid.langid import LanguageIdentifier, model

    identifier = LanguageIdentifier.from_modelstring(model, norm_probs=True)
    identifier.set_languages(list(LANGUAGES))
    return identifier


def identify(words: list[str], sources: list[str]) -> TextLanguage:
    """words: the text's normalised words; sources: per word "corpus", "cmudict" or "g2p" (lexicon.Pronunciation)."""
    if not words:
        return TextLanguage("en", 0.0, 0.0)
    language, probability = _identifier().classify(" ".join(words).lower())
    return TextLanguage(language, float(probability), sum(s == "g2p" for s in sources) / len(sources))
