from orthoepy.fusion.diagnosis import WORD_ERROR_TYPES, word_error_type


def test_word_error_types():
    assert word_error_type([1.9, 2.0], 1.0, 9.5, 0.0) == "None"
    assert word_error_type([0.1, 0.3, 0.2], 1.0, 1.0, 0.0) == "Omission"
    assert word_error_type([1.9, 0.6, 1.8], 1.0, 7.0, 0.0) == "Mispronunciation"
    assert word_error_type([1.9, 1.8], 1.0, 5.0, 0.0) == "Mispronunciation"
    assert word_error_type([1.9, 1.8], 1.0, 9.0, 0.8) == "UnexpectedBreak"
    assert word_error_type([1.9, 0.2], 1.0, 4.0, 0.8) == "Mispronunciation"  # the word's own error comes first
    assert set(WORD_ERROR_TYPES) >= {"None", "Omission", "Mispronunciation", "UnexpectedBreak"}


def test_monotone_needs_a_narrow_pitch_range_on_enough_voiced_words():
    from orthoepy.fusion.diagnosis import MONOTONE_RANGE_ST, monotone

    assert monotone(1.0, 2.0, 6) and not monotone(MONOTONE_RANGE_ST + 0.5, 2.0, 6)
    assert not monotone(1.0, 0.3, 6)  # too little voicing to judge
    assert not monotone(1.0, 2.0, 2)  # nor a two-word text
    assert "Monotone" in WORD_ERROR_TYPES


def _flattened(samples, rate: int = 16_000):
    """The recording resynthesised (PSOLA, Praat through parselmouth) on a constant pitch at its median."""
    import numpy as np
    import parselmouth
    from parselmouth.praat import call

    manipulation = call(parselmouth.Sound(samples.astype(np.float64), rate), "To Manipulation", 0.01, 75, 500)
    tier = call(manipulation, "Extract pitch tier")
    median = call(tier, "Get mean (curve)", 0, 0)
    call(tier, "Formula", f"{median}")
    call([tier, manipulation], "Replace pitch tier")
    return call(manipulation, "Get resynthesis (overlap-add)").values[0].astype(np.float32)


def test_a_reading_resynthesised_on_one_pitch_is_monotone_and_the_recording_is_not(fixture_dir):
    import pytest

    from orthoepy.encoder.audio import load_audio
    from orthoepy.fusion.assessor import Assessor

    path = fixture_dir / "080680011.flac"  # I COULDN'T THINK OF SUCH A THING
    if not path.is_file():
        pytest.skip(f"fixture recording not found: {path}")
    assessor = Assessor.from_pretrained(rationale="rubric", verify=False)
    text = "I couldn't think of such a thing"
    recorded = assessor.assess(path, text)
    assert "Monotone" not in {w.error_type for w in recorded.words}
    flat = assessor.assess(_flattened(load_audio(path).samples), text, sample_rate=16_000)
    assert {w.error_type for w in flat.words} <= {"Monotone", "Mispronunciation", "Omission"}
    assert sum(w.error_type == "Monotone" for w in flat.words) >= 4
    assert "pitch stayed flat" in flat.rationale.text
