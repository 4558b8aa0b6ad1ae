"""Miscue evidence without a language model: CTC likelihood ratios of edited texts under the phone recogniser.

Most of the verification's evidence comes from Whisper (encoder/verification.py), whose language model writes a
function word that was never said and finds "a a" unlikely however clearly it was said. The phone recogniser
(hama's waveform-to-IPA CTC model, folded onto ARPAbet by encoder/features/posterior_gop.py) has no language
model, so comparing the likelihood of the text's phones with that of an edited phone sequence is acoustic evidence
alone (all in nats, over the frames of one verification window; the forward algorithm is torch's `ctc_loss`):

- **skip gain**, per word: log P(the phones without the word) - log P(the phones). High: the word was not said.
- **repeat gain**, per word: log P(the phones with the word said twice) - log P(the phones). High: it was repeated.
- **insert gain**, per gap after a word: the largest, over m = 1..3, of log P(the phones with m unknown phones in
  the gap) - log P(the phones), where an unknown phone's probability in a frame is the frame's whole phone mass
  (any phone). High: something was said there that the text does not have.

On the verification benchmark's train cases (speaker-disjoint CV, docs/verification.md) these lifted the miscue
detectors' mean recall at the shipped false-flag budget and word share from 0.601 to 0.664.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .phoneset import PHONE_INDEX, split_stress

INSERTED_PHONES = (1, 2, 3)  # lengths of the unknown stretch tried in each gap
GAIN_CLIP = 100.0  # nats; an edit the frames cannot hold at all (too few frames) has gain -inf, clipped here
LOG_FLOOR = 1e-8
# Gains where they were not computed (a word of a window with more than MAX_WORDS words; the gap between two
# windows; the gap after the last word, which no detector feature reads). Rough typical values set before the
# evidence was gathered; the medians over the 1,043 words of untouched train readings in that evidence turned out
# -7.1, -16.1 and -0.8. The shipped detectors were trained with these, so they stay until the next retraining.
SKIP_UNKNOWN, REPEAT_UNKNOWN, INSERT_UNKNOWN = -9.0, -14.0, -3.0
MAX_WORDS = 200  # per window (Whisper's windows are at most 30 s: far fewer words in practice)
CONTEXT_WORDS = 4  # words either side of an edit over whose frames it is compared with the text
MARGIN_S = 0.3  # seconds added either side of a block's approximate span


@dataclass(frozen=True)
class PhoneGains:
    """Per reference word (n_words,), nats; insert[k] is the gap after word k (the last word's is unknown)."""

    skip: tuple[float, ...]
    repeat: tuple[float, ...]
    insert: tuple[float, ...]

    @classmethod
    def unknown(cls, n_words: int) -> "PhoneGains":
        return cls((SKIP_UNKNOWN,) * n_words, (REPEAT_UNKNOWN,) * n_words, (INSERT_UNKNOWN,) * n_words)


def ctc_log_probs(phone: np.ndarray, blank: np.ndarray, other: np.ndarray) -> np.ndarray:
    """(T, 41) log-probabilities for the CTC forward pass: column 0 blank (with the recogniser's word-boundary and
    unmapped tokens, which no ARPAbet sequence can take), 1..39 the ARPAbet phones (phoneset.PHONES order), 40 the
    unknown phone (the frame's total phone mass). phone: (T, 39), blank and other: (T,), probabilities."""
    probs = np.concatenate([(blank + other)[:, None], phone, phone.sum(axis=1, keepdims=True)], axis=1)
    return np.log(np.clip(probs, LOG_FLOOR, 1.0))


def phone_ids(reference: list[tuple[str, ...]]) -> list[list[int]]:
    """Per word, its phones as CTC label ids (1..39, stress dropped). Raises ValueError on an unknown phone."""
    return [[PHONE_INDEX[split_stress(p)[0]] + 1 for p in word] for word in reference]


def gains(log_probs: np.ndarray, words: list[list[int]], times: list[tuple[float, float]] | None = None,
          frame_seconds: float = 0.02) -> PhoneGains:
    """The three gains for every word of `words` (label ids per word) given the frames `log_probs` (T, 41).

    Each word's edits are compared with the text over a block of CONTEXT_WORDS words either side of it only (an
    edit changes the CTC paths near it, and the cost then grows linearly with the text): times (per word, its
    approximate start and end in seconds from the first frame; from Whisper's word timestamps) place the block's
    frames, MARGIN_S wider; a block reaching the first or last word extends to the first or last frame. Without
    times every block is the whole text over all frames."""
    n = len(words)
    if n == 0:
        return PhoneGains((), (), ())
    unknown, total = log_probs.shape[1] - 1, len(log_probs)
    sequences, spans = [], []
    for k in range(n):
        lo, hi = _block_words(k, n, times)
        block, j = words[lo:hi], k - lo
        edits = [_without(block, j), _with(block, j, block[j])]
        edits += [_with(block, j, [unknown] * m) for m in INSERTED_PHONES] if k < n - 1 else []
        text = [t for w in block for t in w]
        sequences += [text] + edits
        spans += [_block_frames(lo, hi, n, times, total, len(text), frame_seconds)] * (1 + len(edits))
    logp = _sequence_log_likelihoods(log_probs, sequences, spans)
    skip, repeat, insert, at = [], [], [], 0
    for k in range(n):
        count = 3 + len(INSERTED_PHONES) if k < n - 1 else 3
        gain = np.clip(logp[at + 1:at + count] - logp[at], -GAIN_CLIP, GAIN_CLIP)
        skip.append(gain[0])
        repeat.append(gain[1])
        insert.append(gain[2:].max() if k < n - 1 else INSERT_UNKNOWN)
        at += count
    return PhoneGains(_floats(skip), _floats(repeat), _floats(insert))


def sequence_log_likelihoods(log_probs: np.ndarray, sequences: list[list[int]]) -> np.ndarray:
    """(len(sequences),) log P(sequence | all frames of `log_probs` (T, 41)) by the CTC forward algorithm, nats
    (label ids as `phone_ids` gives them, flattened per sequence); -1e6 where the frames are too few."""
    return _sequence_log_likelihoods(log_probs, sequences, [(0, len(log_probs))] * len(sequences))


def replace_gains(log_probs: np.ndarray, words: list[list[int]], others: dict[int, list[int]],
                  times: list[tuple[float, float]] | None = None, frame_seconds: float = 0.02) -> dict[int, float]:
    """Per word k of `others`: log P(text with word k read as others[k]) - log P(text), nats, over the same block
    as `gains` (label ids as `phone_ids` gives them). Positive: the recogniser, which has no language model, hears
    the other word there rather than the text's."""
    n, total = len(words), len(log_probs)
    sequences, spans = [], []
    for k, other in others.items():
        lo, hi = _block_words(k, n, times)
        block = words[lo:hi]
        text = [t for w in block for t in w]
        sequences += [text, [t for j, w in enumerate(block) for t in (other if j == k - lo else w)]]
        spans += [_block_frames(lo, hi, n, times, total, len(text), frame_seconds)] * 2
    if not sequences:
        return {}
    logp = _sequence_log_likelihoods(log_probs, sequences, spans)
    return {k: round(float(np.clip(logp[2 * j + 1] - logp[2 * j], -GAIN_CLIP, GAIN_CLIP)), 3)
            for j, k in enumerate(others)}


def window_gains(log_probs: np.ndarray, words: list[list[int]], owner: list[int],
                 windows: list[tuple[float, float]], times: list[tuple[float, float]],
                 frame_seconds: float) -> PhoneGains:
    """`gains` per verification window (owner[i]: the window word i is read in), over that window's frames; times:
    per word, its approximate span in seconds from the recording's start. The gap after a window's last word, and
    the words of a window of more than MAX_WORDS words, get the unknown values."""
    result = PhoneGains.unknown(len(words))
    skip, repeat, insert = (list(v) for v in (result.skip, result.repeat, result.insert))
    for mine, frames, local in _per_window(log_probs, owner, windows, times, frame_seconds):
        found = gains(frames, [words[i] for i in mine], local, frame_seconds)
        for j, i in enumerate(mine):
            skip[i], repeat[i], insert[i] = found.skip[j], found.repeat[j], found.insert[j]
    return PhoneGains(tuple(skip), tuple(repeat), tuple(insert))


def text_lpr(log_probs: np.ndarray, words: list[list[int]], owner: list[int], windows: list[tuple[float, float]],
             frame_seconds: float) -> float | None:
    """The text's log posterior ratio per phone under the recogniser, nats (about 0 or below): per window,
    log P(its words' phones | its frames) (CTC forward) minus the log-probability of the frames' best free path
    (each frame's likeliest token, no text), summed over windows and divided by their phones. Near 0: the audio
    is this text as the recogniser hears it, accent and all; another text's phones cost several nats each (dev
    readings -0.1 to -3.1, the same recordings against another utterance's text -3.3 to -11.7). None where it
    cannot be measured: no window with words (or only windows of more than MAX_WORDS words), or a window with
    more phones than its frames can hold."""
    total, phones = 0.0, 0
    for mine, frames, _ in _per_window(log_probs, owner, windows, [(0.0, 0.0)] * len(owner), frame_seconds):
        sequence = [t for i in mine for t in words[i]]
        text = float(sequence_log_likelihoods(frames, [sequence])[0])
        if text <= -1e5:
            return None
        total += text - float(frames[:, :-1].max(axis=1).sum())  # the unknown column is no token of a free path
        phones += len(sequence)
    return round(total / phones, 3) if phones else None


def window_replace_gains(log_probs: np.ndarray, words: list[list[int]], others: dict[int, list[int]],
                         owner: list[int], windows: list[tuple[float, float]], times: list[tuple[float, float]],
                         frame_seconds: float) -> dict[int, float]:
    """`replace_gains` per verification window, as `window_gains` places them (words of an over-long window: none)."""
    found: dict[int, float] = {}
    for mine, frames, local in _per_window(log_probs, owner, windows, times, frame_seconds):
        inside = {mine.index(k): other for k, other in others.items() if k in mine}
        if inside:
            local_gains = replace_gains(frames, [words[i] for i in mine], inside, local, frame_seconds)
            found.update({mine[j]: g for j, g in local_gains.items()})
    return found


def _per_window(log_probs: np.ndarray, owner: list[int], windows: list[tuple[float, float]],
                times: list[tuple[float, float]], frame_seconds: float):
    """Per window with 1..MAX_WORDS words: (its word indices, its frames, their times from its first frame)."""
    for k, (start, end) in enumerate(windows):
        mine = [i for i in range(len(owner)) if owner[i] == k]
        if not mine or len(mine) > MAX_WORDS:
            continue
        first = min(int(start / frame_seconds), len(log_probs) - 1)
        frames = log_probs[first:max(first + 1, int(np.ceil(end / frame_seconds)))]
        yield mine, frames, [(times[i][0] - first * frame_seconds, times[i][1] - first * frame_seconds) for i in mine]


def _block_words(k: int, n: int, times: list[tuple[float, float]] | None,
                 context: int = CONTEXT_WORDS) -> tuple[int, int]:
    """Words [lo, hi) of word k's block: `context` words either side of it, or the whole text without times."""
    return (0, n) if times is None else (max(0, k - context), min(n, k + context + 1))


def _block_frames(lo: int, hi: int, n: int, times: list[tuple[float, float]] | None, total: int, labels: int,
                  frame_seconds: float) -> tuple[int, int]:
    """Frames [first, last) of the block of words lo..hi - 1: its approximate span widened by MARGIN_S, to the
    edge at the text's first and last word, and to at least two frames per label where the span is too short for
    the text (times from a transcription that missed those words)."""
    if times is None:
        return 0, total
    first = 0 if lo == 0 else int(np.clip((times[lo][0] - MARGIN_S) / frame_seconds, 0, total - 1))
    last = total if hi == n else int(np.clip(np.ceil((times[hi - 1][1] + MARGIN_S) / frame_seconds), first + 1, total))
    short = min(total, 2 * labels + 2) - (last - first)
    if short > 0:
        first = max(0, first - (short + 1) // 2)
        last = min(total, max(last + short // 2, first + 2 * labels + 2))
    return first, last


def _without(words: list[list[int]], k: int) -> list[int]:
    return [t for j, w in enumerate(words) if j != k for t in w]


def _with(words: list[list[int]], k: int, extra: list[int]) -> list[int]:
    """The phones with `extra` after word k."""
    return [t for j, w in enumerate(words) for t in (w + extra if j == k else w)]


def _sequence_log_likelihoods(log_probs: np.ndarray, sequences: list[list[int]],
                              spans: list[tuple[int, int]]) -> np.ndarray:
    """(len(sequences),) log P(sequence | frames first..last) by the CTC forward algorithm; -1e6 where the frames
    are too few for the sequence."""
    import torch

    longest = max(last - first for first, last in spans)
    batch = np.zeros((longest, len(sequences), log_probs.shape[1]), np.float32)
    for b, (first, last) in enumerate(spans):
        batch[:last - first, b] = log_probs[first:last]
    batch = torch.from_numpy(batch)
    targets = torch.as_tensor([t for s in sequences for t in s], dtype=torch.long)
    lengths = torch.as_tensor([len(s) for s in sequences], dtype=torch.long)
    inputs = torch.as_tensor([last - first for first, last in spans], dtype=torch.long)
    with torch.no_grad():
        loss = torch.nn.functional.ctc_loss(batch, targets, inputs, lengths, blank=0, reduction="none")
    return np.maximum(-loss.double().numpy(), -1e6)  # impossible sequences compare as equally impossible


def _floats(values) -> tuple[float, ...]:
    return tuple(round(float(v), 3) for v in values)


# Words either side of a phone edit over whose frames it is compared with the text. Narrower blocks gave weaker
# evidence in a probe on dev's speaker folds (docs/scorer.md, "Segmentation-free phone evidence")
PHONE_CONTEXT_WORDS = CONTEXT_WORDS
HEARD_N_BEST = 3


@dataclass(frozen=True)
class PhoneEditGains:
    """Per canonical phone of the text (n_phones,), in text order, nats, under hama's CTC phone recogniser (a
    segmentation-free GOP, as GOP-SF computes it: no phone boundary is needed, so the recogniser's lag does not matter):

    - substitute[i]: max over the other 38 phones s of log P(the phones with phone i read as s) - log P(the phones);
      heard[i] is that s (phoneset.PHONES index). High: another phone was said there.
    - delete[i]: log P(the phones without phone i) - log P(the phones). High: the phone was not said.
    - nbest[i]: the HEARD_N_BEST likeliest phones at position i, the canonical one among the candidates, as
      (PHONES index, probability), best first: with equal priors, P(x | the audio, the rest of the text) is the
      softmax over x of log P(the phones with phone i read as x)."""

    substitute: tuple[float, ...]
    heard: tuple[int, ...]
    delete: tuple[float, ...]
    nbest: tuple[tuple[tuple[int, float], ...], ...] = ()


def phone_edit_gains(log_probs: np.ndarray, words: list[list[int]], times: list[tuple[float, float]] | None = None,
                     frame_seconds: float = 0.02) -> PhoneEditGains:
    """Substitution and deletion gains of every phone of `words` (CTC label ids per word) given the frames
    `log_probs` (T, 41) (`ctc_log_probs`). Each word's edits are compared over the frames of the word and
    PHONE_CONTEXT_WORDS words either side (times: per word, its approximate (start, end) in seconds from the first
    frame, e.g. the forced alignment's); without times over all frames. (Trying as substitutes only the phones
    with some probability in the block's frames saved about a tenth of the time: not worth the approximation.)"""
    n, found = len(words), []
    for k in range(n):
        lo, hi = _block_words(k, n, times, PHONE_CONTEXT_WORDS)
        text_length = sum(len(w) for w in words[lo:hi])
        span = _block_frames(lo, hi, n, times, len(log_probs), text_length, frame_seconds)
        found += _word_edits(log_probs, span, words[lo:hi], k - lo)
    substitute, heard, delete, nbest = (list(v) for v in zip(*found)) if found else ([], [], [], [])
    return PhoneEditGains(_floats(substitute), tuple(heard), _floats(delete), tuple(nbest))


def _word_edits(log_probs: np.ndarray, span: tuple[int, int], block: list[list[int]], j: int) -> list[tuple]:
    """(substitution gain, best substitute's PHONES index, deletion gain, n-best) for each phone of block[j]."""
    before = [t for w in block[:j] for t in w]
    after = [t for w in block[j + 1:] for t in w]
    word, candidates = block[j], range(1, log_probs.shape[1] - 1)  # phone ids; the last column is the unknown phone
    sequences, tried = [before + word + after], []
    for i, phone in enumerate(word):
        others = [s for s in candidates if s != phone]
        sequences += [before + word[:i] + [s] + word[i + 1:] + after for s in others]
        sequences.append(before + word[:i] + word[i + 1:] + after)
        tried.append(others)
    logp = _sequence_log_likelihoods(log_probs, sequences, [span] * len(sequences))
    text = before + word + after
    out, at = [], 1
    for i, (phone, others) in enumerate(zip(word, tried)):
        deleted = logp[at + len(others)]
        edits = logp[at:at + len(others) + 1] - _reference(logp[0], deleted, text, len(before) + i)
        at += len(others) + 1
        subs = np.clip(edits[:-1], -GAIN_CLIP, GAIN_CLIP)
        best = int(np.argmax(subs))
        out.append((subs[best], others[best] - 1, np.clip(edits[-1], -GAIN_CLIP, GAIN_CLIP),
                    _posterior_nbest([phone - 1] + [s - 1 for s in others], np.concatenate([[0.0], subs]))))
    return out


def _reference(text: float, deleted: float, phones: list[int], i: int) -> float:
    """The log-likelihood the edits of phones[i] are measured against: the text's, or, where phones[i] repeats its
    neighbour ("bus stops", "big game"), the better of the text's and the text's with the two said as one. Read
    together, as connected speech runs them, the pair leaves one CTC spike where the text asks for two with a
    blank between; without this the spike's other phone wins a confident but false "heard"."""
    doubled = (i > 0 and phones[i - 1] == phones[i]) or (i + 1 < len(phones) and phones[i + 1] == phones[i])
    return max(text, deleted) if doubled else text


def _posterior_nbest(phones: list[int], log_ratios: np.ndarray) -> tuple[tuple[int, float], ...]:
    """The HEARD_N_BEST likeliest (phone, probability) from log-likelihood ratios against one reference."""
    probs = np.exp(log_ratios - log_ratios.max())
    probs /= probs.sum()
    order = np.argsort(-probs, kind="stable")[:HEARD_N_BEST]
    return tuple((int(phones[j]), round(float(probs[j]), 4)) for j in order)
