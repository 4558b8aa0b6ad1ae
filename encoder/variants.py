"""Pick, with the audio, the reading of the text and the pronunciation of each word the learner actually used.

The whole-text readings (`Lexicon.readings`: "1990" as NINETEEN NINETY or ONE THOUSAND NINE HUNDRED NINETY) are
each force-aligned once; the best mean path score per frame wins. Within that one alignment every word with
several accepted pronunciations (`Pronunciation.variants`: "either" as IY DH ER or AY DH ER) is entered as
pocketsphinx dictionary alternates, whose alignment search picks one per word (checked: an /AY DH ER/ recording
aligns to the WORD(2) entry); so the cost is one alignment per candidate reading, whatever the number of variants.
"""
from __future__ import annotations

from .alignment import AlternativeChoice, ForcedAligner
from .audio import Audio
from .lexicon import Pronunciation
from .phoneset import split_stress


def choose_pronunciation(aligner: ForcedAligner, audio: Audio, candidates: list[Pronunciation]) -> Pronunciation:
    """The candidate reading that fits `audio` best, each word pronounced as its best-fitting variant.

    candidates: whole-text readings, the default first (as from `Lexicon.readings`). When no candidate aligns,
    the first is returned unchanged. Raises ValueError when candidates is empty.
    """
    if not candidates:
        raise ValueError("choose_pronunciation needs at least one candidate pronunciation")
    best: tuple[float, Pronunciation] | None = None
    for candidate in candidates:
        scored = _align_candidate(aligner, audio, candidate)
        if scored is not None and (best is None or scored[0] > best[0]):
            best = scored
    return candidates[0] if best is None else best[1]


def _align_candidate(aligner: ForcedAligner, audio: Audio, candidate: Pronunciation) -> tuple[float, Pronunciation] | None:
    """(mean path score per frame, the candidate with the chosen variants first), or None when it fails to align."""
    alternatives = [_distinct_bases(variants) for variants in candidate.variants]
    choice: AlternativeChoice | None = aligner.choose_alternatives(audio, [[b for b, _ in a] for a in alternatives])
    if choice is None:
        return None
    chosen = candidate
    for word_index, (options, picked) in enumerate(zip(alternatives, choice.chosen)):
        chosen = chosen.with_variant(word_index, options[picked][1])
    return choice.score_per_frame, chosen


def _distinct_bases(variants: tuple[tuple[str, ...], ...]) -> list[tuple[tuple[str, ...], int]]:
    """Variants that differ in more than stress (the aligner ignores stress): (bases, index of the first such variant)."""
    seen: dict[tuple[str, ...], int] = {}
    for k, phones in enumerate(variants):
        seen.setdefault(tuple(split_stress(p)[0] for p in phones), k)
    return list(seen.items())
