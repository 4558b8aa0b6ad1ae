"""GOPT-style goodness-of-pronunciation features from any frame-level phone posterior matrix.

Pure functions over a (T, C) matrix of frame log-posteriors (C classes, e.g. the 39 ARPAbet phones in
PHONES order plus silence, as `whisper_phone_recogniser` and `indomain_gop` produce) and aligned phone
segments given as frame ranges [start_frame, end_frame). Following GOPT (Gong et al., ICASSP 2022, "Transformer-
based multi-aspect multi-granularity non-native English speaker pronunciation assessment"):

- LPP(p) = mean over the segment's frames of log P(p | frame), p the canonical phone;
- LPR(p, q) = LPP(p) - mean log P(q | frame), for every class q;

and the "heard" n-best: the classes with the highest mean posterior inside the segment. A recogniser whose
evidence comes later than the aligner's boundaries (a CTC recogniser's spikes, a causal model) is corrected by
`lag_frames`: the segment is read `lag_frames` frames later.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..phoneset import PHONES

LOG_FLOOR = -30.0  # log-posteriors are floored here so that a zero probability stays finite
CLASS_LABELS: tuple[str, ...] = (*PHONES, "SIL")  # 39 phones + silence/outside, the recognisers' class order


def segment_slice(start_frame: int, end_frame: int, n_frames: int, lag_frames: int = 0) -> slice:
    """Frames [start_frame + lag, end_frame + lag) clipped to [0, n_frames), never empty.

    Raises ValueError for an empty matrix or a segment that ends before it starts.
    """
    if n_frames <= 0:
        raise ValueError("the posterior matrix has no frames")
    if end_frame < start_frame:
        raise ValueError(f"segment [{start_frame}, {end_frame}) ends before it starts")
    first = min(max(start_frame + lag_frames, 0), n_frames - 1)
    last = min(max(end_frame + lag_frames, first + 1), n_frames)
    return slice(first, last)


def gop_vector(log_post: np.ndarray, canonical: int, start_frame: int, end_frame: int,
               lag_frames: int = 0) -> np.ndarray:
    """[LPP, LPR against class 0, ..., LPR against class C-1] of one segment: shape (C + 1,), nats.

    log_post: (T, C) frame log-posteriors; canonical: the canonical phone's column. LPR against the canonical
    phone itself is 0 by construction (kept so that every phone has a fixed column).
    """
    _check(log_post, canonical)
    mean_lp = np.maximum(log_post[segment_slice(start_frame, end_frame, len(log_post), lag_frames)], LOG_FLOOR).mean(0)
    lpp = mean_lp[canonical]
    return np.concatenate([[lpp], lpp - mean_lp]).astype(np.float32)


def gop_matrix(log_post: np.ndarray, segments: Sequence[tuple[int, int, int]], lag_frames: int = 0) -> np.ndarray:
    """gop_vector of each (canonical, start_frame, end_frame) segment: shape (n_segments, C + 1)."""
    rows = [gop_vector(log_post, c, s, e, lag_frames) for c, s, e in segments]
    return np.asarray(rows, np.float32).reshape(len(rows), log_post.shape[1] + 1)


def heard_nbest(log_post: np.ndarray, start_frame: int, end_frame: int, n: int = 3, lag_frames: int = 0,
                labels: Sequence[str] = CLASS_LABELS) -> list[tuple[str, float]]:
    """The n classes with the highest mean posterior over the segment, best first, with that probability.

    log_post: (T, C) frame log-posteriors; labels: C class names (default: PHONES + "SIL").
    """
    if len(labels) != log_post.shape[1]:
        raise ValueError(f"{len(labels)} labels for {log_post.shape[1]} posterior columns")
    frames = segment_slice(start_frame, end_frame, len(log_post), lag_frames)
    mean_prob = np.exp(np.maximum(log_post[frames], LOG_FLOOR)).mean(0)
    best = np.argsort(-mean_prob, kind="stable")[:n]
    return [(labels[i], float(mean_prob[i])) for i in best]


def _check(log_post: np.ndarray, canonical: int) -> None:
    if log_post.ndim != 2:
        raise ValueError(f"expected (frames, classes) log-posteriors, got shape {log_post.shape}")
    if not 0 <= canonical < log_post.shape[1]:
        raise ValueError(f"canonical class {canonical} outside the {log_post.shape[1]} posterior columns")
