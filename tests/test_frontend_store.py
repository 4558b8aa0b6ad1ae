import json

import numpy as np
import pytest

from orthoepy.encoder.audio import from_array
from orthoepy.encoder.corpus import load_corpus
from orthoepy.encoder.features.frontend import FrontEnd, FrontEndConfig, FrontEndError, PhoneFeatures
from orthoepy.encoder.features.store import FeatureStore, extract_utterances
from orthoepy.encoder.phoneset import canonical_phones

from conftest import tone


@pytest.fixture(scope="module")
def full_frontend() -> FrontEnd:
    return FrontEnd(FrontEndConfig())


def test_config_validation_and_key():
    with pytest.raises(FrontEndError, match="unknown feature group"):
        FrontEndConfig(groups=("likelihood_gop", "mfcc"))
    assert FrontEndConfig().key() == FrontEndConfig().key()
    assert FrontEndConfig(groups=("prosody",)).key() != FrontEndConfig().key()


def test_groups_can_be_switched_off():
    frontend = FrontEnd(FrontEndConfig(groups=("prosody",), utterance_pool=False))
    phones = canonical_phones([["HH", "AH0"], ["L", "OW1"]])
    features = frontend.extract(from_array(tone(1.5), 16_000), phones)
    assert list(features.blocks) == ["prosody"] and features.utterance is None and features.heard is None
    assert features.phone_matrix().values.shape == (4, len(features.blocks["prosody"].names))
    assert set(features.timings) == {"alignment", "prosody"}


def test_empty_phone_list_is_an_error(full_frontend):
    with pytest.raises(FrontEndError, match="no canonical phones"):
        full_frontend.extract(from_array(tone(), 16_000), [])


def test_save_load_roundtrip(tmp_path, full_frontend):
    phones = canonical_phones([["HH", "AH0"], ["L", "OW1"]])
    features = full_frontend.extract(from_array(tone(1.5), 16_000), phones)
    features.save(tmp_path / "x.npz")
    loaded = PhoneFeatures.load(tmp_path / "x.npz")
    assert loaded.phones == features.phones and loaded.heard == features.heard
    for group, block in features.blocks.items():
        assert loaded.blocks[group].names == block.names
        np.testing.assert_array_equal(loaded.blocks[group].values, block.values)
    np.testing.assert_array_equal(loaded.utterance.values, features.utterance.values)


def test_fixture_store_shapes_cache_and_determinism(tmp_path, fixture_dir):
    utterances = load_corpus(fixture_dir, "test")[:3]
    manifest = extract_utterances(utterances, tmp_path / "out", nj=1, cache_dir=tmp_path / "cache", progress=False)
    assert manifest["utterances"] == [u.utt_id for u in utterances] and not manifest["failures"]
    store = FeatureStore(tmp_path / "out")
    for utt, (utt_id, feats) in zip(utterances, store):
        n = len(utt.canonical_phones)
        assert utt_id == utt.utt_id and len(feats.phones) == n and len(feats.heard) == n
        for group, dims in manifest["groups"].items():
            assert feats.blocks[group].values.shape == (n, dims)
            assert np.all(np.isfinite(feats.blocks[group].values))
        assert feats.utterance.values.shape == (1, manifest["utterance_features"]) and manifest["utterance_features"] >= 150
        assert np.all(np.isfinite(feats.utterance.values))
        assert np.all(feats.ends > feats.starts)

    cache_files = sorted((tmp_path / "cache").rglob("*.npz"))
    stamps = [f.stat().st_mtime_ns for f in cache_files]
    again = extract_utterances(utterances, tmp_path / "out", nj=1, cache_dir=tmp_path / "cache", progress=False)
    assert again == manifest
    assert [f.stat().st_mtime_ns for f in cache_files] == stamps  # a rerun reads the cache, writes nothing

    extract_utterances(utterances, tmp_path / "out2", nj=1, cache_dir=tmp_path / "cache2", progress=False)
    for utt in utterances:
        a = np.load(tmp_path / "out" / "utts" / f"{utt.utt_id}.npz")
        b = np.load(tmp_path / "out2" / "utts" / f"{utt.utt_id}.npz")
        for key in a.files:
            if key != "meta":  # meta holds wall-clock timings
                np.testing.assert_array_equal(a[key], b[key])


def test_unreadable_audio_is_reported_not_fatal(tmp_path, fixture_dir):
    good = load_corpus(fixture_dir, "test")[0]
    bad_path = tmp_path / "broken.flac"
    bad_path.write_bytes(b"not audio" * 100)
    bad = type(good)(**{**good.__dict__, "utt_id": "broken", "audio_path": bad_path})
    manifest = extract_utterances([good, bad], tmp_path / "out", FrontEndConfig(groups=("prosody",)), nj=1,
                                  cache_dir=tmp_path / "cache", progress=False)
    assert manifest["utterances"] == [good.utt_id]
    assert "not readable audio" in manifest["failures"]["broken"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == manifest


def test_store_without_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="orthoepy features"):
        FeatureStore(tmp_path)


def test_ray_engine_writes_the_same_features_as_the_local_engine(tmp_path, fixture_dir):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'orthoepy[ray]'); Ray engine untested")
    from threadpoolctl import threadpool_limits

    utterances = load_corpus(fixture_dir, "test")[:2]
    config = FrontEndConfig(groups=("likelihood_gop", "posterior_gop", "prosody"))
    with threadpool_limits(limits=1, user_api="blas"):  # as in each one-CPU actor
        local = extract_utterances(utterances, tmp_path / "local", config, nj=1, cache_dir=tmp_path / "c1", progress=False)
    remote = extract_utterances(utterances, tmp_path / "ray", config, nj=2, cache_dir=tmp_path / "c2",
                                progress=False, engine="ray")
    assert remote == local and not ray.is_initialized()  # a Ray it started is shut down
    for utt in utterances:
        a = np.load(tmp_path / "local" / "utts" / f"{utt.utt_id}.npz")
        b = np.load(tmp_path / "ray" / "utts" / f"{utt.utt_id}.npz")
        assert a.files == b.files
        for key in a.files:
            if key != "meta":
                np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(ValueError, match="unknown engine"):
        extract_utterances(utterances, tmp_path / "x", config, engine="spark")
