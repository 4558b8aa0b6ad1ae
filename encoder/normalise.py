"""Reference text -> tokens with their spoken readings (numbers, years, money, times, abbreviations) and punctuation.

Each written token gets one or more spoken readings, the most common first: "1990" is read NINETEEN NINETY or
ONE THOUSAND NINE HUNDRED NINETY, "$5.50" FIVE DOLLARS FIFTY or FIVE DOLLARS FIFTY CENTS. Spelling numbers out is
left to libraries: `num2words` (years, ordinals, decimals) and `inflect` (cardinals, plurals); this module only
recognises the token and dispatches. Words are upper case; only letters, inner apostrophes and the dotted
CMUdict entries A.M./P.M. occur in them.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

Words = tuple[str, ...]


class TextError(ValueError):
    """The reference text cannot be turned into English phones; the message says why."""


@dataclass(frozen=True)
class Token:
    """One written token of the reference text."""

    text: str  # as written, e.g. "$5.50"
    readings: tuple[Words, ...]  # spoken forms, upper-case words, the default first; never empty
    punctuation: str = ""  # the punctuation written right after it ("", ",", ".", "?!", ...)


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
PAUSE_PUNCTUATION = ".,;:!?\u2014\u2013"  # kept in Token.punctuation (em/en dash included); other symbols are dropped

_AMPM = r"(?:[ap]\.?m\b\.?)"
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_TOKEN = re.compile(
    rf"(?P<time>\b\d{{1,2}}:\d{{2}}(?:\s*{_AMPM})?)"
    rf"|(?P<money>[$\u00a3\u20ac]\s?(?:{_NUMBER}))"
    rf"|(?P<percent>(?:{_NUMBER})\s?%)"
    r"|(?P<ordinal>\d+(?:st|nd|rd|th)\b)"
    r"|(?P<decade>\b\d{4}s\b)"
    rf"|(?P<hour>\b\d{{1,2}}\s?{_AMPM})"
    rf"|(?P<number>{_NUMBER})"
    r"|(?P<abbrev>\b(?:e\.g|i\.e|etc|vs|Dr|Mrs|Mr|Ms|St|Jr|Sr|Prof|Mt)\.)"
    r"|(?P<initialism>\b(?:[A-Za-z]\.){2,})"  # U.S.A., U.K.: its letters, and its dots are no sentence ends
    r"|(?P<word>[A-Za-z]+(?:'[A-Za-z]+)*)"
    rf"|(?P<punct>[{PAUSE_PUNCTUATION}]+)",
    re.IGNORECASE,
)

_CURRENCIES = {"$": ("DOLLAR", "CENT"), "\u00a3": ("POUND", "PENCE"), "\u20ac": ("EURO", "CENT")}
_ABBREVIATIONS: dict[str, tuple[Words, ...]] = {
    "e.g.": (("FOR", "EXAMPLE"), ("E.G.",)),
    "i.e.": (("THAT", "IS"), ("I", "E")),
    "etc.": (("ET", "CETERA"),),
    "vs.": (("VERSUS",),),
    "mr.": (("MISTER",),),
    "mrs.": (("MISSUS",),),
    "ms.": (("MS",),),
    "jr.": (("JUNIOR",),),
    "sr.": (("SENIOR",),),
    "prof.": (("PROFESSOR",),),
    "mt.": (("MOUNT",),),
}
# the title (at the start, before a name: "St. Paul") / the place (after a name or an ordinal: "Baker St.", "5th St.")
_PLACE_ABBREVIATIONS = {"st.": ("SAINT", "STREET"), "dr.": ("DOCTOR", "DRIVE")}


def tokenize(text: str) -> list[Token]:
    """Tokens of `text` with their readings and following punctuation; [] when nothing is pronounceable.

    Raises TextError for a number too long to read out.
    """
    text = _plain(text)
    matches = list(_TOKEN.finditer(text))
    tokens: list[Token] = []
    for k, m in enumerate(matches):
        if m.lastgroup == "punct":
            if tokens:
                tokens[-1] = Token(tokens[-1].text, tokens[-1].readings, tokens[-1].punctuation + m.group())
            continue
        readings = _readings(m, matches[k - 1] if k else None)
        ends_text = m.lastgroup in ("abbrev", "initialism") and k + 1 == len(matches)
        tokens.append(Token(m.group(), readings, "." if ends_text else ""))
    return tokens


def normalise_text(text: str) -> list[str]:
    """The default reading's upper-case words: accents stripped, numbers spelled out, punctuation dropped."""
    return [w for token in tokenize(text) for w in token.readings[0]]


def _plain(text: str) -> str:
    """Accents stripped, typographic apostrophes straightened, hyphens between words made spaces, invisible
    format characters (zero-width space and joiners, soft hyphen, direction marks: Unicode category Cf) dropped,
    so that text pasted with them keeps its words whole."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    text = "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Cf"))
    return re.sub(r"(?<=\w)-(?=\w)", " ", text)


def _readings(m: re.Match, before: re.Match | None) -> tuple[Words, ...]:
    kind, token = m.lastgroup, m.group()
    if kind == "word":
        return ((token.upper(),),)
    if kind == "abbrev":
        return _abbreviation(token, before)
    if kind == "initialism":
        return (tuple(c.upper() for c in token if c.isalpha()),)
    return _dedupe(_NUMBER_READERS[kind](token))


def _dedupe(readings: list[str]) -> tuple[Words, ...]:
    """Phrases -> word tuples, duplicates dropped, order kept."""
    seen: dict[Words, None] = {}
    for phrase in readings:
        seen.setdefault(_words(phrase), None)
    return tuple(seen)


def _words(phrase: str) -> Words:
    phrase = re.sub(r"[-,]", " ", phrase)
    return tuple(w.upper() for w in phrase.split())


# -- numbers ------------------------------------------------------------------------------------

def cardinal(number: str, andword: str = "") -> str:
    """'1990' -> 'one thousand, nine hundred ninety' (inflect); '3.14' -> 'three point one four'.

    Raises TextError when the number is too long for inflect.
    """
    import inflect

    try:
        return _inflect().number_to_words(number.replace(",", ""), andword=andword)
    except inflect.NumOutOfRangeError:
        raise TextError(f"the number {number[:12]}... is too long to read out") from None


def year(number: int) -> str:
    """1990 -> 'nineteen ninety', 2021 -> 'twenty twenty-one', 1905 -> 'nineteen oh-five' (num2words)."""
    from num2words import num2words

    return num2words(number, lang="en", to="year")


def is_year(number: str) -> bool:
    """Four digits read as a year by default: 1100-1999 and 2000-2099 (no thousands comma)."""
    return bool(re.fullmatch(r"\d{4}", number)) and 1100 <= int(number) <= 2099


def _number(token: str) -> list[str]:
    if is_year(token):
        return _year_readings(int(token))
    readings = [cardinal(token), cardinal(token, andword="and")]
    if re.fullmatch(r"0\.\d+", token):  # "point five" for 0.5
        readings.append(readings[0].removeprefix("zero "))
    if re.fullmatch(r"10\d[1-9]|10[1-9]0", token):  # 1066 may be a year too: "ten sixty-six"
        readings.append(year(int(token)))
    return readings


def _year_readings(number: int) -> list[str]:
    if 2000 <= number <= 2009:  # "two thousand five", "two thousand and five"
        return [cardinal(str(number)), cardinal(str(number), andword="and"), year(number)]
    readings = [year(number)]
    if number < 2000 and number % 100:  # "nineteen hundred ninety" (espeak-ng reads 1990 so)
        readings.append(f"{cardinal(str(number // 100))} hundred {cardinal(str(number % 100))}")
    return readings + [cardinal(str(number)), cardinal(str(number), andword="and")]


def _decade(token: str) -> list[str]:
    *head, last = _words(year(int(token[:4])))
    return [" ".join(head + [_inflect().plural(last.lower())])]


def _ordinal(token: str) -> list[str]:
    from num2words import num2words

    digits = re.match(r"\d+", token).group()
    if len(digits) > 30:
        raise TextError(f"the number {digits[:12]}... is too long to read out")
    return [num2words(int(digits), lang="en", to="ordinal")]


def _percent(token: str) -> list[str]:
    amount = token.rstrip("% ")
    return [f"{cardinal(amount)} percent", f"{cardinal(amount, andword='and')} percent"]


def _money(token: str) -> list[str]:
    unit, subunit = _CURRENCIES[token[0]]
    amount = token[1:].strip().replace(",", "")
    whole, _, fraction = amount.partition(".")
    cents = _cents(fraction)
    main = _counted(whole, unit) if int(whole) or not cents else ""
    if not cents:
        return [main]
    if not main:
        return [_counted(cents, subunit)]
    spoken_cents = cardinal(cents)
    return [f"{main} {spoken_cents}", f"{main} {_counted(cents, subunit)}",
            f"{main} and {_counted(cents, subunit)}", f"{cardinal(whole)} {spoken_cents}"]


def _cents(fraction: str) -> str:
    """'5' -> '50', '05' -> '5', '00' or '' -> ''; longer fractions keep two digits."""
    cents = int((fraction + "00")[:2]) if fraction else 0
    return str(cents) if cents else ""


def _counted(number: str, unit: str) -> str:
    """'1', 'DOLLAR' -> 'one dollar'; '5' -> 'five dollars' (pence stays pence)."""
    noun = unit.lower() if int(number) == 1 or unit == "PENCE" else _inflect().plural(unit.lower())
    return f"{cardinal(number)} {noun}"


def _time(token: str) -> list[str]:
    clock, suffix = re.match(rf"(\d{{1,2}}:\d{{2}})\s*({_AMPM})?", token, re.IGNORECASE).groups()
    hours, minutes = (int(x) for x in clock.split(":"))
    if hours > 24 or minutes > 59:
        return [f"{cardinal(str(hours))} {cardinal(str(minutes))}"]
    ampm = _ampm(suffix)
    hour = cardinal(str(hours))
    if minutes == 0:
        return [f"{hour} {ampm}"] if ampm else [f"{hour} o'clock", hour]
    spoken = cardinal(str(minutes)) if minutes >= 10 else f"oh {cardinal(str(minutes))}"
    return [f"{hour} {spoken} {ampm}".strip()]


def _hour(token: str) -> list[str]:
    hours, suffix = re.match(rf"(\d{{1,2}})\s?({_AMPM})", token, re.IGNORECASE).groups()
    return [f"{cardinal(hours)} {_ampm(suffix)}"]


def _ampm(suffix: str | None) -> str:
    return "" if not suffix else ("a.m." if suffix[0].lower() == "a" else "p.m.")


_NUMBER_READERS = {"time": _time, "money": _money, "percent": _percent, "ordinal": _ordinal,
                   "decade": _decade, "hour": _hour, "number": _number}


# -- abbreviations ------------------------------------------------------------------------------

def _abbreviation(token: str, before: re.Match | None) -> tuple[Words, ...]:
    key = token.lower()
    if key in _PLACE_ABBREVIATIONS:
        title, place = _PLACE_ABBREVIATIONS[key]  # "Baker St." / "5th St." -> street; "St. Paul" -> saint
        return ((place,),) if _is_name_or_number(before) else ((title,),)
    return _ABBREVIATIONS[key]


def _is_name(m: re.Match | None) -> bool:
    """A capitalised word that is not a capitalised function word ("At St. Mary's" is not after a name)."""
    return (m is not None and m.lastgroup == "word" and m.group()[0].isupper()
            and m.group().lower() not in _FUNCTION_WORDS)


_FUNCTION_WORDS = frozenset(
    "a an the at in on to from of for by with near and or but we i you he she they it this that there "
    "visit visited go went see saw meet met".split())


def _is_name_or_number(m: re.Match | None) -> bool:
    return _is_name(m) or (m is not None and m.lastgroup == "ordinal")


@functools.lru_cache(maxsize=1)
def _inflect():
    import inflect

    return inflect.engine()
