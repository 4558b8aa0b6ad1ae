"""History independence (issue 12, part 5): the same audio and text score the same whatever was assessed before.

pocketsphinx's live cepstral mean normalisation carried each decoder's running mean from one utterance into the
next; without `encoder.alignment.forget_history` these tests fail (a fluency of 9.0 became 8.92, phone-loop
scores moved by up to 8 nat).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from orthoepy.encoder.verification import NoSpeechError
from orthoepy.encoder.alignment import ForcedAligner
from orthoepy.encoder.audio import load_audio
from orthoepy.encoder.lexicon import Lexicon
from orthoepy.fusion.assessor import DEFAULT_MODEL_DIR, Assessor
from orthoepy.fusion.service import create_app

pytestmark = pytest.mark.fixture


@pytest.fixture(scope="module")
def utterances(fixture_dir):
    """(path, text) of the fixture utterances, in id order."""
    texts = json.loads((fixture_dir / "scores.json").read_text())
    return [(fixture_dir / f"{i}.flac", texts[i]["text"]) for i in sorted(texts)]


def _noise(seconds: float = 3.0) -> np.ndarray:
    return (0.3 * np.random.default_rng(0).standard_normal(int(16_000 * seconds))).astype(np.float32)


def _paragraph(utterances) -> tuple[np.ndarray, str]:
    """A long recording: eight other utterances back to back, with their texts."""
    clips = [load_audio(path).samples for path, _ in utterances[1:9]]
    return np.concatenate(clips).astype(np.float32), " ".join(text for _, text in utterances[1:9])


def _comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "timings"}


def _alignment_key(alignment) -> tuple:
    return ([(s.start, s.end, s.path_score) for s in alignment.segments],
            [(p.base, p.start, p.end, p.score) for p in alignment.loop], alignment.pauses, alignment.fallback)


def test_aligner_forgets_previous_utterances(utterances):
    aligner, lexicon = ForcedAligner(), Lexicon()
    (path, text), (other_path, other_text) = utterances[0], utterances[5]
    audio, phones = load_audio(path), lexicon.pronounce(text).canonical
    first = _alignment_key(aligner.align(audio, phones))
    aligner.align(load_audio(_noise(), 16_000), lexicon.pronounce("hello world").canonical)
    aligner.align(load_audio(other_path), lexicon.pronounce(other_text).canonical)
    assert _alignment_key(aligner.align(audio, phones)) == first
    assert _alignment_key(ForcedAligner().align(audio, phones)) == first  # as in a fresh process


@pytest.fixture(scope="module")
def assessor():
    if not DEFAULT_MODEL_DIR.is_dir():
        pytest.skip(f"the shipped model is absent: {DEFAULT_MODEL_DIR}")
    return Assessor.from_pretrained(rationale="none")


def test_assessor_scores_do_not_depend_on_earlier_inputs(assessor, utterances):
    (path, text), (other_path, other_text) = utterances[0], utterances[9]
    first = _comparable(assessor.assess(str(path), text).to_dict())
    with pytest.raises(NoSpeechError):  # refused by the verification, after it has run on the noise
        assessor.assess(_noise(), "hello world", sample_rate=16_000)
    samples, paragraph_text = _paragraph(utterances)
    assessor.assess(samples, paragraph_text, sample_rate=16_000)
    assessor.assess(str(other_path), other_text)
    assert _comparable(assessor.assess(str(path), text).to_dict()) == first


def test_service_scores_do_not_depend_on_earlier_requests(assessor, utterances):
    (path, text), (other_path, other_text) = utterances[0], utterances[3]

    def post(client, audio_path, words):
        response = client.post("/v1/assess", data={"text": words},
                               files={"audio": (audio_path.name, audio_path.read_bytes(), "audio/flac")})
        assert response.status_code == 200, response.text
        return _comparable(response.json())

    with TestClient(create_app(lambda: assessor, workers=1)) as client:
        first = post(client, path, text)
        post(client, other_path, other_text)
        assert post(client, path, text) == first
