"""Pick, with the audio, the reading of the text and the pronunciation of each word the learner actually used.

The whole-text readings (`Lexicon.readings`: "1990" as NINETEEN NINETY or ONE THOUSAND NINE HUNDRED NINETY) are
each force-aligned once; the best mean path score per frame wins. Within that one alignment every word with
several accepted pronunciations (`Pronunciation.variants`: "either" as IY DH ER or AY DH ER) is entered as
pocketsphinx dictionary alternates, whose alignment search picks one per word (checked: an /AY DH ER/ recording
aligns to the WORD(2) entry); so the cost is one alignment per candidate reading, whatever the number of variants.

pocketsphinx's small acoustic model picks poorly between variants that differ in a vowel: a clean espeak-ng reading
of "I can't go home now" aligned to K AA N T, whose /AA/ the scorer then gave 0 (hama heard /AE/). `refine_variants`
makes the choice again under the CTC phone recogniser (hama), which has no language model and a far better
acoustic model: each word's variant that makes the whole text's phones likeliest, the others as chosen.
"""
from __future__ import annotations

import numpy as np

from .alignment import AlternativeChoice, ForcedAligner
from .audio import Audio
from .lexicon import Pronunciation
from .phone_gains import phone_ids, sequence_log_likelihoods
from .phoneset import split_stress

# nats by which another variant must make the text likelier under the phone recogniser to replace the aligner's
# choice: a clear acoustic preference, not noise between near-equal readings
VARIANT_MARGIN = 1.0
REDUCED_VOWELS = {"AH", "IH"}
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
MAX_REFINE_FRAMES = 3000  # 60 s of 20 ms frames; longer readings keep the aligner's choice (whole-text CTC passes)


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


def refine_variants(log_probs: np.ndarray, pronunciation: Pronunciation, margin: float = VARIANT_MARGIN
                    ) -> Pronunciation:
    """`pronunciation` with each multi-variant word pronounced as the variant under which the phone recogniser's
    frames `log_probs` (T, 41; encoder.phone_gains.ctc_log_probs) make the whole text's phones likeliest, when that
    beats the current variant by more than `margin` nats; words in text order, each against the others as chosen
    so far. Unchanged for a reading over MAX_REFINE_FRAMES frames or with no multi-variant word."""
    choices = [(k, _distinct_bases(v)) for k, v in enumerate(pronunciation.variants)]
    choices = [(k, options) for k, options in choices if len(options) > 1]
    if not choices or len(log_probs) > MAX_REFINE_FRAMES:
        return pronunciation
    words = phone_ids([tuple(p) for p in pronunciation.phones])
    for k, options in choices:
        options = [o for o in options if not _weak_form_pair(pronunciation.phones[k], pronunciation.variants[k][o[1]])]
        current = tuple(split_stress(p)[0] for p in pronunciation.phones[k])
        candidates = [phone_ids([bases])[0] for bases, _ in options]
        likelihoods = sequence_log_likelihoods(log_probs, [_text_with(words, k, c) for c in candidates])
        mine = next((i for i, (bases, _) in enumerate(options) if bases == current), None)
        if mine is None or len(options) < 2:
            continue
        best = int(np.argmax(likelihoods))
        if best != mine and likelihoods[best] - likelihoods[mine] > margin:
            pronunciation = pronunciation.with_variant(k, _variant_index(pronunciation, k, options[best][0]))
            words[k] = candidates[best]
    return pronunciation


def _weak_form_pair(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two pronunciations differ only in vowels, each differing pair with a reduced one (/AH/ or /IH/): a
    weak and a strong form ("the" DH AH / DH IY, "and" AH N D / AE N D, "to" T UW / T AH). The scorer learnt these
    words in the corpus lexicon's one form, and scored the other form's word low even where its phones were fine
    (the field paragraph: THE as DH IY at 5.2), so they stay as aligned. (Stress marks cannot tell: the corpus
    lexicon marks "can't" K AE0 N T.)"""
    if len(a) != len(b):
        return False
    pairs = [(x, y) for x, y in ((split_stress(x)[0], split_stress(y)[0]) for x, y in zip(a, b)) if x != y]
    return bool(pairs) and all(x in VOWELS and y in VOWELS and {x, y} & REDUCED_VOWELS for x, y in pairs)


def _text_with(words: list[list[int]], k: int, phones: list[int]) -> list[int]:
    return [t for j, w in enumerate(words) for t in (phones if j == k else w)]


def _variant_index(pronunciation: Pronunciation, k: int, bases: tuple[str, ...]) -> int:
    """The index, in the word's current variants, of the first variant with these phones (stress aside)."""
    return next(i for i, v in enumerate(pronunciation.variants[k]) if tuple(split_stress(p)[0] for p in v) == bases)
