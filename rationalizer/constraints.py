"""Constrained decoding for rationales: a quoted word must be a word of the text (issue 13).

`QuotedWords` is a transformers LogitsProcessor. While the answer has an open quote ("..., “..., or '... opened
after a space), only tokens that keep the quoted text a prefix of one of the allowed words, or that close the quote
right after a whole allowed word, keep their scores; the rest get -inf. Outside quotes it changes nothing. The
faithfulness evaluator (rationalizer.faithfulness) counts a quoted word that is not in the text as an extra word;
with this processor the model cannot write one.
"""
from __future__ import annotations

import re
from collections import defaultdict

import torch
from transformers import LogitsProcessor

from .rubric import word_key

_CLOSERS = {'"': '"', "“": "”", "'": "'"}
_SINGLE_OPENER = re.compile(r"(?:^|(?<=[^\w']))'")


class TokenPieces:
    """Every token's decoded text, lower case, indexed by its first character (built once per tokenizer)."""

    def __init__(self, tokenizer):
        pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        special = set(tokenizer.all_special_ids)
        self.by_first: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for i, piece in enumerate(pieces):
            if piece and i not in special:
                self.by_first[piece[0].lower()].append((i, piece.lower()))


class QuotedWords(LogitsProcessor):
    """Inside an open quote of the generated answer, only continuations towards one of `words` (then the closing
    quote) are allowed. prompt_length: tokens of the prompt (the answer starts after them); prefix: the answer's
    start when it was given in the prompt (a constrained regeneration's)."""

    def __init__(self, tokenizer, pieces: TokenPieces, prompt_length: int, words, prefix: str = ""):
        self.tokenizer, self.pieces, self.prompt_length, self.prefix = tokenizer, pieces, prompt_length, prefix
        self.words = sorted({word_key(w) for w in words if word_key(w)})

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for row in range(input_ids.shape[0]):
            answer = self.prefix + self.tokenizer.decode(input_ids[row, self.prompt_length:], skip_special_tokens=True)
            state = open_quote(answer)
            if state is None:
                continue
            allowed = self.allowed(*state)
            if allowed:  # never leave a row with nothing to generate
                keep = torch.full_like(scores[row], float("-inf"))
                keep[allowed] = scores[row, allowed]
                scores[row] = keep
        return scores

    def allowed(self, content: str, closer: str) -> list[int]:
        """Token ids that continue `content` (the open quote's text so far) towards an allowed word + closer."""
        remainders = [w[len(content):] + closer for w in self.words if w.startswith(content.lower())]
        found = []
        for first in {r[0] for r in remainders}:
            for token, piece in self.pieces.by_first.get(first, ()):
                if any(r.startswith(piece) or piece.startswith(r) for r in remainders):
                    found.append(token)
        return found


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
