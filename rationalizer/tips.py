"""Articulation tips from a data table (tips.csv, shipped as package data).

Columns: expected, heard, tip. A row with a heard phone is the tip for a confusion common in L2 English (TH heard
as S, V as B, IH as IY, ...); heard "-" (DELETED) is for a phone that was dropped; an empty heard is the expected
phone's fallback tip, used when what was heard is unknown, unclear or has no row of its own. Every one of the 39
ARPAbet phones has a fallback.

The rubric writer puts a tip in parentheses after its phone clause ("/TH/ sounded like /S/ (tip)"), where the
faithfulness evaluator reads it too. So a tip is plain language that the evaluator does not take for a mention:
no /XX/ phones, every example word quoted right after "as in" ('as in "think"'), no sentence end (. ! ?), no ";"
or parentheses, no numbers (tests/test_tips.py checks each one through the writer and the evaluator).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .mentions import ARPABET
from .records import base_phone

TIPS_FILE = "tips.csv"
DELETED = "-"  # the heard column's value for "nothing was heard": the phone was dropped


@dataclass(frozen=True)
class Tip:
    expected: str  # ARPAbet base phone (upper case, no stress digit) the text asked for
    heard: str | None  # ARPAbet base phone heard instead, DELETED, or None for the expected phone's fallback
    text: str  # the advice, plain language, lower case start, no final full stop


def tip(expected: str, heard: str | None = None) -> Tip | None:
    """The tip for `expected` heard as `heard` (case and stress digits ignored; "AH0" == "ah").

    The confusion's own tip when the table has one, else the expected phone's fallback; None when `expected`
    is not an ARPAbet phone. heard: an ARPAbet phone, DELETED, or None (unknown or unclear).
    """
    table = load_tips()
    key = _normalised(expected)
    found = table.get((key, _normalised(heard) if heard else None))
    return found or table.get((key, None))


def tips_for(expected: str) -> list[Tip]:
    """Every tip of one expected phone, the fallback last; [] for a phone the table does not know."""
    key = _normalised(expected)
    return sorted((t for t in load_tips().values() if t.expected == key), key=lambda t: t.heard is None)


def fallback_tips() -> dict[str, str]:
    """{expected phone: its fallback tip text}, for all 39 ARPAbet phones."""
    return {e: t.text for (e, h), t in load_tips().items() if h is None}


@lru_cache(maxsize=1)
def load_tips() -> dict[tuple[str, str | None], Tip]:
    """The table as {(expected, heard or None): Tip}; read once.

    Raises ValueError for a row with an unknown phone, an empty tip, a duplicate key, or a phone without a
    fallback row.
    """
    text = resources.files(__package__).joinpath(TIPS_FILE).read_text(encoding="utf-8")
    return parse_tips(text)


def parse_tips(text: str) -> dict[tuple[str, str | None], Tip]:
    """Parse and check tips.csv's text (see load_tips for the errors raised)."""
    table: dict[tuple[str, str | None], Tip] = {}
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        record = _record(row, line)
        key = (record.expected, record.heard)
        if key in table:
            raise ValueError(f"{TIPS_FILE} line {line}: a second tip for {key}")
        table[key] = record
    missing = [p for p in ARPABET if (p, None) not in table]
    if missing:
        raise ValueError(f"{TIPS_FILE}: no fallback tip (empty heard) for {', '.join(missing)}")
    return table


def _record(row: dict, line: int) -> Tip:
    expected, heard, text = (row.get(k) or "" for k in ("expected", "heard", "tip"))
    expected, heard, text = expected.strip().upper(), heard.strip().upper() or None, text.strip()
    if expected not in ARPABET:
        raise ValueError(f"{TIPS_FILE} line {line}: expected phone {expected!r} is not ARPAbet")
    if heard not in (None, DELETED) and (heard not in ARPABET or heard == expected):
        raise ValueError(f"{TIPS_FILE} line {line}: heard {heard!r} is not another ARPAbet phone or {DELETED!r}")
    if not text:
        raise ValueError(f"{TIPS_FILE} line {line}: empty tip")
    return Tip(expected, heard, text)


def _normalised(phone: str) -> str:
    return phone if phone == DELETED else base_phone(phone.strip().upper())

