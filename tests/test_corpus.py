import json
import shutil

import pytest

from orthoepy.encoder.corpus import CorpusError, is_dev_speaker, load_corpus


def test_fixture_loads_typed_records(fixture_dir):
    utts = load_corpus(fixture_dir)
    assert len(utts) == 32
    first = utts[0]
    assert first.utt_id == "000360378" and first.speaker == "0036" and first.audio_path.exists()
    assert len(first.canonical_phones) == len(first.phone_accuracy)
    assert all(u.sentence.total is not None for u in utts)


def test_absent_fields_stay_none(tmp_path, fixture_dir):
    scores = json.loads((fixture_dir / "scores.json").read_text())
    utt_id = next(iter(scores))
    entry = scores[utt_id]
    for word in entry["words"]:
        for key in ("accuracy", "stress", "total"):
            word.pop(key, None)
    entry.pop("completeness")
    (tmp_path / "scores.json").write_text(json.dumps({utt_id: entry}))
    shutil.copy(fixture_dir / f"{utt_id}.flac", tmp_path)
    (utt,) = load_corpus(tmp_path)
    assert utt.sentence.completeness is None and utt.sentence.total == entry["total"]
    assert all(w.accuracy is None and w.stress is None and w.total is None for w in utt.words)


def test_dev_split_is_speaker_disjoint_and_deterministic(fixture_dir):
    utts = load_corpus(fixture_dir)
    dev = {u.speaker for u in utts if u.split == "dev"}
    train = {u.speaker for u in utts if u.split == "train"}
    assert dev and not dev & train
    assert [u.split for u in load_corpus(fixture_dir)] == [u.split for u in utts]
    assert all(is_dev_speaker(s) for s in dev) and not any(is_dev_speaker(s) for s in train)


def test_split_filter(fixture_dir):
    assert {u.split for u in load_corpus(fixture_dir, "test")} == {"test"}
    with pytest.raises(CorpusError, match="unknown split"):
        load_corpus(fixture_dir, "validation")


def test_missing_corpus_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SO762_DIR", raising=False)
    with pytest.raises(CorpusError, match="SO762_DIR"):
        load_corpus(None)
    with pytest.raises(CorpusError, match="not a speechocean762 directory"):
        load_corpus(tmp_path)


def test_malformed_entry(tmp_path):
    (tmp_path / "scores.json").write_text(json.dumps({"000010011": {"text": "HI", "split": "train", "words": [{"text": "HI", "phones": ["HH", "AY0"], "phones-accuracy": [2.0]}]}}))
    (tmp_path / "000010011.wav").write_bytes(b"")
    with pytest.raises(CorpusError, match="2 phones but 1 phone scores"):
        load_corpus(tmp_path)
