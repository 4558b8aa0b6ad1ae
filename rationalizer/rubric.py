"""The rubric: score bands, which words and phones count as problems, the prompt, and the rule-based rationale.

One Rubric drives all three consumers so they cannot drift apart: the prompt shows its bands and problems, the
RubricWriter writes targets from them, and the FaithfulnessEvaluator judges any rationale against them. The
bands themselves are rationalizer.bands' table, which the CLI and the learner page use too.

Rationale conventions (the evaluator parses them; an LLM learns them from the targets):
- one short sentence per sentence aspect, naming the aspect (accuracy, completeness, fluency, prosody, overall)
  with one band word; a quoted score is written "7.5/10" and is the score rounded to one decimal or integer;
- problem words in double quotes, worst first; their problem phones as ARPAbet without the stress digit in
  slashes (/TH/); what was heard as "sounded like /S/"; a short articulation tip per phone in parentheses, from
  rationalizer.tips: the tip for that confusion when the table has one, else the phone's own;
- when nothing is a problem, a sentence saying so.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass

from .bands import SCALES, band
from .mentions import ARPABET, parse_rationale
from .records import SENTENCE_ASPECTS, ScoreSheet, WordScore, base_phone
from .tips import Tip, fallback_tips, load_tips, tip, tips_for


SENTENCE_EDGES = SCALES["sentence"].edges  # poor < 4 <= fair < 6.5 <= good < 8.5 <= excellent


@dataclass(frozen=True)
class Rubric:
    """What counts as a problem and how strictly a rationale is judged.

    band_edges is fixed by the band table (rationalizer.bands) and kept as a field because saved rationalizers
    store it; a rubric with other edges would disagree with the CLI and the page: ValueError.
    """
    band_edges: tuple[float, float, float] = SENTENCE_EDGES
    word_threshold: float = 6.0  # a word is a problem below this accuracy or total (0-10)
    phone_threshold: float = SCALES["phone"].edges[0]  # a phone is a problem below this (0-2): the "poor" band
    max_words: int = 3  # at most this many problem words are named, worst first
    max_phones_per_word: int = 2
    max_phones: int = 3  # at most this many problem phones in all, worst first (a rationale has ~100 tokens)
    number_tolerance: float = 0.5  # a quoted number agrees with its score within this
    band_tolerance: float = 0.0  # a judgement also agrees with the band of any value within this of the score

    def __post_init__(self) -> None:
        if tuple(self.band_edges) != SENTENCE_EDGES:
            raise ValueError(f"rubric band edges {tuple(self.band_edges)} differ from the band table's "
                             f"{SENTENCE_EDGES} (rationalizer.bands); change the table, not the rubric")


@dataclass(frozen=True)
class ProblemPhone:
    word_index: int
    phone: str  # ARPAbet base, no stress digit
    accuracy: float
    heard: str | None  # ARPAbet base of what was heard instead, when known and different


@dataclass(frozen=True)
class ProblemWord:
    index: int
    word: WordScore
    phones: tuple[ProblemPhone, ...]  # worst first, capped at max_phones_per_word

    @property
    def text(self) -> str:
        return word_key(self.word.text)


def word_only_kind(word: WordScore) -> str:
    """Which WORD_ONLY_TEMPLATES sentence names a word without its sounds: "read_as" for a word heard as another
    word (not left out), its error type where a template has one, else "other"."""
    if word.heard_word and word.error_type != "Omission":
        return "read_as"
    return word.error_type if word.error_type in WORD_ONLY_TEMPLATES else "other"


def words_read(sheet: ScoreSheet) -> tuple[int, int]:
    """(words read, words of the text): a word left out (error type Omission) is not read; a count in a rationale
    ("N of M words were read") must give these."""
    total = len(sheet.words)
    return total - sum(w.error_type == "Omission" for w in sheet.words), total


def word_key(text: str) -> str:
    """How a word is named and matched in rationales: lower case, outer punctuation stripped."""
    return re.sub(r"^[^\w']+|[^\w']+$", "", text.strip().lower()).strip("'")


def format_score(value: float) -> str:
    """A score as rationales and prompts quote it: one decimal, without a trailing .0 ("7.5", "7")."""
    text = f"{round(value, 1):.1f}"
    return text[:-2] if text.endswith(".0") else text


def sentence_band(rubric: Rubric, value: float) -> str:
    """The band word of a 0-10 sentence score (rationalizer.bands, on the value rounded to one decimal)."""
    return band(value, "sentence").name


def bands_within_tolerance(rubric: Rubric, value: float) -> frozenset[str]:
    t = rubric.band_tolerance
    return frozenset({sentence_band(rubric, value - t), sentence_band(rubric, value), sentence_band(rubric, value + t)})


def is_problem_word(rubric: Rubric, word: WordScore) -> bool:
    # a low phone also makes its word a problem, so every blamed phone has a blamed word to hang on
    # Monotone belongs to the whole reading (every word carries it): said once, in the prosody judgement
    return (min(word.accuracy, word.total) < rubric.word_threshold or word.error_type not in ("None", None, "Monotone")
            or any(p.accuracy < rubric.phone_threshold for p in word.phones))


def problem_phones(rubric: Rubric, sheet: ScoreSheet, capped: bool = True) -> list[ProblemPhone]:
    """Phones below the threshold, one per base phone per word (the worst); capped: only of the named words."""
    if capped:
        return [p for w in problem_words(rubric, sheet) for p in w.phones]
    return [p for i, w in enumerate(sheet.words) for p in _word_problem_phones(rubric, i, w, cap=None)]


def problem_words(rubric: Rubric, sheet: ScoreSheet, capped: bool = True) -> list[ProblemWord]:
    """Problem words, worst (lowest of accuracy and total) first; capped: at most max_words."""
    # an omitted word is named as missing, and a word read as another word as such, not sound by sound
    found = [ProblemWord(i, w, () if w.error_type == "Omission" or w.heard_word else
                         tuple(_word_problem_phones(rubric, i, w, rubric.max_phones_per_word)))
             for i, w in enumerate(sheet.words) if is_problem_word(rubric, w)]
    found.sort(key=lambda p: (min(p.word.accuracy, p.word.total), p.index))
    return _cap_phones(found[:rubric.max_words], rubric.max_phones) if capped else found


def _cap_phones(words: list[ProblemWord], cap: int) -> list[ProblemWord]:
    worst = sorted((p for w in words for p in w.phones), key=lambda p: (p.accuracy, p.word_index))[:cap]
    kept = {(p.word_index, p.phone) for p in worst}
    return [ProblemWord(w.index, w.word, tuple(p for p in w.phones if (p.word_index, p.phone) in kept)) for w in words]


def _word_problem_phones(rubric: Rubric, index: int, word: WordScore, cap: int | None) -> list[ProblemPhone]:
    worst: dict[str, ProblemPhone] = {}
    for p in word.phones:
        if p.accuracy >= rubric.phone_threshold:
            continue
        phone = base_phone(p.symbol).upper()
        heard = base_phone(p.heard).upper() if p.heard else None
        heard = heard if heard in ARPABET and heard != phone else None
        if phone not in worst or p.accuracy < worst[phone].accuracy:
            worst[phone] = ProblemPhone(index, phone, p.accuracy, heard)
    ordered = sorted(worst.values(), key=lambda p: p.accuracy)
    return ordered[:cap] if cap is not None else ordered


# --- prompt ---

PROMPT_INSTRUCTIONS = (
    "Explain the scores briefly: one sentence per sentence aspect with its band; then the problem words "
    "in \"quotes\", their phones as /XX/, what was heard, a tip. Quote numbers only as given."
)


def build_prompt(sheet: ScoreSheet, rubric: Rubric = Rubric(), with_bands: bool = True,
                 with_instructions: bool = True) -> str:
    """A compact rubric-guided prompt: instructions, bands, text, sentence, word and phone scores, problems.

    with_instructions=False leaves the instructions out (a chat model gets them as its system prompt).
    """
    lo, mid, hi = (format_score(e) for e in rubric.band_edges)
    lines = [PROMPT_INSTRUCTIONS] if with_instructions else []
    lines += [
        f"Bands: poor <{lo}, fair <{mid}, good <{hi}, else excellent. Words 0-10, phones 0-2.",
        f"Text: {sheet.text}",
        "Sentence: " + ", ".join(_aspect_entry(rubric, a, sheet.sentence[a], with_bands) for a in SENTENCE_ASPECTS),
        "Words (accuracy; stress 10, total = accuracy unless shown): " + ", ".join(_word_entry(w) for w in sheet.words),
        "Problems: " + _problems_entry(rubric, sheet),
    ]
    return "\n".join(lines)


def _aspect_entry(rubric: Rubric, aspect: str, value: float, with_bands: bool) -> str:
    band = f" ({sentence_band(rubric, value)})" if with_bands else ""
    return f"{aspect} {format_score(value)}{band}"


def _word_entry(word: WordScore) -> str:
    # stress and total are shown only where they differ from the default by a quotable amount (number_tolerance)
    extras = []
    if word.stress < 9.5:
        extras.append(f"stress {format_score(word.stress)}")
    if abs(word.total - word.accuracy) >= 0.5:
        extras.append(f"total {format_score(word.total)}")
    extra = f" ({', '.join(extras)})" if extras else ""
    return f"{word_key(word.text)} {format_score(word.accuracy)}{extra}"


def _problems_entry(rubric: Rubric, sheet: ScoreSheet) -> str:
    words = problem_words(rubric, sheet)
    if not words:
        return "none"
    return "; ".join(_problem_word_entry(sheet, w) for w in words)


def _problem_word_entry(sheet: ScoreSheet, problem: ProblemWord) -> str:
    parts = [problem.text]
    if problem.word.error_type not in ("None", None):
        parts.append(problem.word.error_type)
    for p in problem.phones:
        heard = f" heard /{p.heard}/" if p.heard else ""
        parts.append(f"/{p.phone}/ {p.accuracy:.1f}{heard}")
    return " ".join(parts)


# --- rule-based rationale ---

# each phone's own tip (rationalizer.tips' fallback rows); the writer prefers the tip for what was heard instead
PHONE_TIPS: dict[str, str] = fallback_tips()

WRITER_BAND_WORDS = {
    "poor": ("poor", "weak", "low"),
    "fair": ("fair", "moderate", "average"),
    "good": ("good", "solid", "strong"),
    "excellent": ("excellent", "very good", "outstanding"),
}

ASPECT_TEMPLATES = {
    "accuracy": ("Accuracy is {band}{num}", "Your pronunciation accuracy was {band}{num}",
                 "Sound accuracy is {band}{num}"),
    "completeness": ("Completeness is {band}{num}", "Completeness of the reading was {band}{num}",
                     "Your completeness is {band}{num}"),
    "fluency": ("Fluency is {band}{num}", "Your fluency was {band}{num}", "Fluency of the reading is {band}{num}"),
    "prosodic": ("Prosody is {band}{num}", "Your intonation and rhythm were {band}{num}",
                 "The rhythm and intonation are {band}{num}"),
    "total": ("Overall, the score is {band}{num}", "The overall result is {band}{num}",
              "Your total score is {band}{num}"),
}
# short reasons after an aspect judgement; none may hold a band word (rationalizer.mentions.BAND_PHRASES)
ASPECT_COMMENTS = {
    "accuracy": {"poor": ("many sounds were off",), "fair": ("several sounds were off",),
                 "good": ("most sounds were right",), "excellent": ("nearly every sound was right",)},
    "completeness": {"poor": ("many words were missing",), "fair": ("some words were missing",),
                     "good": ("almost every word was read",), "excellent": ("every word was read",)},
    "fluency": {"poor": ("many pauses and restarts",), "fair": ("some pauses",), "good": ("few pauses",),
                "excellent": ("smooth and steady",)},
    "prosodic": {"poor": ("flat and choppy",), "fair": ("somewhat flat",), "good": ("mostly natural",),
                 "excellent": ("natural and lively",)},
    "total": {"poor": ("keep practising",), "fair": ("keep working on the sounds below",),
              "good": ("a result to build on",), "excellent": ("well done",)},
}

NUMBER_TEMPLATES = (" ({score}/10)", " at {score}/10", ", {score} out of 10")
WORD_LEAD_TEMPLATES = ("\"{word}\"{num} needs work: ", "In \"{word}\"{num}, ", "Work on \"{word}\"{num}: ")
PHONE_HEARD_TEMPLATES = ("/{phone}/ sounded like /{heard}/", "/{phone}/ came out as /{heard}/")
PHONE_UNCLEAR_TEMPLATES = ("/{phone}/ was unclear", "/{phone}/ was off", "/{phone}/ needs care")
WORD_ONLY_TEMPLATES = {
    "Omission": ("\"{word}\"{num} was left out; read every word.", "\"{word}\"{num} was missing; say each word."),
    "UnexpectedBreak": ("There was a pause before \"{word}\"{num}; keep going without stopping.",
                        "Avoid the pause before \"{word}\"{num}."),
    # the other word is not quoted: a quoted word of a rationale is a word of the text
    "read_as": ("\"{word}\"{num} was heard as another word, {heard}; say it as written.",
                "\"{word}\"{num} came out as {heard}, a different word; read it as written."),
    "Reversal": ("\"{word}\"{num} was read out of order; follow the text word by word.",
                 "\"{word}\"{num} swapped places with its neighbour; keep to the written order."),
    "other": ("\"{word}\"{num} was unclear; say it slowly, then at speed.",
              "\"{word}\"{num} needs work; repeat it slowly."),
}
NO_PROBLEM_TEMPLATES = ("No word or sound stood out as a problem.", "Every word and sound was clear; keep it up.",
                        "No single word or sound needs extra practice.")
# no problem word, but a word or sound in the "fair" band (amber on the page): not "every sound was clear"
NOTHING_POOR_TEMPLATES = ("No word or sound fell below fair; the ones marked fair are worth another try.",
                          "Nothing scored poor; a few sounds were only fair, so listen to them again.")


def is_monotone(sheet: ScoreSheet) -> bool:
    """The diagnosis found the reading's pitch flat (error type Monotone on its words)."""
    return any(w.error_type == "Monotone" for w in sheet.words)


def _no_problem_templates(sheet: ScoreSheet) -> tuple[str, ...]:
    """What to say when no word is a problem: all clear, or nothing poor when something is only fair."""
    fair = any(band(w.total, "word").name == "fair" or any(band(p.accuracy, "phone").name == "fair" for p in w.phones)
               for w in sheet.words)
    return NOTHING_POOR_TEMPLATES if fair else NO_PROBLEM_TEMPLATES


def _clause_phrases(templates: tuple[str, ...]) -> str:
    """The templates' wording between the phone and what was heard, or after the phone, as a regex alternation
    ("/{phone}/ sounded like /{heard}/" -> "sounded like")."""
    return "|".join(re.escape(t.split("/")[2].strip()) for t in templates)


# the phone clauses a tip follows, as _phone_clause writes them: "/TH/ sounded like /S/ (", "/TH/ was unclear ("
_HEARD_CLAUSE = rf"/([A-Z]{{1,2}})/ (?:{_clause_phrases(PHONE_HEARD_TEMPLATES)}) /([A-Z]{{1,2}})/"
_UNCLEAR_CLAUSE = rf"/([A-Z]{{1,2}})/ (?:{_clause_phrases(PHONE_UNCLEAR_TEMPLATES)})"
_TIPPED = re.compile(rf"(?:{_HEARD_CLAUSE}|{_UNCLEAR_CLAUSE}) \(([^()]*)\)")


def tip_after(before: str) -> Tip | None:
    """The tip that belongs in a parenthesis opened at the end of `before` (which ends with "("), when what
    precedes it is a phone clause the rubric writes; else None."""
    heard = re.search(_HEARD_CLAUSE + r" \($", before)
    if heard:
        return tip(heard.group(1), heard.group(2))
    unclear = re.search(_UNCLEAR_CLAUSE + r" \($", before)
    return tip(unclear.group(1)) if unclear else None


def misplaced_tips(text: str) -> list[str]:
    """Tips of the table in `text` that belong to another sound or confusion than the phone clause they follow
    (e.g. the /AY/ tip after /AA/), as messages; a parenthesis in other words ('(as in "cat")') is not a tip."""
    known = {t.text for t in load_tips().values()}
    wrong = []
    for m in _TIPPED.finditer(text):
        phone, heard, given = m.group(1) or m.group(3), m.group(2), m.group(4).strip()
        expected = tip(phone, heard)
        if expected is not None and given in known and given != expected.text:
            wrong.append(f"gives \"{given}\" after /{phone}/, not its tip \"{expected.text}\"")
    return wrong


def _comment(rng: random.Random, aspect: str, band_name: str, sheet: ScoreSheet, rubric: Rubric) -> str:
    """A short reason after an aspect judgement. Completeness counts the words left out instead of going by
    its band: one word missing of seven is 8.6, an "excellent" band, but not "every word was read"."""
    read, total = words_read(sheet)
    if aspect == "completeness" and read < total:
        if abs(10.0 * read / total - sheet.sentence["completeness"]) < COUNT_TOLERANCE:
            return f"{read} of {total} words were read"
        # the count would contradict the score (a recording of another text: completeness 0 with few omissions)
        low = band_name in ("poor", "fair")
        return "parts of the text were not clearly read" if low else "some words were left out"
    if aspect == "completeness" and band_name in ("poor", "fair"):  # low without a word left out: none to count
        return "parts of the text were not clearly read"
    if aspect in ("fluency", "prosodic") and band_name in ("poor", "fair") and len(sheet.words) < SHORT_TEXT_WORDS:
        return "a text this short says little about it"  # no pauses or restarts to count in one or two words
    if aspect == "total" and band_name == "fair" and not any(is_problem_word(rubric, w) for w in sheet.words):
        return "keep practising"  # "the sounds below" would point at a list that is not there
    if aspect == "prosodic" and is_monotone(sheet):
        return "the pitch stayed flat; let it rise on stressed words and fall at the end"
    return rng.choice(ASPECT_COMMENTS[aspect][band_name])


# points of completeness within which "N of M words were read" is said (10 N / M against the score; a noised
# training sheet strays by about its noise, a recording of another text by 5 or more)
COUNT_TOLERANCE = 2.5
SHORT_TEXT_WORDS = 3  # fewer words than this: fluency and prosody reasons would describe what is not there
PHRASINGS = ("varied", "plain")


def _informative(aspect: str, band_name: str, sheet: ScoreSheet) -> bool:
    """Whether _comment says something the band word does not: words left out, or why a short text's fluency or
    prosody is low (a flat pitch is always said)."""
    if aspect == "completeness":
        return any(w.error_type == "Omission" for w in sheet.words) or band_name in ("poor", "fair")
    return aspect in ("fluency", "prosodic") and band_name in ("poor", "fair") and len(sheet.words) < SHORT_TEXT_WORDS


class RubricWriter:
    """Deterministic rationale from a score sheet, with varied phrasing.

    write(sheet) picks its phrasing from (seed, sheet text); write(sheet, variant=k) from (seed, k, text), so
    several distinct targets per sheet are available for augmentation. Numbers are quoted for some aspects and
    words only (number_rate), always as the score rounded to one decimal; comment_rate: share of aspect
    judgements followed by a short reason. phrasing="plain": one fixed wording, no numbers, and reasons only
    where they carry information (words left out, a flat pitch, a very short text): the shortest faithful text,
    for fast generation (the compact rationalizer's training targets).
    """

    def __init__(self, rubric: Rubric = Rubric(), seed: int = 0, number_rate: float = 0.3, comment_rate: float = 0.3,
                 phrasing: str = "varied"):
        if phrasing not in PHRASINGS:
            raise ValueError(f"phrasing must be one of {PHRASINGS}, not {phrasing!r}")
        self.rubric = rubric
        self.seed = seed
        self.plain = phrasing == "plain"
        self.number_rate = 0.0 if self.plain else number_rate
        self.comment_rate = 0.0 if self.plain else comment_rate

    def _choice(self, rng: random.Random, options):
        # plain phrasing: always the first (shortest) template, so a model learns content, not wording
        return options[0] if self.plain else rng.choice(options)

    def write(self, sheet: ScoreSheet, variant: int | None = None) -> str:
        rng = random.Random(f"{self.seed}:{variant}:{sheet.text}")
        problems = problem_words(self.rubric, sheet)
        parts = self._judgements(rng, sheet, problems)
        parts += [self._word_sentence(rng, p) for p in problems] or [self._choice(rng, _no_problem_templates(sheet))]
        return " ".join(parts)

    def write_judgements(self, sheet: ScoreSheet, variant: int | None = None) -> str:
        """The opening of `write(sheet, variant)`: one judgement per sentence aspect, nothing about words."""
        rng = random.Random(f"{self.seed}:{variant}:{sheet.text}")
        return " ".join(self._judgements(rng, sheet, problem_words(self.rubric, sheet)))

    def _judgements(self, rng: random.Random, sheet: ScoreSheet, problems: list) -> list[str]:
        # reasons after the judgements only where the problem list is short: a rationale stays near 100 tokens
        comment_rate = self.comment_rate if len(problems) <= 1 else 0.0
        return [self._aspect_sentence(rng, a, sheet, comment_rate) for a in SENTENCE_ASPECTS]

    def _aspect_sentence(self, rng: random.Random, aspect: str, sheet: ScoreSheet, comment_rate: float) -> str:
        value = sheet.sentence[aspect]
        band_name = sentence_band(self.rubric, value)
        band = self._choice(rng, WRITER_BAND_WORDS[band_name])
        sentence = self._choice(rng, ASPECT_TEMPLATES[aspect]).format(band=band, num=self._number(rng, value))
        flat = aspect == "prosodic" and is_monotone(sheet)
        if rng.random() < comment_rate or flat or (self.plain and _informative(aspect, band_name, sheet)):
            joint = ", but " if flat and band_name in ("good", "excellent") else ": "
            sentence += joint + _comment(rng, aspect, band_name, sheet, self.rubric)
        return sentence + "."

    def _number(self, rng: random.Random, value: float) -> str:
        if rng.random() >= self.number_rate:
            return ""
        return rng.choice(NUMBER_TEMPLATES).format(score=format_score(value))

    def _word_sentence(self, rng: random.Random, problem: ProblemWord) -> str:
        num = f" ({format_score(problem.word.accuracy)}/10)" if rng.random() < self.number_rate else ""
        if not problem.phones:
            heard = word_key(problem.word.heard_word or "")
            return self._choice(rng, WORD_ONLY_TEMPLATES[word_only_kind(problem.word)]).format(
                word=problem.text, num=num, heard=heard)
        leads = WORD_LEAD_TEMPLATES[1:2] if self.plain else WORD_LEAD_TEMPLATES  # plain: the shortest, "In ..."
        lead = self._choice(rng, leads).format(word=problem.text, num=num)
        return lead + "; ".join(self._phone_clause(rng, p) for p in problem.phones) + "."

    def _phone_clause(self, rng: random.Random, phone: ProblemPhone) -> str:
        if phone.heard:
            said = self._choice(rng, PHONE_HEARD_TEMPLATES).format(phone=phone.phone, heard=phone.heard)
        else:
            said = self._choice(rng, PHONE_UNCLEAR_TEMPLATES).format(phone=phone.phone)
        return f"{said} ({tip(phone.phone, phone.heard).text})"


# --- rejected rationales for preference pairs ---

PERTURBATION_KINDS = ("wrong_word", "dropped_word", "wrong_phone", "flipped_band", "wrong_number", "invented_number")
CONTRADICTING_BAND = {"poor": "excellent", "fair": "excellent", "good": "poor", "excellent": "poor"}
DECOY_WORDS = ("river", "window", "yellow", "garden", "pocket")


def perturb(text: str, sheet: ScoreSheet, rubric: Rubric, rng: random.Random,
            kind: str | None = None) -> tuple[str, str]:
    """A rationale made unfaithful in one way, and the kind of damage (one of PERTURBATION_KINDS).

    kind=None picks at random among the kinds that apply to this text and sheet. Raises ValueError when a
    requested kind cannot apply (e.g. dropped_word on a sheet with no problems).
    """
    if kind is not None and kind not in PERTURBATION_KINDS:
        raise ValueError(f"unknown perturbation kind {kind!r}; expected one of {', '.join(PERTURBATION_KINDS)}")
    kinds = [kind] if kind else list(PERTURBATION_KINDS)
    rng.shuffle(kinds)
    for k in kinds:
        out = _PERTURBERS[k](text, sheet, rubric, rng)
        if out is not None and out != text:
            return out, k
    raise ValueError(f"no perturbation of kind {kind or 'any'} applies to this rationale")


def _replace(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _non_problem_words(sheet: ScoreSheet, rubric: Rubric) -> list[str]:
    problems = {p.text for p in problem_words(rubric, sheet, capped=False)}
    return sorted({word_key(w.text) for w in sheet.words} - problems - {""})


def _perturb_wrong_word(text, sheet, rubric, rng):
    decoy = rng.choice(_non_problem_words(sheet, rubric) or list(DECOY_WORDS))
    blamed = parse_rationale(text).blamed_words
    if blamed:
        target = rng.choice(blamed)
        return _replace(text, target.span.start, target.span.end, decoy)
    return f"{text} \"{decoy}\" needs work."


def _perturb_dropped_word(text, sheet, rubric, rng):
    blamed = parse_rationale(text).blamed_words
    if not blamed:
        return None
    victim = rng.choice(blamed).word
    sentences = re.split(r"(?<=[.!?])\s+", text)
    kept = [s for s in sentences if f"\"{victim}\"" not in s.lower()]
    return " ".join(kept) if len(kept) < len(sentences) else None


def _perturb_wrong_phone(text, sheet, rubric, rng):
    blamed = parse_rationale(text).blamed_phones
    decoys = sorted(set(ARPABET) - {p.phone for p in problem_phones(rubric, sheet, capped=False)})
    if blamed:
        target, decoy = rng.choice(blamed), rng.choice(decoys)
        out = _replace(text, target.span.start, target.span.end, f"/{decoy}/")
        # the writer's tip follows its phone: swap it too, so the rejected text stays coherent
        at, old_tip = _next_tip(out, target.phone, target.span.start)
        return _replace(out, at, at + len(old_tip), f"({PHONE_TIPS[decoy]})") if at >= 0 else out
    if not sheet.words:
        return None
    word = word_key(rng.choice(sheet.words).text)
    return f"{text} In \"{word}\", /{rng.choice(decoys)}/ was unclear."


def _next_tip(text: str, phone: str, start: int) -> tuple[int, str]:
    """Where the first of the phone's tips (any of rationalizer.tips', in parentheses) occurs from start; -1 if none."""
    found = [(text.find(f"({t.text})", start), f"({t.text})") for t in tips_for(phone)]
    return min(((at, t) for at, t in found if at >= 0), default=(-1, ""))


def _perturb_flipped_band(text, sheet, rubric, rng):
    judged = [j for j in parse_rationale(text).aspects if j.band_spans]
    if not judged:
        return None
    target = rng.choice(judged)
    wrong = CONTRADICTING_BAND[sentence_band(rubric, sheet.sentence[target.aspect])]
    span = target.band_spans[0]
    return _replace(text, span.start, span.end, wrong)


def _perturb_wrong_number(text, sheet, rubric, rng):
    numbers = [n for n in parse_rationale(text).numbers if n.target_kind]
    if not numbers:
        return None
    target = rng.choice(numbers)
    if target.target_kind == "aspect":
        scores = [sheet.sentence[target.target]]
    else:
        scores = [s for w in sheet.words if word_key(w.text) == target.target for s in (w.accuracy, w.total)]
    return _replace(text, target.span.start, target.span.end, format_score(_far_value(scores or [target.value], rng)))


def _perturb_invented_number(text, sheet, rubric, rng):
    parsed = parse_rationale(text)
    quoted = {n.target for n in parsed.numbers}
    unquoted = [j for j in parsed.aspects if j.band_spans and j.aspect not in quoted]
    if not unquoted:
        return None
    target = rng.choice(unquoted)
    span = target.band_spans[-1]
    value = _far_value([sheet.sentence[target.aspect]], rng)
    return _replace(text, span.end, span.end, f" ({format_score(value)}/10)")


def _far_value(values: list[float], rng: random.Random) -> float:
    """A 0-10 value, on the one-decimal grid, at least 2 points away from every one of values."""
    candidates = [v / 2 for v in range(21) if all(abs(v / 2 - x) >= 2.0 for x in values)]
    return rng.choice(candidates) if candidates else (0.0 if min(values) > 5 else 10.0)


_PERTURBERS = {
    "wrong_word": _perturb_wrong_word,
    "dropped_word": _perturb_dropped_word,
    "wrong_phone": _perturb_wrong_phone,
    "flipped_band": _perturb_flipped_band,
    "wrong_number": _perturb_wrong_number,
    "invented_number": _perturb_invented_number,
}
