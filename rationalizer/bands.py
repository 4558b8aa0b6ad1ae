"""The one score-to-band table: every band word and band colour in orthoepy comes from here.

Consumers: the rubric (prompt bands, rationale targets, the rule-based text), the faithfulness evaluator (which
band word a score allows), the CLI's plain-text view, and the learner page, which receives `band_table()` from
the service (GET /v1/info, key "bands") and colours scores with it instead of thresholds of its own.

Edges (chosen, with the reason):
- sentence and word, 0-10: (4.0, 6.5, 8.5), i.e. poor < 4 <= fair < 6.5 <= good < 8.5 <= excellent. These are
  the rubric's documented edges: the prompts and targets of the shipped rationalizer were built with them. The
  page's own word/sentence thresholds (8 and 5, three colours) were undocumented and are dropped.
- phone, 0-2: (1.0, 1.5, 1.7). 1.0 is where the code already draws the line for a phone (the rubric's problem
  phone threshold, the assessor's `mispronounced` flag below 1.0, the page's old "fair" edge); 1.5 is the page's
  old "good" edge; 1.7 is the 0-10 excellent edge 8.5 scaled to 0-2.

A score is banded on the value as shown: rounded to the scale's `decimals` (one for 0-10, two for phones), as
the prompt, the CLI and the page print it. No edge has an exact binary tie half a step below it (3.95, 1.495,
...), so Python's round() and JavaScript's toFixed() agree on every band. Values outside the scale take the
nearest end band (noised or tolerance-shifted scores may stray a little).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

GRANULARITIES = ("phone", "word", "sentence")
BAND_NAMES = ("poor", "fair", "good", "excellent")  # worst first; the words the rationales use

# band name -> (colour name, hex for borders and text, hex for fills); the page's colours
_COLOURS = {
    "poor": ("red", "#c62828", "#ffcdd2"),
    "fair": ("amber", "#ef8f00", "#ffe0b2"),
    "good": ("green", "#2e7d32", "#c8e6c9"),
    "excellent": ("dark green", "#1b5e20", "#81c784"),
}
# granularity -> (minimum, maximum, decimals shown, the three inner edges)
_SCALES = {
    "phone": (0.0, 2.0, 2, (1.0, 1.5, 1.7)),
    "word": (0.0, 10.0, 1, (4.0, 6.5, 8.5)),
    "sentence": (0.0, 10.0, 1, (4.0, 6.5, 8.5)),
}


@dataclass(frozen=True)
class Band:
    """One band of one scale: scores in [lower, upper) on the scale's units (the top band includes `upper`)."""
    name: str  # one of BAND_NAMES
    lower: float
    upper: float
    colour: str  # colour name, e.g. "amber"
    hex: str  # "#rrggbb" for borders and text
    background: str  # "#rrggbb" for fills


@dataclass(frozen=True)
class BandScale:
    """The bands of one granularity, worst first, covering [minimum, maximum] without gaps."""
    granularity: str
    minimum: float
    maximum: float
    decimals: int  # a score is banded after rounding to this many decimals
    bands: tuple[Band, ...]

    @property
    def edges(self) -> tuple[float, ...]:
        """The inner edges, ascending: each band's upper bound but the top one's."""
        return tuple(b.upper for b in self.bands[:-1])


def _scale(granularity: str) -> BandScale:
    minimum, maximum, decimals, edges = _SCALES[granularity]
    bounds = (minimum, *edges, maximum)
    bands = tuple(Band(name, bounds[i], bounds[i + 1], *_COLOURS[name]) for i, name in enumerate(BAND_NAMES))
    return BandScale(granularity, minimum, maximum, decimals, bands)


SCALES: dict[str, BandScale] = {g: _scale(g) for g in GRANULARITIES}


def scale(granularity: str) -> BandScale:
    """The BandScale of "phone" (0-2), "word" or "sentence" (0-10). Raises ValueError for another name."""
    if granularity not in SCALES:
        raise ValueError(f"unknown granularity {granularity!r}; expected one of {', '.join(GRANULARITIES)}")
    return SCALES[granularity]


def band(score: float, granularity: str) -> Band:
    """The band of `score` (on the granularity's scale) after rounding it to the scale's shown decimals.

    Below the minimum: the lowest band; above the maximum: the top band. Raises ValueError for a NaN score or
    an unknown granularity.
    """
    if math.isnan(score):
        raise ValueError(f"cannot band a NaN {granularity} score")
    table = scale(granularity)
    shown = round(float(score), table.decimals)
    return next((b for b in table.bands[:-1] if shown < b.upper), table.bands[-1])


def band_table() -> dict[str, dict]:
    """The table as JSON-ready data, as the learner page receives it:

    {granularity: {"minimum", "maximum", "decimals", "bands": [{"name", "lower", "upper", "colour", "hex",
    "background"}, ...worst first]}}.
    """
    return {g: {"minimum": s.minimum, "maximum": s.maximum, "decimals": s.decimals,
                "bands": [asdict(b) for b in s.bands]} for g, s in SCALES.items()}
