import pytest

from orthoepy.encoder.lexicon import Lexicon, TextError, normalise_text


def test_normalisation():
    assert normalise_text("I don\u2019t have 3 cats!") == ["I", "DON'T", "HAVE", "THREE", "CATS"]
    assert normalise_text("  Caf\u00e9, well-known... 'quoted' ") == ["CAFE", "WELL", "KNOWN", "QUOTED"]
    assert normalise_text("21") == ["TWENTY", "ONE"]


def test_sources_in_order():
    lexicon = Lexicon({"HELLO": ("HH", "AH0", "L", "OW1")})
    p = lexicon.pronounce("hello world zorblaxian")
    assert p.sources == ("corpus", "cmudict", "g2p")
    assert p.phones[0] == ("HH", "AH0", "L", "OW1")
    assert p.phones[1] == ("W", "ER1", "L", "D")
    assert len(p.phones[2]) >= 6  # a plausible neural pronunciation of an unknown word
    assert [c.word_index for c in p.canonical][-1] == 2


def test_no_pronounceable_word():
    for text in ("", "   ", "?!...", "\u4f60\u597d"):
        with pytest.raises(TextError, match="no pronounceable English word"):
            Lexicon().pronounce(text)


def test_corpus_lexicon(tmp_path):
    (tmp_path / "resource").mkdir()
    (tmp_path / "resource" / "lexicon.txt").write_text("A\tAH0\nA\tEY0\nBEAR\tB EH0 R\n")
    lexicon = Lexicon.from_corpus(tmp_path)
    assert lexicon.pronounce("a bear").phones == (("AH0",), ("B", "EH0", "R"))
