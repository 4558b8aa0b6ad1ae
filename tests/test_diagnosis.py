from orthoepy.fusion.diagnosis import WORD_ERROR_TYPES, word_error_type


def test_word_error_types():
    assert word_error_type([1.9, 2.0], 1.0, 9.5, 0.0) == "None"
    assert word_error_type([0.1, 0.3, 0.2], 1.0, 1.0, 0.0) == "Omission"
    assert word_error_type([1.9, 0.6, 1.8], 1.0, 7.0, 0.0) == "Mispronunciation"
    assert word_error_type([1.9, 1.8], 1.0, 5.0, 0.0) == "Mispronunciation"
    assert word_error_type([1.9, 1.8], 1.0, 9.0, 0.8) == "UnexpectedBreak"
    assert word_error_type([1.9, 0.2], 1.0, 4.0, 0.8) == "Mispronunciation"  # the word's own error comes first
    assert set(WORD_ERROR_TYPES) >= {"None", "Omission", "Mispronunciation", "UnexpectedBreak"}
