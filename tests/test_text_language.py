"""Is the text English: langid.py plus the share of words no English dictionary has."""
from __future__ import annotations

import json

import pytest

from orthoepy.encoder.lexicon import Lexicon
from orthoepy.encoder.text_language import TextLanguage, identify
from orthoepy.encoder.verification import Evidence, VerifierConfig, decide

FOREIGN = {"fr": "Je voudrais une tasse de café s'il vous plaît", "de": "Ich möchte bitte eine Tasse Kaffee",
           "es": "Me gustaría una taza de café por favor", "it": "Vorrei una tazza di caffè per favore"}


def _identify(lexicon: Lexicon, text: str) -> TextLanguage:
    reading = lexicon.pronounce(text)
    return identify(list(reading.words), list(reading.sources))


@pytest.mark.parametrize("language", sorted(FOREIGN))
def test_foreign_texts_are_identified(language):
    found = _identify(Lexicon(), FOREIGN[language])
    assert found.language == language and found.foreign


def test_short_english_texts_are_not_foreign(fixture_dir):
    lexicon = Lexicon()
    texts = [u["text"] for u in json.loads((fixture_dir / "scores.json").read_text()).values()]
    texts += ["FIVE FIVE ZERO SIX", "Look at Jayme's sneakers", "I would like a cup of coffee please"]
    assert not [t for t in texts if _identify(lexicon, t).foreign]


def test_a_foreign_text_leaves_every_word_unread_with_its_own_warning():
    words, reference = ["ICH", "MOCHTE"], [("IH1", "K"), ("M", "AA1", "K", "T", "AH0")]
    evidence = Evidence(1.0, "en", 0.7, (), (0.9, 0.9), (), text_language=TextLanguage("de", 1.0, 1.0))
    verdict = decide(evidence, words, reference, VerifierConfig())
    assert verdict.share_read == 0 and not verdict.matches_text
    assert verdict.warnings[0].startswith("the text is not English (identified: de)")
    english = decide(Evidence(1.0, "en", 0.7, (), (0.9, 0.9), (), text_language=TextLanguage("de", 0.5, 1.0)),
                     words, reference, VerifierConfig())
    assert english.share_read == 1
