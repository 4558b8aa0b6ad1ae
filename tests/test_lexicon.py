import pytest

from orthoepy.encoder.lexicon import Lexicon, Pronunciation, TextError, normalise_text


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


# -- spoken forms -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, words", [
    ("1990", "NINETEEN NINETY"),
    ("2021", "TWENTY TWENTY ONE"),
    ("1905", "NINETEEN OH FIVE"),
    ("2005", "TWO THOUSAND FIVE"),
    ("1,990", "ONE THOUSAND NINE HUNDRED NINETY"),
    ("$5", "FIVE DOLLARS"),
    ("$1", "ONE DOLLAR"),
    ("$5.50", "FIVE DOLLARS FIFTY"),
    ("$0.99", "NINETY NINE CENTS"),
    ("$0.00", "ZERO DOLLARS"),
    ("12.5%", "TWELVE POINT FIVE PERCENT"),
    ("\u00a33", "THREE POUNDS"),
    ("\u20ac1", "ONE EURO"),
    ("3rd", "THIRD"),
    ("21st", "TWENTY FIRST"),
    ("3.14", "THREE POINT ONE FOUR"),
    ("50%", "FIFTY PERCENT"),
    ("10:30", "TEN THIRTY"),
    ("10:05", "TEN OH FIVE"),
    ("10:00", "TEN O'CLOCK"),
    ("7 pm", "SEVEN P.M."),
    ("9:15 a.m.", "NINE FIFTEEN A.M."),
    ("the 1990s", "THE NINETEEN NINETIES"),
    ("Dr. Smith", "DOCTOR SMITH"),
    ("Mr. and Mrs. Ms. Brown", "MISTER AND MISSUS MS BROWN"),
    ("St. Paul", "SAINT PAUL"),
    ("I visited St. Paul", "I VISITED SAINT PAUL"),
    ("Baker St. is long", "BAKER STREET IS LONG"),
    ("5th St.", "FIFTH STREET"),
    ("apples, pears etc.", "APPLES PEARS ET CETERA"),
    ("fruit, e.g. apples", "FRUIT FOR EXAMPLE APPLES"),
])
def test_spoken_forms(text, words):
    assert " ".join(normalise_text(text)) == words
    assert " ".join(Lexicon().pronounce(text).words) == words


def test_readings_give_alternatives_default_first():
    readings = Lexicon().readings("In 1990.")
    assert [" ".join(r.words) for r in readings] == [
        "IN NINETEEN NINETY", "IN NINETEEN HUNDRED NINETY", "IN ONE THOUSAND NINE HUNDRED NINETY",
        "IN ONE THOUSAND NINE HUNDRED AND NINETY"]
    assert [" ".join(r.words) for r in Lexicon().readings("In 1900.")] == ["IN NINETEEN HUNDRED",
                                                                        "IN ONE THOUSAND NINE HUNDRED"]
    assert [" ".join(r.words) for r in Lexicon().readings("In 1066.")][::2] == [
        "IN ONE THOUSAND SIXTY SIX", "IN TEN SIXTY SIX"]  # the cardinal first, the year as another reading
    assert readings[0] == Lexicon().pronounce("In 1990.")
    assert all(r.punctuation[-1] == "." for r in readings)
    money = [" ".join(r.words) for r in Lexicon().readings("$5.50", limit=10)]
    assert money[0] == "FIVE DOLLARS FIFTY" and "FIVE DOLLARS FIFTY CENTS" in money and "FIVE FIFTY" in money
    assert len(Lexicon().readings("1990 and 2005", limit=2)) == 2
    assert len(Lexicon().readings("hello world")) == 1


def test_readings_bad_input():
    with pytest.raises(ValueError, match="limit"):
        Lexicon().readings("hello", limit=0)
    with pytest.raises(TextError, match="no pronounceable English word"):
        Lexicon().readings("?!")
    with pytest.raises(TextError, match="too long"):
        Lexicon().pronounce("the " + "1" * 40 + "th")


def test_punctuation_on_the_last_word_of_a_token():
    p = Lexicon().pronounce("Well, in 1990 we paid $5... Really?! Yes \u2014 ok")
    assert p.words == ("WELL", "IN", "NINETEEN", "NINETY", "WE", "PAID", "FIVE", "DOLLARS", "REALLY", "YES", "OK")
    assert p.punctuation == (",", "", "", "", "", "", "", "...", "?!", "\u2014", "")


def test_every_dictionary_pronunciation_is_a_variant():
    p = Lexicon().pronounce("either zorblaxian")
    assert p.variants[0] == (("IY1", "DH", "ER0"), ("AY1", "DH", "ER0"))
    assert p.phones[0] == p.variants[0][0]
    assert p.sources[1] == "g2p" and p.variants[1] == (p.phones[1],)
    swapped = p.with_variant(0, 1)
    assert swapped.phones[0] == ("AY1", "DH", "ER0") and swapped.variants[0] == (("AY1", "DH", "ER0"), ("IY1", "DH", "ER0"))
    assert swapped.words == p.words and swapped.phones[1] == p.phones[1]


def test_pronunciation_defaults_and_validation():
    p = Pronunciation(("A",), (("AH0",),), ("cmudict",))
    assert p.punctuation == ("",) and p.variants == ((("AH0",),),)
    with pytest.raises(ValueError, match="per word"):
        Pronunciation(("A", "B"), (("AH0",),), ("cmudict",))


@pytest.mark.parametrize("text, word, phones", [
    ("I want to read it", 3, ("R", "IY1", "D")),
    ("You should not read it", 3, ("R", "IY1", "D")),
    ("I have read it", 2, ("R", "EH1", "D")),
    ("It was read aloud", 2, ("R", "EH1", "D")),
    ("He read it", 1, ("R", "EH1", "D")),
    ("They live here", 1, ("L", "IH1", "V")),
    ("It was a live show", 3, ("L", "AY1", "V")),
    ("The music is live", 3, ("L", "AY1", "V")),
    ("You lead the way", 1, ("L", "IY1", "D")),
    ("Wind the clock", 0, ("W", "AY1", "N", "D")),
    ("The wind blew", 1, ("W", "IH1", "N", "D")),
    ("A tear fell", 1, ("T", "IH1", "R")),
    ("Do not tear it", 2, ("T", "EH1", "R")),
    ("Please close the door", 1, ("K", "L", "OW1", "Z")),
    ("It is close", 2, ("K", "L", "OW1", "S")),
    ("I object", 1, ("AH0", "B", "JH", "EH1", "K", "T")),
    ("The object", 1, ("AA1", "B", "JH", "EH0", "K", "T")),
    ("A record", 1, ("R", "EH1", "K", "ER0", "D")),
    ("To record", 1, ("R", "IH0", "K", "AO1", "R", "D")),
    ("For use", 1, ("Y", "UW1", "S")),
    ("We use it", 1, ("Y", "UW1", "Z")),
])
def test_homographs_from_context(text, word, phones):
    p = Lexicon().pronounce(text)
    assert p.phones[word] == phones
    assert len(p.variants[word]) >= 2  # the other reading stays accepted


def test_ambiguous_homograph_keeps_both_readings():
    p = Lexicon().pronounce("I read it")
    assert set(p.variants[1]) == {("R", "IY1", "D"), ("R", "EH1", "D")}


def test_corpus_lexicon_variants(tmp_path):
    (tmp_path / "resource").mkdir()
    (tmp_path / "resource" / "lexicon.txt").write_text("A\tAH0\nA\tEY0\nREAD\tR IY0 D\n")
    lexicon = Lexicon.from_corpus(tmp_path)
    p = lexicon.pronounce("a read")
    assert p.variants[0][:2] == (("AH0",), ("EY0",)) and p.sources == ("corpus", "corpus")
    assert p.phones[1] == ("R", "IY0", "D")  # the corpus's own entry, not overridden by context
    assert lexicon.pronounce("I have read").phones[2] == ("R", "EH1", "D")  # CMUdict's reading fits the context


def test_an_initialism_is_read_as_its_letters_and_its_dots_end_no_sentence():
    reading = Lexicon().pronounce("Dr. Smith lives in the U.S.A. The U.K. is small.")
    assert reading.words == ("DOCTOR", "SMITH", "LIVES", "IN", "THE", "U", "S", "A", "THE", "U", "K", "IS", "SMALL")
    assert reading.punctuation == ("",) * 12 + (".",)


def test_invisible_format_characters_do_not_split_words():
    pasted = "She sells fre\u200bsh bre\u00adad\u200d every\ufeff morning\u200f"
    assert normalise_text(pasted) == ["SHE", "SELLS", "FRESH", "BREAD", "EVERY", "MORNING"]
