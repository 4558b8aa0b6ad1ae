"""Pick, with the audio, the reading of the text and the pronunciation of each word the learner actually used.

The whole-text readings (`Lexicon.readings`: "1990" as NINETEEN NINETY or ONE THOUSAND NINE HUNDRED NINETY) are
each force-aligned once; the best mean path score per frame wins. Within that one alignment every word with
several accepted pronunciations (`Pronunciation.variants`: "either" as IY DH ER or AY DH ER) is entered as
pocketsphinx dictionary alternates, whose alignment search picks one per word (checked: an /AY DH ER/ recording
aligns to the WORD(2) entry); so the cost is one alignment per candidate reading, whatever the number of variants.

Between whole readings, which differ by words ("nineteen ninety" / "nineteen hundred ninety"), the aligner's score
per frame often preferred a reading with a word missing or extra (docs/frontend.md, "Readings of numbers"). Given
the CTC phone recogniser's frames, the reading whose phones they make likeliest wins instead; pocketsphinx still
picks the variants within each reading (hama's vowels were no better judges of those).
"""
from __future__ import annotations

import numpy as np

from .alignment import AlternativeChoice, ForcedAligner
from .audio import Audio
from .lexicon import Pronunciation
from .phone_gains import phone_ids, sequence_log_likelihoods
from .phoneset import split_stress

MAX_CTC_FRAMES = 3000  # 60 s of 20 ms frames; longer recordings keep the aligner's choice (whole-text CTC passes)


def choose_pronunciation(aligner: ForcedAligner, audio: Audio, candidates: list[Pronunciation],
                         log_probs: np.ndarray | None = None) -> Pronunciation:
    """The candidate reading that fits `audio` best, each word pronounced as its best-fitting variant.

    candidates: whole-text readings, the default first (as from `Lexicon.readings`). log_probs: the CTC phone
    recogniser's frames over the recording, (T, 41) (PosteriorGOP.frame_log_probs); with them, and several
    candidates, the reading they make likeliest wins, else the one with the best alignment score per frame. When no
    candidate aligns, the first is returned unchanged. Raises ValueError when candidates is empty.
    """
    if not candidates:
        raise ValueError("choose_pronunciation needs at least one candidate pronunciation")
    aligned = [scored for scored in (_align_candidate(aligner, audio, c) for c in candidates) if scored is not None]
    if not aligned:
        return candidates[0]
    if log_probs is not None and len(aligned) > 1 and len(log_probs) <= MAX_CTC_FRAMES:
        texts = [[t for word in phone_ids([tuple(p) for p in reading.phones]) for t in word] for _, reading in aligned]
        return aligned[int(np.argmax(sequence_log_likelihoods(log_probs, texts)))][1]
    return max(aligned, key=lambda scored: scored[0])[1]


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
