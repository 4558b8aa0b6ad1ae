import io

import numpy as np
import pytest
import soundfile

from orthoepy.encoder.audio import MAX_DURATION_S, SAMPLE_RATE, AudioError, load_audio

from conftest import tone


def _encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", None), ("OGG", "VORBIS"), ("MP3", None)])
def test_formats_decode_to_16k_mono(fmt, subtype):
    audio = load_audio(_encoded(tone(1.0, rate=44_100), 44_100, fmt, subtype))
    assert audio.sample_rate == SAMPLE_RATE
    assert audio.samples.ndim == 1 and audio.samples.dtype == np.float32
    assert abs(audio.duration - 1.0) < 0.06  # MP3 adds encoder padding


def test_resampling_keeps_the_pitch():
    audio = load_audio(tone(1.0, hz=440.0, rate=8_000), sample_rate=8_000)
    spectrum = np.abs(np.fft.rfft(audio.samples))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(audio.samples)
    assert abs(peak_hz - 440.0) < 2.0


def test_stereo_is_mixed_down_and_int_samples_scaled():
    stereo = np.stack([tone(), tone()], axis=1)
    assert load_audio(stereo, sample_rate=SAMPLE_RATE).samples.shape == (SAMPLE_RATE,)
    ints = (tone() * 32767).astype(np.int16)
    assert np.allclose(load_audio(ints, sample_rate=SAMPLE_RATE).samples, tone(), atol=1e-3)


def test_file_path(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, tone(), SAMPLE_RATE)
    assert abs(load_audio(path).duration - 1.0) < 1e-6


@pytest.mark.parametrize(
    "source,rate,message",
    [
        (b"", None, "empty"),
        (b"this is not audio at all" * 10, None, "not readable audio"),
        (tone(0.1), SAMPLE_RATE, "too short"),
        (tone(MAX_DURATION_S + 1), SAMPLE_RATE, "too long"),
        (np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE, "silent"),
        (np.full(SAMPLE_RATE, np.nan, np.float32), SAMPLE_RATE, "NaN"),
        (np.where(np.arange(SAMPLE_RATE) == 5, np.inf, tone()).astype(np.float32), SAMPLE_RATE, "infinite"),
        (tone(), None, "sample_rate"),
        (np.array(["a", "b"]), SAMPLE_RATE, "int or float"),
        (np.zeros((2, 2, 2)), SAMPLE_RATE, "1-D"),
    ],
)
def test_bad_input_gives_a_clear_error(source, rate, message):
    with pytest.raises(AudioError, match=message):
        load_audio(source, sample_rate=rate)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="is a folder, not an audio file"):
        load_audio(tmp_path)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty"):
        load_audio(tmp_path / "empty.wav")


def _speechlike(seconds: float = 1.0) -> np.ndarray:
    """A tone plus white noise: power across the whole band, as speech has (a pure tone has none above 4 kHz)."""
    rng = np.random.default_rng(0)
    return (0.6 * tone(seconds, hz=300.0) + rng.normal(0, 0.05, int(seconds * SAMPLE_RATE))).astype(np.float32)


def test_quality_warnings_name_a_low_rate_clipping_a_quiet_level_and_a_lost_high_band():
    import soxr

    from orthoepy.encoder.audio import quality_warnings

    clean = _speechlike()
    assert quality_warnings(load_audio(clean, sample_rate=SAMPLE_RATE)) == []
    (low_rate,) = quality_warnings(load_audio(_encoded(clean[::2], 8_000, "WAV"), None))
    assert "8 kHz" in low_rate
    loud = np.clip(clean * 8.0, -1.0, 1.0)  # driven into the rails
    (clipped,) = quality_warnings(load_audio(loud, sample_rate=SAMPLE_RATE))
    assert "clipped" in clipped and load_audio(loud, sample_rate=SAMPLE_RATE).clipped_share > 0.1
    (quiet,) = quality_warnings(load_audio(clean * 0.02, sample_rate=SAMPLE_RATE))
    assert "quiet" in quiet
    # 8 kHz audio that reached us resampled to 16 kHz: nothing above 4 kHz
    band_limited = soxr.resample(soxr.resample(clean, 16_000, 8_000), 8_000, 16_000).astype(np.float32)
    (telephone,) = quality_warnings(load_audio(band_limited, sample_rate=SAMPLE_RATE))
    assert "no sound above 4 kHz" in telephone
    # a handful of samples at full scale is not clipping
    peaks = clean.copy()
    peaks[::4000] = 1.0
    assert quality_warnings(load_audio(peaks, sample_rate=SAMPLE_RATE)) == []
