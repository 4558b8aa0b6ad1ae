"""Property-based robustness: random audio, text and recordings give a valid result or the documented error.

The contract: `load_audio` returns valid 16 kHz audio or raises AudioError; `Lexicon.pronounce` returns ARPAbet
or raises TextError; `Assessor.assess` returns an in-range, JSON-serialisable Assessment or raises one of the
two; a broken model directory raises ModelDirectoryError. Nothing else may escape (the service turns anything
else into a 500).
"""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orthoepy.encoder.verification import NoSpeechError
from orthoepy.encoder.audio import MAX_DURATION_S, MIN_DURATION_S, SAMPLE_RATE, Audio, AudioError, load_audio
from orthoepy.encoder.lexicon import Lexicon, Pronunciation, TextError
from orthoepy.encoder.phoneset import PHONES, split_stress
from orthoepy.encoder.scorer.pipeline import ModelDirectoryError
from orthoepy.fusion.assessor import DEFAULT_MODEL_DIR, Assessment, Assessor

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECIALS = {"none": None, "nan": np.nan, "inf": np.inf, "-inf": -np.inf}


# ---------------------------------------------------------------------------------------------- audio arrays

@st.composite
def audio_arrays(draw, max_seconds: float = 2.0):
    """(array, rate, facts): random length, rate, dtype, amplitude, NaN/inf, mono/stereo (either layout)."""
    rate = draw(st.integers(8_000, 48_000))
    frames = int(draw(st.floats(0.0, max_seconds)) * rate)
    dtype = draw(st.sampled_from(["int16", "float32", "float64"]))
    amplitude = draw(st.sampled_from([0.0, 1e-6, 1e-3, 0.1, 0.9, 1.0] + ([4.0, 1e40] if dtype == "float64" else
                                                                         [4.0] if dtype == "float32" else [])))
    special = draw(st.sampled_from(list(SPECIALS))) if dtype != "int16" else "none"
    channels = draw(st.sampled_from([1, 2]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    samples = rng.uniform(-1.0, 1.0, (frames, channels)) * amplitude
    if frames and amplitude:
        samples[rng.integers(frames)] = amplitude  # the peak is the amplitude
    if dtype == "int16":
        samples = np.clip(np.round(samples * 32767), -32768, 32767)
    if SPECIALS[special] is not None and frames:
        samples[rng.integers(frames, size=draw(st.integers(1, 5))), rng.integers(channels)] = SPECIALS[special]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 1e40 -> float32 overflows to inf on purpose
        array = samples.astype(dtype)
    channels_first = channels == 2 and frames > 2 and draw(st.booleans())
    if channels == 1 and draw(st.booleans()):
        array = array[:, 0]
    elif channels_first:
        array = np.ascontiguousarray(array.T)
    peak = float(np.max(np.abs(array))) / (32768 if dtype == "int16" else 1) if array.size else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        finite = bool(np.all(np.isfinite(array.astype(np.float32))))  # as load_audio sees it: float32
    facts = {"seconds": frames / rate, "finite": finite, "peak": peak}
    return array, rate, facts


def _check_valid_audio(audio: Audio) -> None:
    assert isinstance(audio, Audio)
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.ndim == 1 and audio.samples.dtype == np.float32
    assert np.all(np.isfinite(audio.samples)) and float(np.max(np.abs(audio.samples))) <= 1.0
    assert MIN_DURATION_S <= audio.duration <= MAX_DURATION_S


@FAST
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # 1e40 -> float32 overflow
@given(audio_arrays())
def test_random_arrays_give_valid_audio_or_audio_error(case):
    array, rate, facts = case
    try:
        audio = load_audio(array, sample_rate=rate)
    except AudioError as err:
        assert str(err)  # a message a user can act on
        # a clearly valid recording must not be rejected
        assert not (facts["finite"] and facts["peak"] >= 1e-3 and MIN_DURATION_S + 0.01 <= facts["seconds"]), err
        return
    _check_valid_audio(audio)
    assert facts["finite"], "NaN/inf input was accepted"
    assert abs(audio.duration - facts["seconds"]) < 0.01  # resampling keeps the duration


@settings(max_examples=15, deadline=None)
@given(st.integers(8_000, 48_000), st.sampled_from([0, 1, 2]))
def test_degenerate_shapes_give_audio_error(rate, frames):
    """0-2 frames in any layout, mono or stereo, channels-first or not: AudioError, never a crash."""
    for shape in [(frames,), (frames, 2), (2, frames), (frames, 1), (1, frames)]:
        with pytest.raises(AudioError), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            load_audio(np.full(shape, 0.5, np.float32), sample_rate=rate)


@pytest.mark.parametrize("shape", [(0, 2), (2, 0), (0, 1), (1, 0)])
def test_empty_2d_array_is_too_short(shape):
    with pytest.raises(AudioError, match="too short"), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        load_audio(np.zeros(shape, np.float32), sample_rate=SAMPLE_RATE)


# ---------------------------------------------------------------------------------------------- text

ARPABET = {p + s for p in PHONES for s in ("", "0", "1", "2")}


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon()


def _check_pronunciation(p: Pronunciation) -> None:
    assert isinstance(p, Pronunciation) and len(p.words) >= 1
    assert len(p.words) == len(p.phones) == len(p.sources)
    for word, phones in zip(p.words, p.phones):
        assert word and len(phones) >= 1, word
        assert set(phones) <= ARPABET, phones
        for phone in phones:
            split_stress(phone)


# Mostly-Latin text, so that many examples reach CMUdict / g2p, plus arbitrary unicode.
latin_ish = st.text(st.sampled_from(list("abcdefghijklmnopqrstuvwxyz ABCXYZ'-.,!?0123456789éüñ’\t")), max_size=40)


@FAST
@given(st.one_of(st.text(max_size=40), latin_ish))
def test_random_text_gives_arpabet_or_text_error(lexicon, text):
    try:
        pronunciation = lexicon.pronounce(text)
    except TextError as err:
        assert str(err)
        return
    _check_pronunciation(pronunciation)


@pytest.mark.parametrize("text", ["", "   ", "!!! ???", "\u4f60\u597d", "\u043f\u0440\u0438\u0432\u0435\u0442", "\U0001f600",
                                  "'''", "\u0301\u0301"])
def test_nothing_pronounceable_is_text_error(lexicon, text):
    with pytest.raises(TextError, match="no pronounceable English word"):
        lexicon.pronounce(text)


def test_huge_number_is_text_error_not_inflect_error(lexicon):
    with pytest.raises(TextError):
        lexicon.pronounce("1" + "0" * 40)


# ---------------------------------------------------------------------------------------------- the Assessor

@pytest.fixture(scope="module")
def assessor() -> Assessor:
    if not DEFAULT_MODEL_DIR.is_dir():
        pytest.skip(f"the shipped model {DEFAULT_MODEL_DIR} is absent")
    return Assessor.from_pretrained(rationale="rubric")


WORDS = ["the", "weather", "is", "nice", "today", "park", "zxqv", "42", "hello", "world"]
assess_texts = st.one_of(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
                         st.text(max_size=20))


def _check_assessment(result: Assessment, text: str) -> None:
    assert isinstance(result, Assessment) and result.text == text
    assert set(result.sentence) == {"accuracy", "completeness", "fluency", "prosodic", "total"}
    assert all(0 <= v <= 10 for v in result.sentence.values()), result.sentence
    assert result.words
    for word in result.words:
        assert all(0 <= s <= 10 for s in (word.accuracy, word.stress, word.total)), word
        assert word.phones
        for phone in word.phones:
            assert 0 <= phone.score <= 2 and phone.end >= phone.start >= 0, phone
            assert phone.phone in ARPABET
            assert phone.heard_probability is None or 0 <= phone.heard_probability <= 1
            if phone.heard is not None:  # the n-best list starts with the heard phone
                assert phone.heard_nbest[0] == {"phone": phone.heard, "probability": phone.heard_probability}
    n_phones = sum(len(w.phones) for w in result.words)
    assert n_phones == sum(len(p) for p in Lexicon().pronounce(text).phones)
    round_trip = json.loads(result.to_json())
    assert round_trip["text"] == text and len(round_trip["words"]) == len(result.words)


@SLOW
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@given(st.one_of(audio_arrays(max_seconds=2.5), audio_arrays(max_seconds=2.5).filter(lambda c: c[2]["finite"])),
       assess_texts)
def test_assessor_gives_a_valid_assessment_or_input_error(assessor, case, text):
    array, rate, _ = case
    try:
        result = assessor.assess(array, text, sample_rate=rate)
    except (AudioError, TextError) as err:
        assert str(err)
        return
    _check_assessment(result, text)


@SLOW
@given(st.floats(0.35, 2.5), st.integers(8_000, 48_000), st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))
def test_assessor_on_valid_noise_refuses_or_flags_everything(assessor, seconds, rate, words):
    """Valid-but-meaningless audio (noise) is refused as no speech, or every word is flagged and the total is ~0."""
    rng = np.random.default_rng(int(seconds * 1000) + rate)
    text = " ".join(words)
    try:
        result = assessor.assess(rng.uniform(-0.3, 0.3, int(seconds * rate)).astype(np.float32), text, sample_rate=rate)
    except NoSpeechError as err:
        assert "no speech" in str(err)
        return
    _check_assessment(result, text)
    assert result.sentence["total"] <= 1.0 and all(w.error_type != "None" for w in result.words)


# ---------------------------------------------------------------------------------------------- model directory

def _broken_copy(tmp_path: Path, name: str, content: bytes | None) -> Path:
    """A copy of the shipped model with one file replaced (content) or removed (None)."""
    if not DEFAULT_MODEL_DIR.is_dir():
        pytest.skip(f"the shipped model {DEFAULT_MODEL_DIR} is absent")
    directory = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, directory)
    if content is None:
        (directory / name).unlink()
    else:
        (directory / name).write_bytes(content)
    return directory


def _config_with(**changes) -> bytes:
    return json.dumps({**json.loads((DEFAULT_MODEL_DIR / "config.json").read_text()), **changes}).encode()


def _truncated(name: str, size: int = 1000) -> bytes:
    return (DEFAULT_MODEL_DIR / name).read_bytes()[:size]


def test_empty_model_directory(tmp_path):
    with pytest.raises(ModelDirectoryError, match="is missing"):
        Assessor.from_pretrained(tmp_path)


@pytest.mark.parametrize("name, content, message", [
    ("model.pt", None, "model.pt is missing"),
    ("config.json", None, "config.json is missing"),
    ("model.pt", lambda: _truncated("model.pt"), "corrupt"),
    ("config.json", lambda: _config_with(phone_feature_dim=10), "size mismatch"),
    ("config.json", lambda: b"{not json", "corrupt"),
    ("scorer.json", lambda: b"{}", "mdd_threshold"),
    ("scaler.npz", lambda: b"xx", "corrupt"),
    ("scorer.onnx", lambda: _truncated("scorer.onnx"), "corrupt"),
    ("handcrafted.json", lambda: b'{"a": 1}', "corrupt"),
    pytest.param("model.pt", lambda: b"", "corrupt", id="empty-model.pt-EOFError"),
    pytest.param("model.pt", lambda: b"not a checkpoint", "corrupt", id="garbage-model.pt-UnpicklingError"),
    pytest.param("config.json", lambda: b"{}", "corrupt", id="config-no-keys-TypeError"),
    pytest.param("config.json", lambda: b"[1]", "corrupt", id="config-list-AttributeError"),
    pytest.param("calibration.json", lambda: b"[]", "corrupt", id="calibration-list-TypeError"),
])
def test_broken_model_directory_is_model_directory_error(tmp_path, name, content, message):
    directory = _broken_copy(tmp_path, name, content() if content else None)
    with pytest.raises(ModelDirectoryError, match=message):
        Assessor.from_pretrained(directory)
