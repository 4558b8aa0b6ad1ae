"""Faithfulness of a rationale to a score sheet, per granularity.

evaluate(text, sheet) reads what the text says (rationalizer.mentions) and checks it against the rubric's reading
of the sheet:
- sentence: for each aspect, whether it is judged (named with a band word in the same clause) and whether the
  band said matches the band of the score;
- word: the words blamed (quoted, or "the word X", not in a clause that only praises them) against the rubric's
  problem words: precision over every problem word, recall over the named ones (worst first, capped), so naming a
  further real problem word is neither rewarded nor punished;
- phone: the phones blamed (/TH/), each against the problem phones of the word it is attributed to (same
  sentence), or of the whole sheet when no word is attributable; recall as for words;
- numbers: every "x/10" or "x out of 10" against the score of the aspect or word it belongs to;
- heard: every "sounded like /S/" against what the sheet says was heard for that phone;
- claims: sentences that state something about the whole reading ("every word was read") against the sheet
  (no word left out); a false claim makes the text unfaithful;
- extra words: every quoted word (blamed or praised) that is not a word of the text (issue 13 asks for none);
- the worst: whether the text blames the sheet's worst word (lowest of accuracy and total among the problem
  words) and, where a phone scores below WORST_PHONE_BELOW, the lowest such phone (phones of omitted words
  aside: a missing word is named as missing, not sound by sound).

Self-consistency is evaluate(text, sheet_given_to_the_model); agreement with the gold labels is
evaluate(text, sheet_from_labels(utterance)); summarize() turns either list of reports into corpus numbers.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .mentions import ParsedRationale, parse_rationale
from .records import SENTENCE_ASPECTS, ScoreSheet, base_phone
from .rubric import (Rubric, bands_within_tolerance, format_score, misplaced_tips, problem_phones, problem_words,
                     sentence_band, word_key, word_only_kind, words_read)


@dataclass(frozen=True)
class AspectCheck:
    aspect: str
    score: float
    expected_band: str
    said: frozenset[str]  # bands the text's judgement allows; empty when not judged
    mentioned: bool  # judged: named with a band word
    consistent: bool | None  # None when not judged


@dataclass(frozen=True)
class MentionCheck:
    named: tuple[str, ...]  # what the text blames ("word" or "word /PH/")
    expected: tuple[str, ...]  # what the rubric expects to be named
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        return _ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float:
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)


WORST_PHONE_BELOW = 1.0  # phone accuracy (0-2) under which the worst phone should be named (issue 13)


@dataclass(frozen=True)
class ValueCheck:
    """A claim with a checkable value: a quoted number, or a phone said to be heard."""
    claim: str
    target: str | None  # aspect, word or "word /PH/"; None when not attributable
    expected: tuple[str, ...]
    agrees: bool


@dataclass(frozen=True)
class FaithfulnessThresholds:
    """Minimum values for is_faithful; the defaults demand full agreement at every granularity."""
    sentence_consistency: float = 1.0
    sentence_coverage: float = 1.0
    word_precision: float = 1.0
    word_recall: float = 1.0
    phone_precision: float = 1.0
    phone_recall: float = 1.0
    number_agreement: float = 1.0
    heard_agreement: float = 1.0


@dataclass(frozen=True)
class FaithfulnessReport:
    sentence: dict[str, AspectCheck]
    words: MentionCheck
    phones: MentionCheck
    numbers: tuple[ValueCheck, ...]
    heard: tuple[ValueCheck, ...]
    contradictions: tuple[str, ...] = field(default=())
    false_claims: tuple[str, ...] = field(default=())  # whole-reading statements the sheet contradicts
    named_words: int = 0  # quoted words, blamed or praised, counted once each
    extra_words: tuple[str, ...] = field(default=())  # ...of them, those not in the text
    names_worst_word: bool | None = None  # None: the sheet has no problem word
    names_worst_phone: bool | None = None  # None: no phone below WORST_PHONE_BELOW

    @property
    def sentence_consistency(self) -> float:
        judged = [c for c in self.sentence.values() if c.mentioned]
        return _ratio(sum(bool(c.consistent) for c in judged), len(judged))

    @property
    def sentence_coverage(self) -> float:
        return sum(c.mentioned for c in self.sentence.values()) / len(self.sentence)

    @property
    def number_agreement(self) -> float:
        return _ratio(sum(n.agrees for n in self.numbers), len(self.numbers))

    @property
    def heard_agreement(self) -> float:
        return _ratio(sum(h.agrees for h in self.heard), len(self.heard))

    def is_faithful(self, thresholds: FaithfulnessThresholds = FaithfulnessThresholds()) -> bool:
        t = thresholds
        return (self.sentence_consistency >= t.sentence_consistency and self.sentence_coverage >= t.sentence_coverage
                and self.words.precision >= t.word_precision and self.words.recall >= t.word_recall
                and self.phones.precision >= t.phone_precision and self.phones.recall >= t.phone_recall
                and self.number_agreement >= t.number_agreement and self.heard_agreement >= t.heard_agreement
                and not self.false_claims)


class FaithfulnessEvaluator:
    def __init__(self, rubric: Rubric = Rubric()):
        self.rubric = rubric

    def evaluate(self, text: str, sheet: ScoreSheet) -> FaithfulnessReport:
        parsed = parse_rationale(text or "")
        notes: list[str] = []
        sentence = self._sentence_checks(parsed, sheet, notes)
        words = self._word_check(parsed, sheet, notes)
        phones = self._phone_check(parsed, sheet, notes)
        numbers = self._number_checks(parsed, sheet, notes)
        heard = self._heard_checks(parsed, sheet, notes)
        claims = false_claims(text or "", sheet) + tuple(misdescribed_words(text or "", sheet, self.rubric))
        notes.extend(claims)
        named = tuple(dict.fromkeys(w.word for w in parsed.words))
        in_text = {word_key(w.text) for w in sheet.words}
        return FaithfulnessReport(sentence, words, phones, numbers, heard, tuple(notes), claims, len(named),
                                  tuple(w for w in named if w not in in_text), *self._worst_named(parsed, sheet))

    def _worst_named(self, parsed: ParsedRationale, sheet: ScoreSheet) -> tuple[bool | None, bool | None]:
        """(the worst problem word is blamed, the lowest phone under WORST_PHONE_BELOW is blamed); None: none."""
        problems = problem_words(self.rubric, sheet, capped=False)
        blamed = {w.word for w in parsed.blamed_words}
        word = word_key(problems[0].word.text) in blamed if problems else None
        low = [(p.accuracy, i, base_phone(p.symbol).upper()) for i, w in enumerate(sheet.words)
               for p in w.phones if p.accuracy < WORST_PHONE_BELOW and w.error_type != "Omission"]
        if not low:
            return word, None
        _, index, phone = min(low)
        key = word_key(sheet.words[index].text)
        return word, any(p.phone == phone and p.word in (key, None) for p in parsed.blamed_phones)

    def _sentence_checks(self, parsed: ParsedRationale, sheet: ScoreSheet, notes: list[str]) -> dict[str, AspectCheck]:
        checks = {}
        for aspect in SENTENCE_ASPECTS:
            score = sheet.sentence[aspect]
            expected = sentence_band(self.rubric, score)
            judgements = [j.bands for j in parsed.aspects if j.aspect == aspect and j.bands]
            allowed = bands_within_tolerance(self.rubric, score)
            consistent = all(len(b) <= 2 and b & allowed for b in judgements) if judgements else None
            said = frozenset().union(*judgements) if judgements else frozenset()
            if consistent is False:
                notes.append(f"{aspect} is called {'/'.join(sorted(said))} but scores {format_score(score)} ({expected})")
            checks[aspect] = AspectCheck(aspect, score, expected, said, bool(judgements), consistent)
        return checks

    def _word_check(self, parsed: ParsedRationale, sheet: ScoreSheet, notes: list[str]) -> MentionCheck:
        named = list(dict.fromkeys(w.word for w in parsed.blamed_words))
        expected = [p.text for p in problem_words(self.rubric, sheet)]
        every_problem = {p.text for p in problem_words(self.rubric, sheet, capped=False)}
        in_text = {word_key(w.text) for w in sheet.words}
        false_positives = [w for w in named if w not in every_problem]
        for w in false_positives:
            notes.append(f"blames \"{w}\", which is not in the text" if w not in in_text
                         else f"blames \"{w}\", which the scores do not mark low")
        missed = [w for w in expected if w not in named]
        notes.extend(f"does not name problem word \"{w}\"" for w in missed)
        hits = len(expected) - len(missed)
        return MentionCheck(tuple(named), tuple(expected), hits, len(false_positives), len(missed))

    def _phone_check(self, parsed: ParsedRationale, sheet: ScoreSheet, notes: list[str]) -> MentionCheck:
        named = list(dict.fromkeys((p.word, p.phone) for p in parsed.blamed_phones))
        expected = list(dict.fromkeys((word_key(sheet.words[p.word_index].text), p.phone)
                                      for p in problem_phones(self.rubric, sheet)))
        all_problems = problem_phones(self.rubric, sheet, capped=False)
        by_word = {(word_key(sheet.words[p.word_index].text), p.phone) for p in all_problems}
        anywhere = {p.phone for p in all_problems}
        in_text = {word_key(w.text) for w in sheet.words}

        def correct(word: str | None, phone: str) -> bool:
            return (word, phone) in by_word if word in in_text else phone in anywhere

        def found(word: str, phone: str) -> bool:
            return any(p == phone and (w == word or w not in in_text) for w, p in named)

        false_positives = [(w, p) for w, p in named if not correct(w, p)]
        for w, p in false_positives:
            where = f" in \"{w}\"" if w in in_text else ""
            notes.append(f"blames /{p}/{where}, which the scores do not mark low")
        missed = [(w, p) for w, p in expected if not found(w, p)]
        notes.extend(f"does not name problem phone /{p}/ in \"{w}\"" for w, p in missed)
        return MentionCheck(tuple(_pair_label(w, p) for w, p in named), tuple(_pair_label(w, p) for w, p in expected),
                            len(expected) - len(missed), len(false_positives), len(missed))

    def _number_checks(self, parsed: ParsedRationale, sheet: ScoreSheet, notes: list[str]) -> tuple[ValueCheck, ...]:
        checks = []
        for n in parsed.numbers:
            if n.target_kind == "aspect":
                scores = [sheet.sentence[n.target]]
            elif n.target_kind == "word":
                scores = [s for w in sheet.words if word_key(w.text) == n.target for s in (w.accuracy, w.total)]
            else:
                scores = []
            agrees = any(abs(n.value - s) <= self.rubric.number_tolerance for s in scores)
            claim = f"{format_score(n.value)}/10"
            if not agrees:
                notes.append(f"quotes {claim} for {n.target or 'nothing identifiable'}"
                             + (f", but the score is {' or '.join(format_score(s) for s in scores)}" if scores else ""))
            checks.append(ValueCheck(claim, n.target, tuple(format_score(s) for s in scores), agrees))
        return tuple(checks)

    def _heard_checks(self, parsed: ParsedRationale, sheet: ScoreSheet, notes: list[str]) -> tuple[ValueCheck, ...]:
        checks = []
        for p in parsed.phones:
            if not p.heard or p.target_phone is None:
                continue
            known = {base_phone(ph.heard).upper() for w in sheet.words
                     if p.word is None or word_key(w.text) == p.word
                     for ph in w.phones if ph.heard and base_phone(ph.symbol).upper() == p.target_phone}
            agrees = p.phone in known
            target = _pair_label(p.word, p.target_phone)
            if not agrees:
                notes.append(f"says /{p.phone}/ was heard for {target}, but the sheet has "
                             + ("/" + "/, /".join(sorted(known)) + "/" if known else "no heard phone there"))
            checks.append(ValueCheck(f"/{p.phone}/", target, tuple(sorted(known)), agrees))
        return tuple(checks)


# (pattern, does the sheet contradict it?, what is wrong): statements about the whole reading
_CLAIMS = (
    (re.compile(r"\b(every|each|all( the)?) words? (was|were) (read|said|there)\b", re.I),
     lambda sheet: any(w.error_type == "Omission" for w in sheet.words), "says every word was read, but a word was left out"),
)


_COUNT_CLAIM = re.compile(r"\b(\d+) of (\d+) words? (?:was|were) (?:read|heard|said)\b", re.I)


def false_claims(text: str, sheet: ScoreSheet) -> tuple[str, ...]:
    """The whole-reading statements of `text` (e.g. "every word was read", "5 of 7 words were read") that `sheet`
    contradicts, tips that belong to another sound than the one they follow (rationalizer.tips), and repeated or
    garbled statements (`repeated_statements`). A count
    must give the text's number of words and, of them, those not left out (error type Omission), as the rubric
    writes it."""
    found = [message for pattern, contradicted, message in _CLAIMS if pattern.search(text) and contradicted(sheet)]
    read, total = words_read(sheet)
    for m in _COUNT_CLAIM.finditer(text):
        if (int(m.group(1)), int(m.group(2))) != (read, total):
            found.append(f"says \"{m.group(0)}\", but {read} of {total} words were read")
    return tuple(found + misplaced_tips(text) + list(repeated_statements(text, sheet)))


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# what a sentence on a word must say of it, for the words the rubric names by what happened to the whole word
# (rubric.WORD_ONLY_TEMPLATES, either phrasing): left out, heard as another word, read after a pause, out of order
_WORD_KIND_CUES = {"Omission": ("left out", "missing", "skipped", "not read", "omitted"),
                   "UnexpectedBreak": ("pause", "break", "stop"),
                   "read_as": ("another word", "different word", "came out as", "heard as"),
                   "Reversal": ("out of order", "swapped", "order")}


def misdescribed_words(text: str, sheet: ScoreSheet, rubric: Rubric) -> list[str]:
    """Words the rubric names as a whole word for what happened to them (left out, heard as another word, a pause
    before it, out of order) that the text quotes without saying so in any sentence that quotes them: the model
    wrote '"and" was unclear' for a word left out, and the mention checks alone counted it faithful. A word the
    rubric names in two ways (a word the text has twice) is not checked."""
    kinds: dict[str, set] = {}
    for problem in problem_words(rubric, sheet):
        kind = word_only_kind(problem.word)
        kinds.setdefault(problem.text, set()).add(kind if not problem.phones and kind in _WORD_KIND_CUES else None)
    sentences = _SENTENCE_END.split(text.strip())
    found = []
    for key, named_as in kinds.items():
        (kind,) = named_as if len(named_as) == 1 else (None,)
        about = [s for s in sentences if key in {word_key(q) for q in re.findall(r'"([^"]+)"', s)}]
        if kind and about and not any(cue in s.lower() for s in about for cue in _WORD_KIND_CUES[kind]):
            found.append(f"does not say what happened to \"{key}\" ({_KIND_NAMES[kind]}): \"{about[0]}\"")
    return found


_KIND_NAMES = {"Omission": "left out", "UnexpectedBreak": "a pause before it", "read_as": "heard as another word",
               "Reversal": "read out of order"}
# a word clause opened inside a phone clause: 'In "tea", "cup" was unclear' (the lead "In "X"" only ever opens a
# list of sounds, with the word's score in brackets in the varied phrasing); a tip's example words ('as in "then",
# not as in "zen"') are not a lead
_QUOTE_IN_CLAUSE = re.compile(r'(?<!as )\bin "([^"]+)"(?:\s*\([^)]*\))?,[^/."]{0,40}"([^"]+)"', re.I)


def repeated_statements(text: str, sheet: ScoreSheet | None = None) -> tuple[str, ...]:
    """A sentence said twice (case and spacing aside), and a word quoted inside a word's clause of sounds ('In
    "football", "football" was left out'; 'In "tea", "cup" was unclear'): garbled text that tells the learner
    nothing more, or mixes two words' problems, as the model sometimes writes.
    A sentence about a word the text has more than once (per `sheet`) may fairly be said once per occurrence."""
    counts = Counter(word_key(w.text) for w in sheet.words) if sheet is not None else Counter()
    found, seen = [], set()
    for sentence in _SENTENCE_END.split(text.strip()):
        key = " ".join(sentence.lower().split())
        repeated_word = any(counts[word_key(q)] > 1 for q in re.findall(r'"([^"]+)"', sentence))
        if key and key in seen and not repeated_word:
            found.append(f"repeats the sentence \"{sentence}\"")
        seen.add(key)
    for m in _QUOTE_IN_CLAUSE.finditer(text):
        where = "its own clause" if word_key(m.group(1)) == word_key(m.group(2)) else f"the clause of \"{m.group(1)}\""
        found.append(f"quotes \"{m.group(2)}\" inside {where}: \"{m.group(0)}\"")
    return tuple(found)


def summarize(reports: list[FaithfulnessReport]) -> dict:
    """Corpus agreement per granularity; "agreement" is the headline number of each.

    sentence: fraction of aspect judgements consistent with the score band (coverage: fraction of aspects
    judged); word and phone: micro-averaged precision, recall and F1 (agreement = F1; a rationale that names
    nothing where nothing is a problem counts as perfect); numbers and heard: fraction of claims that agree;
    extra_words: quoted words not in the text over all quoted words (and the share of texts with any); worst:
    the share of texts naming the worst word (over texts with a problem word) and the lowest phone under
    WORST_PHONE_BELOW (over texts with one).
    """
    judged = [c for r in reports for c in r.sentence.values() if c.mentioned]
    per_aspect = {a: {"consistency": _ratio(sum(bool(r.sentence[a].consistent) for r in reports if r.sentence[a].mentioned),
                                            sum(r.sentence[a].mentioned for r in reports)),
                      "coverage": _ratio(sum(r.sentence[a].mentioned for r in reports), len(reports))}
                  for a in SENTENCE_ASPECTS}
    consistency = _ratio(sum(bool(c.consistent) for c in judged), len(judged))
    numbers = [n for r in reports for n in r.numbers]
    heard = [h for r in reports for h in r.heard]
    return {
        "n": len(reports),
        "sentence": {"agreement": consistency, "consistency": consistency,
                     "coverage": _ratio(len(judged), len(reports) * len(SENTENCE_ASPECTS)), "per_aspect": per_aspect},
        "word": _micro([r.words for r in reports]),
        "phone": _micro([r.phones for r in reports]),
        "numbers": {"agreement": _ratio(sum(n.agrees for n in numbers), len(numbers)), "n": len(numbers)},
        "heard": {"agreement": _ratio(sum(h.agrees for h in heard), len(heard)), "n": len(heard)},
        "faithful_fraction": _ratio(sum(r.is_faithful() for r in reports), len(reports)),
        "extra_words": {"ratio": _ratio(sum(len(r.extra_words) for r in reports), sum(r.named_words for r in reports),
                                        empty=0.0),
                        "texts_with_extra": _ratio(sum(bool(r.extra_words) for r in reports), len(reports))},
        "worst": {"word_named": _share([r.names_worst_word for r in reports]),
                  "phone_named": _share([r.names_worst_phone for r in reports])},
    }


def _share(flags: list[bool | None]) -> dict:
    """Share of True among the decided (not None) flags, and how many were decided."""
    decided = [f for f in flags if f is not None]
    return {"share": _ratio(sum(decided), len(decided)), "n": len(decided)}


def _micro(checks: list[MentionCheck]) -> dict:
    tp = sum(c.true_positives for c in checks)
    fp = sum(c.false_positives for c in checks)
    fn = sum(c.false_negatives for c in checks)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _f1(precision, recall)
    return {"agreement": f1, "precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def _pair_label(word: str | None, phone: str) -> str:
    return f"{word} /{phone}/" if word else f"/{phone}/"


def _ratio(num: float, den: float, empty: float = 1.0) -> float:
    """num / den; `empty` when there is nothing to count (nothing asked of a text is, by default, all met)."""
    return num / den if den else empty


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
