"""GOPT-style LPP/LPR and heard n-best on crafted posterior matrices."""
import numpy as np
import pytest

from orthoepy.encoder.features import gop
from orthoepy.encoder.phoneset import PHONE_INDEX

SIL = len(gop.CLASS_LABELS) - 1


def _posteriors(frame_classes, peak=0.9):
    """(T, 40) log-posteriors: `peak` on each frame's class, the rest spread evenly."""
    n = len(gop.CLASS_LABELS)
    probs = np.full((len(frame_classes), n), (1 - peak) / (n - 1))
    probs[np.arange(len(frame_classes)), frame_classes] = peak
    return np.log(probs)


def test_lpp_and_lpr_values():
    aa, b = PHONE_INDEX["AA"], PHONE_INDEX["B"]
    log_post = _posteriors([aa, aa, b, b])
    vector = gop.gop_vector(log_post, aa, 0, 4)
    low = np.log(0.1 / 39)
    assert vector.shape == (len(gop.CLASS_LABELS) + 1,)
    np.testing.assert_allclose(vector[0], (np.log(0.9) + low) / 2, rtol=1e-6)  # LPP: half the frames are AA
    assert vector[1 + aa] == 0.0  # against itself
    np.testing.assert_allclose(vector[1 + b], 0.0, atol=1e-6)  # B as likely as AA over the segment
    np.testing.assert_allclose(vector[1 + SIL], (np.log(0.9) + low) / 2 - low, rtol=1e-6)
    assert gop.gop_vector(log_post, aa, 0, 2)[0] > gop.gop_vector(log_post, aa, 2, 4)[0]


def test_gop_matrix_shape_and_floor():
    log_post = np.full((5, 40), -np.inf)
    log_post[:, 0] = 0.0
    out = gop.gop_matrix(log_post, [(0, 0, 2), (3, 2, 5)])
    assert out.shape == (2, 41) and np.isfinite(out).all()
    assert out[1, 0] == gop.LOG_FLOOR


def test_heard_phone_needs_the_right_lag():
    """The recogniser reports each phone 2 frames late: only lag_frames=2 hears the canonical phones."""
    canonical = ["AA", "B", "S"]
    starts = [2, 5, 8]  # three 3-frame phones after 2 silent frames
    truth = [SIL] * 2 + [PHONE_INDEX[p] for p in canonical for _ in range(3)]
    log_post = _posteriors([SIL, SIL] + truth)  # the same sequence, 2 frames later
    for lag, expected in ((0, ["SIL", "AA", "B"]), (2, canonical)):
        heard = [gop.heard_nbest(log_post, s, s + 3, lag_frames=lag)[0][0] for s in starts]
        assert heard == expected, lag
    top3 = gop.heard_nbest(log_post, 5, 8, lag_frames=2)
    assert [label for label, _ in top3][0] == "B" and len(top3) == 3
    assert top3[0][1] == pytest.approx(0.9) and top3[1][1] <= top3[0][1]


def test_segments_are_clipped_and_checked():
    assert gop.segment_slice(8, 12, 10, lag_frames=2) == slice(9, 10)  # never empty
    assert gop.segment_slice(0, 3, 10, lag_frames=-2) == slice(0, 1)
    with pytest.raises(ValueError, match="ends before"):
        gop.segment_slice(4, 2, 10)
    with pytest.raises(ValueError, match="outside"):
        gop.gop_vector(np.zeros((3, 40)), 40, 0, 1)
    with pytest.raises(ValueError, match="labels"):
        gop.heard_nbest(np.zeros((3, 5)), 0, 1)
