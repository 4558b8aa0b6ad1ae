"""What a rationale says, read from free text: aspect judgements, quoted numbers, blamed words and phones.

The parser knows the conventions the rubric writer follows (one judgement per sentence aspect, words in double
quotes, phones as /TH/, "sounded like /S/" for what was heard, "7.5/10" for numbers) and tolerates the looser
wording an LLM may produce: synonyms for the band words, single or curly quotes, "the word X", other aspect names
(overall/total, intonation/rhythm), extra sentences and any order. Every mention keeps its character span so the
perturbation generator can edit the exact place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .bands import BAND_NAMES

BANDS = BAND_NAMES  # worst first; which score each band covers is rationalizer.bands' table

ARPABET = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
    "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)

# phrase -> the bands it is consistent with; negations and hedges allow two neighbouring bands
BAND_PHRASES: dict[str, frozenset[str]] = {
    **{p: frozenset({"poor"}) for p in (
        "poor", "very poor", "weak", "very weak", "needs a lot of work", "needs much work", "low", "very low", "bad", "problematic", "insufficient", "limited", "struggled",
        "struggling", "unsatisfactory", "not good enough")},
    **{p: frozenset({"fair"}) for p in (
        "fair", "moderate", "okay", "ok", "average", "reasonable", "acceptable", "mixed", "middling", "so-so",
        "passable", "adequate", "uneven", "medium")},
    **{p: frozenset({"good"}) for p in ("good", "solid", "strong", "pretty good", "quite good", "high")},
    **{p: frozenset({"excellent"}) for p in (
        "excellent", "very good", "very strong", "very high", "outstanding", "superb", "great", "perfect",
        "near-perfect", "nearly perfect", "almost perfect", "flawless", "exceptional", "excellently")},
    **{p: frozenset({"fair", "good"}) for p in (
        "decent", "fine", "fairly good", "not bad", "not too bad", "not poor", "not weak", "not perfect",
        "not excellent", "not great", "not very good", "not quite excellent")},
    **{p: frozenset({"poor", "fair"}) for p in (
        "not good", "not so good", "not very strong", "not strong", "rather weak", "needs work", "needs more work",
        "needs practice", "could be better", "room for improvement")},
}

ASPECT_PATTERNS: dict[str, str] = {
    "accuracy": r"\baccura(?:cy|te|tely)\b|\binaccura\w*",
    "completeness": r"\b(?:in)?complete(?:ness|ly|d)?\b",
    "fluency": r"\b(?:dis)?fluen(?:cy|t|tly)\b",
    "prosodic": r"\bprosod\w*|\bintonation\b|\brhythm\w*|\bmelody\b",
    "total": r"\boverall\b|\btotal\b",
}

_BAND_RE = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(p) for p in sorted(BAND_PHRASES, key=len, reverse=True)) + r")(?![\w-])",
    re.IGNORECASE,
)
_ASPECT_RES = {a: re.compile(p, re.IGNORECASE) for a, p in ASPECT_PATTERNS.items()}
# "Overall, your accuracy ..." and "overall accuracy" use overall as a discourse word, not as the total score
_OVERALL_AS_MODIFIER = re.compile(r"overall(?=\s*,|\s+(?:pronunciation\s+)?(?:accura|complete|fluen|prosod|intonation|rhythm))", re.IGNORECASE)
_NUMBER_RE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(?:/\s*10|out of\s+(?:10|ten))(?![\d])", re.IGNORECASE)
_PHONE_RE = re.compile(r"/([A-Za-z]{1,2})[012]?/")
_QUOTED_RE = re.compile(r"\"([^\"\n]{1,40})\"|“([^”\n]{1,40})”|(?<![\w])'([A-Za-z][A-Za-z'-]{0,30}?)'(?![\w])")
_EXAMPLE_BEFORE_RE = re.compile(r"\b(?:as in|like in|e\.g\.|for example|such as)\s*$", re.IGNORECASE)
_EXAMPLE_AFTER_RE = re.compile(r"\s*(?:sound|vowel|consonant|letter|spelling)s?\b", re.IGNORECASE)
# "the word bear" names a word; "the words and sounds" does not (a list is quoted: 'the words "we" and "call"')
_THE_WORD_RE = re.compile(r"\bthe word\s+([A-Za-z][A-Za-z'-]*)", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"[.!?]+(?=[\s\"'”)]*(?:\s|$))|\n+")
_CLAUSE_SEP_RE = re.compile(
    r";|,\s*(?:and\s+)?(?:but|while|whereas|although|though|yet)\b|\s(?:but|while|whereas|although|yet)\s",
    re.IGNORECASE)
_PART_SEP_RE = re.compile(r",|\s(?:and|so|with|plus)\s", re.IGNORECASE)
# what-was-heard cues right before a phone ("sounded like /S/", "came out as /S/", "replaced by /S/")
_HEARD_BEFORE_RE = re.compile(
    r"\b(?:like|as|heard|into|became|becomes|sounding|changed to|switched to|closer to|replaced by|replaced with|"
    r"resembl\w*|substituted by|substituted with|said)\s*$", re.IGNORECASE)
_INSTEAD_OF_AFTER_RE = re.compile(r"^\s*instead of\s*$|^\s*instead of\b", re.IGNORECASE)
_POSITIVE_RE = re.compile(r"\b(?:well|clear|clearly|correct|correctly|good|great|excellent|perfect|accurate|"
                          r"accurately|nicely|fine|right)\b", re.IGNORECASE)
_NEGATIVE_RE = re.compile(
    r"\b(?:problem\w*|mispronounc\w*|unclear|weak|poor|practi[cs]e|work on|needs? work|missing|missed|omitted|"
    r"left out|dropped|skipped|sounded like|heard|improve\w*|difficult\w*|error\w*|wrong|off|low|lower\w*|"
    r"struggl\w*|instead|tip|try|focus\w*|pause\w*|hesitat\w*|watch|careful|not)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Span:
    start: int
    end: int


@dataclass(frozen=True)
class AspectJudgement:
    aspect: str
    bands: frozenset[str]  # union of the bands the clause's band phrases allow; empty: named but not judged
    band_spans: tuple[Span, ...]
    clause: Span


@dataclass(frozen=True)
class NumberMention:
    value: float
    span: Span
    target_kind: str | None  # "aspect", "word" or None (not tied to anything)
    target: str | None  # aspect name or normalised word


@dataclass(frozen=True)
class WordMention:
    word: str  # normalised: lower case, outer punctuation stripped
    span: Span
    praised: bool  # named in a clause that only praises it: not a problem mention


@dataclass(frozen=True)
class PhoneMention:
    phone: str  # ARPAbet base, upper case
    span: Span
    word: str | None  # the blamed word it belongs to (same sentence), when attributable
    heard: bool  # True: this is what was heard instead, not a blamed phone
    target_phone: str | None = None  # for heard mentions: the blamed phone it replaced


@dataclass(frozen=True)
class ParsedRationale:
    aspects: tuple[AspectJudgement, ...]
    numbers: tuple[NumberMention, ...]
    words: tuple[WordMention, ...]
    phones: tuple[PhoneMention, ...]

    @property
    def blamed_words(self) -> list[WordMention]:
        return [w for w in self.words if not w.praised]

    @property
    def blamed_phones(self) -> list[PhoneMention]:
        return [p for p in self.phones if not p.heard]


def normalise_word(text: str) -> str:
    return re.sub(r"^[^\w']+|[^\w']+$", "", text.strip().lower()).strip("'")


def parse_rationale(text: str) -> ParsedRationale:
    aspects, numbers, words, phones = [], [], [], []
    for sentence in _spans(text, _SENTENCE_END_RE, Span(0, len(text))):
        clauses = _spans(text, _CLAUSE_SEP_RE, sentence)
        sentence_words = []
        for clause in clauses:
            clause_words = _word_mentions(text, clause)
            sentence_words.extend(clause_words)
            clause_aspects = _aspect_judgements(text, clause)
            aspects.extend(clause_aspects)
            numbers.extend(_number_mentions(text, clause, clause_aspects, clause_words))
        words.extend(sentence_words)
        phones.extend(_phone_mentions(text, sentence, sentence_words))
    return ParsedRationale(tuple(aspects), tuple(numbers), tuple(words), tuple(phones))


def _spans(text: str, separator: re.Pattern, within: Span) -> list[Span]:
    out, start = [], within.start
    for m in separator.finditer(text, within.start, within.end):
        if text[start:m.end()].strip():
            out.append(Span(start, m.end()))
        start = m.end()
    if text[start:within.end].strip():
        out.append(Span(start, within.end))
    return out


def _aspect_judgements(text: str, clause: Span) -> list[AspectJudgement]:
    chunk = text[clause.start:clause.end]
    named = _aspects_named(chunk)
    if not named:
        return []
    if len(named) > 1:
        parts = _judged_parts(text, clause, named)
        if parts:
            return parts
    bands, spans = _bands_in(text, clause)
    return [AspectJudgement(a, bands, spans, clause) for a in named]


def _aspects_named(chunk: str) -> list[str]:
    named = [a for a, rx in _ASPECT_RES.items() if rx.search(chunk)]
    if "total" in named and len(named) > 1 and _overall_only_as_modifier(chunk):
        named.remove("total")
    return named


def _judged_parts(text: str, clause: Span, named: list[str]) -> list[AspectJudgement]:
    """ "completeness is perfect, and fluency is strong": one judgement per part, if every part judges its own."""
    out = []
    for part in _spans(text, _PART_SEP_RE, clause):
        aspects = [a for a in _aspects_named(text[part.start:part.end]) if a in named]
        bands, spans = _bands_in(text, part)
        if aspects and not bands:
            return []  # "accuracy and fluency are good": the band is shared, judge the clause as a whole
        out.extend(AspectJudgement(a, bands, spans, clause) for a in aspects)
    return out if {j.aspect for j in out} == set(named) else []


def _bands_in(text: str, span: Span) -> tuple[frozenset[str], tuple[Span, ...]]:
    chunk = text[span.start:span.end]
    matches = [m for m in _BAND_RE.finditer(chunk) if not _is_not_a_judgement(chunk, m)]
    bands = frozenset().union(*(BAND_PHRASES[m.group(1).lower()] for m in matches)) if matches else frozenset()
    return bands, tuple(Span(span.start + m.start(1), span.start + m.end(1)) for m in matches)


def _overall_only_as_modifier(chunk: str) -> bool:
    if re.search(r"\btotal\b", chunk, re.IGNORECASE):
        return False
    overall = list(re.finditer(r"\boverall\b", chunk, re.IGNORECASE))
    return all(_OVERALL_AS_MODIFIER.match(chunk, m.start()) for m in overall)


def _is_not_a_judgement(chunk: str, match: re.Match) -> bool:
    # "low" in "low phones" or "high scores" describes something else than the aspect
    return match.group(1).lower() in ("low", "high") and re.match(r"\s+(?:phones?|sounds?|scores?)\b", chunk[match.end():]) is not None


def _number_mentions(text: str, clause: Span, aspects: list[AspectJudgement], words: list[WordMention]) -> list[NumberMention]:
    chunk = text[clause.start:clause.end]
    anchors = [(m.start() + clause.start, "aspect", a) for a, rx in _ASPECT_RES.items()
               for m in rx.finditer(chunk) if a in {j.aspect for j in aspects}]
    anchors += [(w.span.start, "word", w.word) for w in words if not w.praised]
    anchors.sort()
    out = []
    for m in _NUMBER_RE.finditer(text, clause.start, clause.end):
        before = [a for a in anchors if a[0] < m.start()]
        after = [a for a in anchors if a[0] > m.start()]
        anchor = before[-1] if before else (after[0] if after else None)
        kind, target = (anchor[1], anchor[2]) if anchor else (None, None)
        out.append(NumberMention(float(m.group(1)), Span(m.start(1), m.end(1)), kind, target))
    return out


def _word_mentions(text: str, clause: Span) -> list[WordMention]:
    chunk = text[clause.start:clause.end]
    praised = _only_praise(chunk)
    found = []
    for m in _QUOTED_RE.finditer(chunk):
        group = next(g for g in (1, 2, 3) if m.group(g) is not None)
        raw = m.group(group)
        if len(raw.split()) == 1 and normalise_word(raw) and not _PHONE_RE.fullmatch(raw.strip()) \
                and not _is_example(chunk, m):
            found.append(WordMention(normalise_word(raw), Span(clause.start + m.start(group), clause.start + m.end(group)), praised))
    quoted_spans = [(w.span.start, w.span.end) for w in found]
    for m in _THE_WORD_RE.finditer(chunk):
        start = clause.start + m.start(1)
        if not any(s - 1 <= start <= e for s, e in quoted_spans):
            found.append(WordMention(normalise_word(m.group(1)), Span(start, clause.start + m.end(1)), praised))
    return sorted(found, key=lambda w: w.span.start)


def example_cue_before(text: str) -> bool:
    """Whether a quote opening right after `text` quotes an example word ('as in "think"'), not a word of the
    reading."""
    return bool(_EXAMPLE_BEFORE_RE.search(text))


def _is_example(chunk: str, match: re.Match) -> bool:
    """ 'the "th" sound', '/EH/ as in "bed"': a spelling or an example word, not a word of the reading."""
    return bool(_EXAMPLE_BEFORE_RE.search(chunk[:match.start()]) or _EXAMPLE_AFTER_RE.match(chunk[match.end():]))


def _only_praise(chunk: str) -> bool:
    without_quotes = _QUOTED_RE.sub(" ", chunk)
    return bool(_POSITIVE_RE.search(without_quotes)) and not _NEGATIVE_RE.search(without_quotes) \
        and not _PHONE_RE.search(chunk)


def _phone_mentions(text: str, sentence: Span, words: list[WordMention]) -> list[PhoneMention]:
    raw = [m for m in _PHONE_RE.finditer(text, sentence.start, sentence.end) if m.group(1).upper() in ARPABET]
    out: list[PhoneMention] = []
    for i, m in enumerate(raw):
        prev_end = raw[i - 1].end() if i else sentence.start
        before = text[max(prev_end, m.start() - 30):m.start()]
        after = text[m.end():raw[i + 1].start()] if i + 1 < len(raw) else ""
        heard_before = bool(_HEARD_BEFORE_RE.search(before)) and i > 0 and not re.search(r"instead of\s*$", before, re.I)
        heard_instead = bool(_INSTEAD_OF_AFTER_RE.match(after)) and i + 1 < len(raw)
        is_heard = heard_before or heard_instead
        word = _attributed_word(m.start(), words)
        target = None
        if heard_instead:
            target = raw[i + 1].group(1).upper()
        elif heard_before:
            target = next((p.phone for p in reversed(out) if not p.heard), None)
        out.append(PhoneMention(m.group(1).upper(), Span(m.start(), m.end()), word, is_heard, target))
    return out


def _attributed_word(position: int, words: list[WordMention]) -> str | None:
    blamed = [w for w in words if not w.praised]
    before = [w for w in blamed if w.span.start < position]
    if before:
        return before[-1].word
    return blamed[0].word if blamed else None
