"""The shipped default model through the one-call API and the `assess` command."""
import json
from pathlib import Path

import numpy as np
import pytest

from orthoepy.encoder.audio import AudioError
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.lexicon import TextError
from orthoepy.encoder.scorer.pipeline import ModelDirectoryError
from orthoepy.fusion.assessor import DEFAULT_MODEL_DIR, Assessor
from orthoepy.fusion.cli import main


@pytest.fixture(scope="module")
def assessor() -> Assessor:
    return Assessor.from_pretrained(rationale="rubric")


def test_shipped_model_is_complete():
    names = {p.name for p in DEFAULT_MODEL_DIR.iterdir()}
    assert {"model.pt", "config.json", "scorer.onnx", "calibration.json", "phone_evidence.json", "README.md"} <= names
    assert sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir()) < 30 * 2**20


def test_assess_a_fixture_utterance(assessor, fixture_dir):
    utt = load_corpus(fixture_dir, "test")[0]
    result = assessor.assess(utt.audio_path, utt.text)
    assert [w.text for w in result.words] == [w.text for w in utt.words]
    # CMUdict (used without a corpus lexicon) marks stress differently from the corpus: compare base phones
    assert [p.phone.rstrip("012") for w in result.words for p in w.phones] == [p.base for p in utt.canonical_phones]
    assert set(result.sentence) == {"accuracy", "completeness", "fluency", "prosodic", "total"}
    assert all(0 <= v <= 10 for v in result.sentence.values())
    phones = [p for w in result.words for p in w.phones]
    assert all(0 <= p.score <= 2 and p.end > p.start for p in phones)
    assert json.loads(result.to_json())["text"] == utt.text


def test_scores_move_with_the_input(assessor, fixture_dir):
    """A well-read and a poorly-read utterance must not get the same sentence total (a known GOPT complaint)."""
    utts = sorted(load_corpus(fixture_dir, "test"), key=lambda u: u.sentence.total)
    low, high = (assessor.assess(u.audio_path, u.text).sentence["total"] for u in (utts[0], utts[-1]))
    assert high - low > 1.0


def test_array_input_and_bad_input(assessor, fixture_dir):
    utt = load_corpus(fixture_dir, "test")[0]
    import soundfile

    samples, rate = soundfile.read(utt.audio_path)
    from_array = assessor.assess(samples, utt.text, sample_rate=rate)
    from_path = assessor.assess(utt.audio_path, utt.text)
    np.testing.assert_allclose(from_array.sentence["total"], from_path.sentence["total"], atol=1e-3)
    with pytest.raises(AudioError):
        assessor.assess(np.zeros(16000), utt.text, sample_rate=16000)
    with pytest.raises(TextError):
        assessor.assess(utt.audio_path, "!!!")


def test_missing_model_directory(tmp_path):
    with pytest.raises(ModelDirectoryError, match="not found"):
        Assessor.from_pretrained(tmp_path / "nope")


def test_assess_command(capsys):
    assert main(["assess", "--demo", "--json", "--rationale", "rubric"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["words"][1]["text"] == "WEATHER" and "total" in result["sentence"]
    assert main(["assess", "--demo", "--rationale", "rubric"]) == 0
    assert "sentence: accuracy" in capsys.readouterr().out


def test_assess_many_keeps_order(assessor, fixture_dir):
    utts = load_corpus(fixture_dir, "test")[:2]
    results = assessor.assess_many([(u.audio_path, u.text) for u in utts], progress=False)
    assert [r.text for r in results] == [u.text for u in utts]


def test_scores_of_the_words_read_are_spread_over_the_whole_text():
    import numpy as np

    from orthoepy.encoder.features.frontend import PhoneFeatures
    from orthoepy.encoder.features.records import FeatureBlock
    from orthoepy.encoder.phoneset import canonical_phones
    from orthoepy.encoder.scorer.pipeline import ScoredUtterance
    from orthoepy.fusion.assessor import read_words, spread_scores

    phones = canonical_phones([["AY1"], ["TH", "IH1", "NG", "K"], ["S", "OW1"]])
    n = len(phones)
    features = PhoneFeatures(phones, np.arange(n) * 0.1, np.arange(n) * 0.1 + 0.1, False, "",
                             {"g": FeatureBlock(("x",), np.arange(n, dtype=np.float32)[:, None])}, None, None, 1.0)
    kept = features.select_words([0, 2])  # THINK was not read
    assert [p.symbol for p in kept.phones] == ["AY1", "S", "OW1"] and [p.word_index for p in kept.phones] == [0, 1, 1]
    assert kept.blocks["g"].values[:, 0].tolist() == [0.0, 5.0, 6.0]
    scored = ScoredUtterance("u", np.array([1.9, 1.8, 1.7]), {"accuracy": np.array([9.0, 8.0])}, {"total": 7.0}, None)
    full = spread_scores(scored, features, [0, 2])
    assert full.phone.tolist() == pytest.approx([1.9, 0, 0, 0, 0, 1.8, 1.7])
    assert full.word["accuracy"].tolist() == [9.0, 0.0, 8.0] and full.sentence == {"total": 7.0}
    assert read_words(None, 3) == [0, 1, 2]


def test_warm_up_assesses_the_bundled_sample_and_reads_a_number(monkeypatch):
    from orthoepy.encoder.lexicon import Lexicon

    calls = []
    warm = Assessor.__new__(Assessor)  # warm_up needs only assess and the lexicon
    warm.lexicon = Lexicon()
    monkeypatch.setattr(warm, "assess", lambda audio, text: calls.append((Path(audio), text)), raising=False)
    read = []
    monkeypatch.setattr(warm.lexicon, "readings", lambda text: read.append(text), raising=False)
    warm.warm_up()
    (audio, text), = calls
    assert audio.is_file() and audio.suffix == ".flac" and text.strip()
    assert any(ch.isdigit() for ch in read[0])
