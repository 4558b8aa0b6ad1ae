"""Constrained decoding for rationales: a quoted word must be a word of the text, a phone a phone of its word
(issue 13).

`QuotedWords` is a transformers LogitsProcessor. While the answer has an open quote ("..., “..., or '... opened
after a space), only tokens that keep the quoted text a prefix of one of the allowed words, or that close the quote
right after a whole allowed word, keep their scores; the rest get -inf. Outside quotes it changes nothing. The
faithfulness evaluator (rationalizer.faithfulness) counts a quoted word that is not in the text as an extra word;
with this processor the model cannot write one.

`PhoneSymbols` does the same for phone mentions ("/TH/"): inside an open slash, only an ARPAbet symbol of the
word quoted last (else of any word of the text) can follow, then the closing slash; after "like" or "as" (what was
heard instead, "/TH/ sounded like /S/") only what the sheet says was heard for that phone of that word, or any
ARPAbet symbol but the mentioned one when the sheet has nothing.
"""
from __future__ import annotations

import re
from collections import defaultdict

import torch
from transformers import LogitsProcessor

from .mentions import ARPABET, example_cue_before, parse_rationale
from .records import base_phone
from .rubric import tip_after, word_key

_CLOSERS = {'"': '"', "“": "”", "'": "'"}
_SINGLE_OPENER = re.compile(r"(?:^|(?<=[^\w']))'")


class TokenPieces:
    """Every token's decoded text, lower case (by_first) and as written (cased), indexed by its first character
    (built once per tokenizer)."""

    def __init__(self, tokenizer):
        pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        special = set(tokenizer.all_special_ids)
        self.by_first: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self.cased: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for i, piece in enumerate(pieces):
            if piece and i not in special:
                self.by_first[piece[0].lower()].append((i, piece.lower()))
                self.cased[piece[0]].append((i, piece))


class _AnswerConstraint(LogitsProcessor):
    """Masks, row by row, every token but those `allowed_for(answer)` returns (None or []: no constraint there, so
    a row is never left with nothing to generate), or, where a subclass's `rule` bans tokens instead, those. The
    answer is decoded after prompt_length tokens; prefix: the answer's start when it was given in the prompt (a
    constrained regeneration's)."""

    def __init__(self, tokenizer, pieces: TokenPieces, prompt_length: int, prefix: str = ""):
        self.tokenizer, self.pieces, self.prompt_length, self.prefix = tokenizer, pieces, prompt_length, prefix

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row in range(input_ids.shape[0]):
            answer = self.prefix + self.tokenizer.decode(input_ids[row, self.prompt_length:], skip_special_tokens=True)
            allowed, banned = self.rule(answer)
            if allowed:
                keep = torch.full_like(scores[row], float("-inf"))
                keep[allowed] = scores[row, allowed]
                scores[row] = keep
            elif banned:
                scores[row, banned] = float("-inf")
        return scores

    def rule(self, answer: str) -> tuple[list[int] | None, list[int]]:
        """(the only tokens allowed next, or None) and (tokens banned next) after `answer`."""
        return self.allowed_for(answer), []

    def allowed_for(self, answer: str) -> list[int] | None:
        raise NotImplementedError


def continuations(by_first: dict[str, list[tuple[int, str]]], remainders: list[str]) -> list[int]:
    """Token ids whose piece (TokenPieces.by_first or .cased) starts one of the remainders or runs past its end."""
    found = []
    for first in {r[0] for r in remainders}:
        for token, piece in by_first.get(first, ()):
            if any(r.startswith(piece) or piece.startswith(r) for r in remainders):
                found.append(token)
    return found


class QuotedWords(_AnswerConstraint):
    """Inside an open quote of the generated answer, only continuations towards one of `words` (then the closing
    quote) are allowed. prompt_length: tokens of the prompt (the answer starts after them); prefix: the answer's
    start when it was given in the prompt (a constrained regeneration's)."""

    def __init__(self, tokenizer, pieces: TokenPieces, prompt_length: int, words, prefix: str = "",
                 clause_words=None, lower_case: bool = False, whole_word_sentences: bool = False):
        """clause_words: when given (and not empty), the only words a word's clause of sounds ('In "X", /P/ ...')
        may open with: those with sounds to name. Another word of `words` is then named as a whole word.
        lower_case: only lower-case pieces, as the rubric and the training targets quote words (else the model could
        spell 'In "shoULDER"' from mixed-case pieces). whole_word_sentences: with clause_words, a sentence that
        opens on a quote ('"X" was unclear') opens on a word with no sounds to name, where there is one (the model
        wrote '"was" was unclear' for a word whose /Z/ the rubric names)."""
        super().__init__(tokenizer, pieces, prompt_length, prefix)
        self.lower_case, self.whole_word_sentences = lower_case, whole_word_sentences
        self.words = sorted({word_key(w) for w in words if word_key(w)})
        self.clause_words = sorted({word_key(w) for w in clause_words or () if word_key(w)})

    def allowed_for(self, answer: str) -> list[int] | None:
        state = open_quote(answer)
        if state is None:
            return None
        before = answer[:len(answer) - len(state[0]) - 1]
        if example_cue_before(before):
            return None  # an example word of an articulation tip ('as in "think"'): free
        return self.allowed(*state, words=self._words_after(before))

    def _words_after(self, before: str) -> list[str]:
        """With clause_words: a clause of sounds opens on one of them, and a sentence that opens on a quote (the
        '"X" was unclear' of a word named as a whole) on one of the others, where any are left."""
        if not self.clause_words:
            return self.words
        if _CLAUSE_LEAD.search(before):
            return self.clause_words
        if self.whole_word_sentences and _SENTENCE_START.search(before):
            return [w for w in self.words if w not in self.clause_words] or self.words
        return self.words

    def allowed(self, content: str, closer: str, words: list[str] | None = None) -> list[int]:
        """Token ids that continue `content` (the open quote's text so far) towards an allowed word + closer."""
        remainders = [w[len(content):] + closer for w in (words or self.words) if w.startswith(content.lower())]
        return continuations(self.pieces.cased if self.lower_case else self.pieces.by_first, remainders)


_CLAUSE_LEAD = re.compile(r"(?:^|(?<=[.!?;]\s))In\s*$")
_SENTENCE_START = re.compile(r"(?:^|[.!?;]\s*)$")


def open_quote(answer: str) -> tuple[str, str] | None:
    """(the quoted text so far, its closing mark) when the answer ends inside a quote, else None.

    A single quote opens only after a space or punctuation (an apostrophe inside a word does not), as the
    rationale parser (rationalizer.mentions) reads quotes."""
    candidates = []
    if answer.count('"') % 2:
        candidates.append((answer.rindex('"'), '"'))
    if answer.rfind("“") > answer.rfind("”"):
        candidates.append((answer.rindex("“"), "“"))
    singles = [m.start() for m in _SINGLE_OPENER.finditer(answer)]
    if singles and "'" not in answer[singles[-1] + 1:]:
        candidates.append((singles[-1], "'"))
    if not candidates:
        return None
    start, opener = max(candidates)
    content = answer[start + 1:]
    return (content, _CLOSERS[opener]) if "\n" not in content else None


_PHONE_OPEN = re.compile(r"(?:^|(?<=[\s(]))/([A-Za-z]{0,2})$")
_HEARD_SLOT = re.compile(r"\b(?:like|as)\s*$", re.IGNORECASE)
_LAST_QUOTED = re.compile(r"[\"“]([^\"“”]+)[\"”]")
_LAST_PHONE = re.compile(r"(?:^|(?<=[\s(]))/([A-Z]{1,2})/")


class PhoneSymbols(_AnswerConstraint):
    """Inside an open "/" phone mention of the generated answer, only continuations towards an allowed ARPAbet
    symbol and then "/" keep their scores. word_phones: {word as rationales quote it (rubric.word_key): its
    canonical phones}; heard: {(word, canonical base phone): what the sheet says was heard}; prompt_length and
    prefix as QuotedWords'."""

    def __init__(self, tokenizer, pieces: TokenPieces, prompt_length: int, word_phones: dict[str, tuple[str, ...]],
                 prefix: str = "", heard: dict[tuple[str, str], str] | None = None):
        super().__init__(tokenizer, pieces, prompt_length, prefix)
        self.word_phones = {word_key(w): {_base(p) for p in phones} & set(ARPABET) for w, phones in word_phones.items()}
        self.any_word = set().union(*self.word_phones.values()) if self.word_phones else set(ARPABET)
        self.heard = {(word_key(w), _base(p)): _base(h) for (w, p), h in (heard or {}).items() if _base(h) in ARPABET}

    def allowed_for(self, answer: str) -> list[int] | None:
        state = open_phone(answer)
        return self.allowed(state[0], self.symbols(answer[:state[1]])) if state is not None else None

    def symbols(self, before: str) -> set[str]:
        """The symbols allowed in a mention that opens after `before`."""
        quoted = _LAST_QUOTED.findall(before)
        word = word_key(quoted[-1]) if quoted else None
        if _HEARD_SLOT.search(before):
            mentioned = _LAST_PHONE.findall(before)
            heard = self.heard.get((word, mentioned[-1])) if word and mentioned else None
            return {heard} if heard else set(ARPABET) - set(mentioned[-1:])  # never "/M/ sounded like /M/"
        return self.word_phones.get(word, self.any_word) if word else self.any_word

    def allowed(self, content: str, symbols: set[str]) -> list[int]:
        remainders = [s[len(content):] + "/" for s in symbols if s.startswith(content)]  # ARPAbet is upper case
        return continuations(self.pieces.cased, remainders)


def open_phone(answer: str) -> tuple[str, int] | None:
    """(the symbol written so far, where its slash is) when the answer ends inside a phone mention, else None.
    A slash opens a mention only after a space, "(" or at the start ("7.5/10" is a number)."""
    match = _PHONE_OPEN.search(answer)
    return (match.group(1), match.start()) if match else None


def _base(phone: str) -> str:
    return base_phone(phone).upper()


class TipText(_AnswerConstraint):
    """Inside a parenthesis opened right after a phone clause ("/TH/ sounded like /S/ ("), only continuations
    towards that clause's tip from the table (rationalizer.tips) and then ")" keep their scores, so the advice
    belongs to the sound named (a newcomer found the /AY/ tip after /AA/ and the /D/ tip after /EH/)."""

    def allowed_for(self, answer: str) -> list[int] | None:
        start = answer.rfind("(")
        if start < 0 or ")" in answer[start:]:
            return None
        found = tip_after(answer[:start + 1])
        target = found.text + ")" if found is not None else None
        content = answer[start + 1:]
        if target is None or not target.startswith(content):
            return None
        return continuations(self.pieces.cased, [target[len(content):]])


# a word's clause of sounds just opened: 'In "never", ' (the varied phrasing puts the score in brackets first)
_SOUND_CLAUSE_OPEN = re.compile(r'(?:^|(?<=[.!?;]\s))In "[^"]+"(?:\s*\([^)]*\))?,(\s*)$')


class SoundClause(_AnswerConstraint):
    """Right after a word's lead 'In "X", ' only a phone mention ("/") may follow, as in every training target: the
    model otherwise wrote 'In "never", as a word, "pen" was unclear', another word's problem inside this one's."""

    def allowed_for(self, answer: str) -> list[int] | None:
        match = _SOUND_CLAUSE_OPEN.search(answer)
        if match is None:
            return None
        return continuations(self.pieces.cased, ["/" if match.group(1) else " /"])


class Coverage(LogitsProcessor):
    """Until the answer names every word and every sound the rubric names (rubric.problem_words and problem_phones,
    capped: what the faithfulness evaluator expects), the end of the answer is masked, so the model goes on to
    name what it left out instead of stopping (most texts the guard rejected had left out a problem word or sound).
    words: the expected words as rationales quote them (rubric.word_key); phones: (word, base phone) pairs;
    text_words: every word of the text; stop_ids: the token ids that end an answer."""

    def __init__(self, tokenizer, prompt_length: int, words, phones, text_words, stop_ids, prefix: str = "",
                 openings: dict[str, str] | None = None):
        """openings: {word: how a sentence naming it as a whole word opens}, for words the rubric names in its own
        way (' There was a pause before "X"', ' "X" was left out'); else ' "X"'."""
        self.tokenizer, self.prompt_length, self.prefix = tokenizer, prompt_length, prefix
        self.openings = {word_key(w): o for w, o in (openings or {}).items()}
        self.words, self.phones = [word_key(w) for w in words], [(word_key(w), p.upper()) for w, p in phones]
        self.text_words, self.stop_ids = {word_key(w) for w in text_words}, sorted(set(stop_ids))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not (self.words or self.phones) or not self.stop_ids:
            return scores
        for row in range(input_ids.shape[0]):
            answer = self.prefix + self.tokenizer.decode(input_ids[row, self.prompt_length:], skip_special_tokens=True)
            if self.missing(answer):
                scores[row, self.stop_ids] = float("-inf")
        return scores

    def missing(self, answer: str) -> list[str]:
        """The expected mentions the answer does not make yet ('"word"', '/P/ in "word"'), as the evaluator
        finds them (a phone named without its word, or with a word not in the text, counts for any word)."""
        parsed = parse_rationale(answer)
        named = {w.word for w in parsed.blamed_words}
        out = [f'"{w}"' for w in self.words if w not in named]
        out += [f'/{p}/ in "{w}"' for w, p in self._missing_phones(parsed)]
        return out

    def next_opening(self, answer: str) -> str | None:
        """How a sentence that names the first missing mention opens (' In "X", /P/' for a sound, the word's opening
        for a word), in the rubric's order (worst word first); None when nothing is missing."""
        parsed = parse_rationale(answer)
        named = {w.word for w in parsed.blamed_words}
        missing_phones = self._missing_phones(parsed)
        for word in self.words:
            sounds = [p for w, p in missing_phones if w == word]
            if sounds:
                return f' In "{word}", /{sounds[0]}/'
            if word not in named:
                return self.openings.get(word, f' "{word}"')
        return f' In "{missing_phones[0][0]}", /{missing_phones[0][1]}/' if missing_phones else None

    def _missing_phones(self, parsed) -> list[tuple[str, str]]:
        phones = {(p.word, p.phone) for p in parsed.blamed_phones}
        return [(w, p) for w, p in self.phones
                if not any(q == p and (v == w or v not in self.text_words) for v, q in phones)]


_LAST_SENTENCE_END = re.compile(r"[.!?](?=\s|$)(?!.*[.!?](?=\s|$))", re.DOTALL)


class MissingFirst(_AnswerConstraint):
    """With `Coverage`: once the sentence judgements are written (a sentence on the overall score), every new
    sentence opens on the first mention still missing (Coverage.next_opening), so a model that would otherwise
    repeat a sentence (what ended most texts that left a problem out, once the end was masked) names it instead;
    the rest of that sentence is the model's."""

    def __init__(self, tokenizer, pieces: TokenPieces, prompt_length: int, coverage: Coverage, prefix: str = ""):
        super().__init__(tokenizer, pieces, prompt_length, prefix)
        self.coverage = coverage

    def allowed_for(self, answer: str) -> list[int] | None:
        end = _LAST_SENTENCE_END.search(answer)
        if end is None or "overall" not in answer[:end.end()].lower():
            return None
        opening = self.coverage.next_opening(answer[:end.end()])
        tail = answer[end.end():]
        if opening is None or tail == opening or not opening.startswith(tail):
            return None
        return continuations(self.pieces.cased, [opening[len(tail):]])


_NUMBER_BEING_WRITTEN = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?)$")
_COUNT_LEAD = re.compile(r"(?<![\w.])(\d+) of $")
_NUMBER_IN_TEXT = re.compile(r"\d+(?:\.\d+)?")


class SheetNumbers(_AnswerConstraint):
    """A number in the answer is one of the sheet's numbers, and a count says how many words were read of how many.

    numbers: the numbers the answer may write, as the prompt spells them ("8.8", "10", "6.5"; e.g. every number of
    the rendered prompt). A number is written digit by digit (the tokenizer has one token a digit), so each digit or
    decimal point must keep it the start of one of them, and it cannot stop before it is one of them. A count
    ("N of M words were read", as the rubric writes it and faithfulness.false_claims checks it): " of" can follow a
    number only when it is `read`, and the number after "`read` of " can only be `total`. The model had written
    "8 of 9 words were read" for 10 of 10 (docs/rationales.md, session 15).
    """

    def __init__(self, tokenizer, pieces: TokenPieces, prompt_length: int, numbers, read: int, total: int,
                 prefix: str = ""):
        super().__init__(tokenizer, pieces, prompt_length, prefix)
        self.numbers = sorted({str(n) for n in numbers} | {str(read), str(total)})
        self.read, self.total = str(read), str(total)
        self.digits = {d: [t for t, p in pieces.cased.get(d, ()) if p == d] for d in "0123456789"}
        self.point = [t for t, p in pieces.cased.get(".", ()) if p == "."]
        self.of = [t for t, p in pieces.by_first.get(" ", ()) if re.fullmatch(r" of\b.*", p)]
        self.any_digit = [t for d in self.digits.values() for t in d]

    def rule(self, answer: str) -> tuple[list[int] | None, list[int]]:
        written = _NUMBER_BEING_WRITTEN.search(answer)
        if written is None:  # a number may start only as one of the numbers starts (not inside a word: "AH0")
            if answer and (answer[-1].isalnum() or answer[-1] == "."):
                return None, []
            targets = [self.total] if _COUNT_LEAD.search(answer) else self.numbers
            return None, [t for d, ids in self.digits.items() if not any(n.startswith(d) for n in targets) for t in ids]
        number = written.group(1)
        # after "N of " (N can only be `read` there: " of" follows no other number) comes the number of words
        targets = [self.total] if _COUNT_LEAD.search(answer[:written.start()]) else self.numbers
        grow = [t for d, ids in self.digits.items() if any(n.startswith(number + d) for n in targets) for t in ids]
        if "." not in number and any(n.startswith(number + ".") for n in targets):
            grow += self.point
        if number.rstrip(".") not in targets and number not in targets:
            return grow, []  # not one of them yet: it must go on
        banned = [t for t in self.any_digit if t not in grow]
        if number != self.read:
            banned += self.of
        return None, banned


def sheet_numbers(prompt: str) -> list[str]:
    """Every number a rendered prompt spells ("8.8", "10", "6.5")."""
    return _NUMBER_IN_TEXT.findall(prompt)
