"""The phone-evidence fusion (encoder/scorer/phone_evidence.py) on synthetic scores and gains, and in `assess`."""
from __future__ import annotations

import json

import numpy as np
import pytest

from orthoepy.encoder.scorer.phone_evidence import (FEATURES, FILE, PhoneEvidenceError, PhoneEvidenceFusion,
                                                    design_matrix)


def synthetic(n: int = 3000, seed: int = 0):
    """Phones whose human score falls with the deletion gain, the more so the lower the network's score."""
    rng = np.random.default_rng(seed)
    score = rng.uniform(0, 2, n)
    substitute, delete = rng.normal(-4, 3, n), rng.normal(-4, 3, n)
    label = np.clip(score - 0.1 * (2 - score) * (delete + 4) + rng.normal(0, 0.1, n), 0, 2)
    return score, substitute, delete, label


def test_design_matrix_columns_and_clipping():
    X = design_matrix([1.5, 0.5], [2.0, -100.0], [40.0, -1.0])
    assert X.shape == (2, len(FEATURES))
    assert np.allclose(X[0], [1.5, 2.0, 30.0, 3.0, 45.0])
    assert X[1, 1] == -30.0  # gains are clipped to +-30 nats
    with pytest.raises(ValueError):
        design_matrix([1.0], [1.0, 2.0], [1.0])


def test_fusion_learns_the_gains_where_the_network_doubts():
    score, substitute, delete, label = synthetic()
    fusion = PhoneEvidenceFusion().fit(design_matrix(score, substitute, delete), label)
    fused = fusion.rescore(score, substitute, delete)
    assert np.corrcoef(fused, label)[0, 1] > np.corrcoef(score, label)[0, 1] + 0.02
    assert fused.min() >= 0 and fused.max() <= 2
    # at a low network score a high deletion gain lowers the phone; at 2 it hardly moves it
    low = fusion.rescore([0.8, 0.8], [-4, -4], [-8, 8])
    high = fusion.rescore([2.0, 2.0], [-4, -4], [-8, 8])
    assert low[0] - low[1] > 1.0 and abs(high[0] - high[1]) < (low[0] - low[1]) / 3


def test_fit_rejects_rows_of_another_shape():
    with pytest.raises(ValueError):
        PhoneEvidenceFusion().fit(np.zeros((10, 3)), np.zeros(10))


def test_save_and_load_give_identical_scores(tmp_path):
    score, substitute, delete, label = synthetic(500)
    fusion = PhoneEvidenceFusion().fit(design_matrix(score, substitute, delete), label)
    fusion.save(tmp_path, {"fitted_on": "synthetic"})
    loaded = PhoneEvidenceFusion.load(tmp_path)
    assert np.array_equal(loaded.rescore(score, substitute, delete), fusion.rescore(score, substitute, delete))
    assert json.loads((tmp_path / FILE).read_text())["report"] == {"fitted_on": "synthetic"}


def test_a_directory_without_the_file_has_no_fusion_and_a_bad_file_is_a_clear_error(tmp_path):
    assert PhoneEvidenceFusion.load(tmp_path) is None
    (tmp_path / FILE).write_text("{not json")
    with pytest.raises(PhoneEvidenceError, match="unreadable"):
        PhoneEvidenceFusion.load(tmp_path)
    (tmp_path / FILE).write_text(json.dumps({"features": ["score"], "coef": [1.0], "intercept": 0.0}))
    with pytest.raises(PhoneEvidenceError, match="differ"):
        PhoneEvidenceFusion.load(tmp_path)


def test_assess_fuses_the_network_phone_scores_with_the_recogniser_gains(fixture_dir):
    from orthoepy.encoder.audio import load_audio
    from orthoepy.encoder.corpus import load_corpus
    from orthoepy.encoder.phoneset import canonical_phones
    from orthoepy.fusion.assessor import Assessor

    assessor = Assessor.from_pretrained(rationale="none", verify=False)
    fusion = assessor.phone_evidence
    assert fusion is not None  # the shipped model has one
    utt = load_corpus(fixture_dir, "test")[0]
    fused = assessor.assess(utt.audio_path, utt.text)
    assessor.phone_evidence = None
    plain = assessor.assess(utt.audio_path, utt.text)
    clip = load_audio(utt.audio_path)
    features = assessor.frontend.extract(clip, canonical_phones([[p.phone for p in w.phones] for w in plain.words]))
    gains = assessor.edit_gains(clip, features)
    network = [p.score for w in plain.words for p in w.phones]
    expected = fusion.rescore(network, gains.substitute, gains.delete)
    got = [p.score for w in fused.words for p in w.phones]
    assert np.allclose(got, expected, atol=0.011)  # the response rounds to 0.01; the network's input is unrounded
    assert not np.allclose(got, network, atol=0.02)


def test_a_model_directory_with_a_broken_fusion_file_is_refused(tmp_path):
    from orthoepy.encoder.scorer.pipeline import ModelDirectoryError
    from orthoepy.fusion.assessor import DEFAULT_MODEL_DIR, Assessor

    for item in DEFAULT_MODEL_DIR.iterdir():
        if item.name != FILE:
            (tmp_path / item.name).symlink_to(item)
    (tmp_path / FILE).write_text("[]")
    with pytest.raises(ModelDirectoryError, match=FILE):
        Assessor.from_pretrained(tmp_path, rationale="none", verify=False)



def test_the_phones_of_words_not_read_have_nothing_heard():
    from orthoepy.encoder.phone_gains import PhoneEditGains
    from orthoepy.encoder.phoneset import PHONE_INDEX
    from orthoepy.fusion.assessor import Assessment, PhoneResult, WordResult, hear_phones

    def phone(symbol):
        return PhoneResult(symbol, 1.5, 0.0, 0.1, "AA", 0.5, False, [{"phone": "AA", "probability": 0.5}])

    words = [WordResult("CAT", 8, 10, 8, "None", [phone("K"), phone("AE1"), phone("T")]),
             WordResult("SAT", 0, 0, 0, "Omission", [phone("S"), phone("AE1"), phone("T")]),
             WordResult("ON", 8, 10, 8, "None", [phone("AA1"), phone("N")])]
    said = ["K", "AE", "T", "AA", "N"]  # the phones of the words read, in order
    nbest = tuple(((PHONE_INDEX[p], 0.9), (PHONE_INDEX["S"], 0.05)) for p in said)
    gains = PhoneEditGains((0.0,) * 5, (0,) * 5, (0.0,) * 5, nbest)
    assessment = Assessment("cat sat on", {}, words, False, "test")
    hear_phones(assessment, gains, [0, 2])
    assert [p.heard for w in assessment.words for p in w.phones] == ["K", "AE", "T", None, None, None, "AA", "N"]
    assert assessment.words[1].phones[0].heard_nbest == [] and assessment.words[1].phones[0].heard_probability is None
    assert assessment.words[2].phones[1].heard_nbest == [{"phone": "N", "probability": 0.9},
                                                         {"phone": "S", "probability": 0.05}]
