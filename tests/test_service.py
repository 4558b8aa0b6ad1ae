"""The HTTP service with a fake assessor (fast), one real-model request, and the response JSON Schema."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import jsonschema
import pytest
from fastapi.testclient import TestClient

from orthoepy.encoder.audio import BYTES_LABEL, AudioError
from orthoepy.encoder.lexicon import TextError
from orthoepy.fusion.assessor import DEFAULT_MODEL_DIR, Assessment, Assessor, PhoneResult, WordResult
from orthoepy.fusion.schema import RESPONSE_SCHEMA_VERSION, response_schema, schema_json
from orthoepy.fusion.service import create_app
from orthoepy.rationalizer.bands import band_table

SAMPLES = Path(__file__).resolve().parents[1] / "fusion" / "samples"
SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "response.schema.json"
MODEL_ENV = "ORTHOEPY_MODEL"  # a model directory to use while the shipped default is absent


def fake_assessment(text: str) -> Assessment:
    phones = [PhoneResult("HH", 1.8, 0.1, 0.2, "HH", 0.9, False), PhoneResult("AY1", 0.4, 0.2, 0.4, "EY", 0.6, True)]
    sentence = {"accuracy": 7.5, "completeness": 9.9, "fluency": 8.0, "prosodic": 7.9, "total": 7.7}
    return Assessment(text, sentence, [WordResult("HI", 6.0, 10.0, 6.5, "Mispronunciation", phones)], False, "fake",
                      {"frontend": 0.01, "scorer": 0.001})


class FakeAssessor:
    """Returns a fixed assessment; b"not audio" -> AudioError, "!!!" -> TextError; waits on `gate` if given."""

    model_name = "fake"

    def __init__(self, gate: threading.Event | None = None):
        self.gate = gate

    def assess(self, audio, text: str, sample_rate: int | None = None) -> Assessment:
        if self.gate is not None:
            self.gate.wait(timeout=10)
        if audio == b"not audio":
            raise AudioError(f"{BYTES_LABEL} is not readable audio (WAV, FLAC, OGG or MP3 expected)")
        if text == "!!!":
            raise TextError("no pronounceable English word in the text '!!!'")
        return fake_assessment(text)


def post(client: TestClient, audio: bytes = b"RIFF....", text: str = "hi"):
    return client.post("/v1/assess", files={"audio": ("a.wav", audio, "audio/wav")}, data={"text": text})


@pytest.fixture
def client():
    with TestClient(create_app(FakeAssessor, max_upload_bytes=4096, max_queue=2, workers=1, max_text_chars=1000)) as c:
        yield c


def test_healthz_and_info(client):
    assert client.get("/healthz").json()["status"] == "ok"
    info = client.get("/v1/info").json()
    assert info["model"] == "fake" and info["schema_version"] == RESPONSE_SCHEMA_VERSION
    assert info["limits"]["max_upload_bytes"] == 4096 and info["limits"]["workers"] == 1
    assert info["version"]
    assert info["bands"] == band_table()  # what the learner page colours with


def test_assess_returns_a_schema_valid_assessment(client):
    response = post(client, text="hi")
    assert response.status_code == 200, response.text
    body = response.json()
    jsonschema.validate(body, response_schema())
    assert body["schema_version"] == RESPONSE_SCHEMA_VERSION and body["words"][0]["phones"][1]["mispronounced"]


def test_openapi_documents_assess(client):
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/assess"]["post"]
    assert {"200", "413", "422", "503"} <= set(operation["responses"])


def test_oversize_upload_is_413(client):
    response = post(client, audio=b"\0" * 10_000)
    assert response.status_code == 413
    assert "larger than the limit of 4096 bytes" in response.json()["error"]


def test_oversize_streamed_upload_without_content_length_is_413(client):
    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    response = client.post("/v1/assess", content=chunks(),
                           headers={"Content-Type": "multipart/form-data; boundary=zz"})
    assert response.status_code == 413 and "larger than the limit" in response.json()["error"]


@pytest.mark.parametrize("audio, text, message", [
    (b"not audio", "hi", "not readable audio"),
    (b"RIFF....", "!!!", "no pronounceable English word"),
    (b"RIFF....", "   ", "text is empty"),
    (b"RIFF....", "a" * 1001, "text is too long"),
])
def test_bad_input_is_422_with_a_message(client, audio, text, message):
    response = post(client, audio=audio, text=text)
    assert response.status_code == 422
    assert message in response.json()["error"]


@pytest.mark.parametrize("form, files, field", [
    ({"text": "hi"}, None, "audio"),
    ({"text": ""}, {"audio": ("a.wav", b"RIFF....", "audio/wav")}, "text"),
])
def test_missing_field_is_422_with_a_message(client, form, files, field):
    response = client.post("/v1/assess", data=form, files=files)
    assert response.status_code == 422
    assert f"form field '{field}' is missing" in response.json()["error"]


def test_full_queue_is_503_with_retry_after():
    gate = threading.Event()
    app = create_app(lambda: FakeAssessor(gate), max_queue=1, workers=1)
    with TestClient(app) as client:
        results: list[int] = []
        senders = [threading.Thread(target=lambda: results.append(post(client).status_code)) for _ in range(2)]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 10
        while app.state.admission.pending < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        rejected = post(client)
        gate.set()
        for sender in senders:
            sender.join(timeout=10)
    assert rejected.status_code == 503 and int(rejected.headers["Retry-After"]) >= 1
    assert "busy" in rejected.json()["error"]
    assert results == [200, 200]


def test_learner_page(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert '<form id="assess-form"' in response.text and 'src="/static/app.js"' in response.text
    assert "MediaRecorder" in client.get("/static/app.js").text


def test_published_schema_file_is_current():
    assert SCHEMA_FILE.read_text() == schema_json(), "regenerate: python -m orthoepy.fusion.schema docs/response.schema.json"
    jsonschema.Draft202012Validator.check_schema(response_schema())


def test_schema_covers_every_assessment_field():
    schema = response_schema()
    assert set(schema["required"]) == {"schema_version"} | set(Assessment.__dataclass_fields__)
    word = schema["properties"]["words"]["items"]
    assert set(word["required"]) == set(WordResult.__dataclass_fields__)
    assert set(word["properties"]["phones"]["items"]["required"]) == set(PhoneResult.__dataclass_fields__)


# ---------------------------------------------------------------------------------------------- real model

def _model_dir() -> Path:
    if DEFAULT_MODEL_DIR.is_dir():
        return DEFAULT_MODEL_DIR
    if os.environ.get(MODEL_ENV) and Path(os.environ[MODEL_ENV]).is_dir():
        return Path(os.environ[MODEL_ENV])
    pytest.skip(f"no model: the shipped {DEFAULT_MODEL_DIR} is absent and ${MODEL_ENV} names no model directory")


@pytest.fixture(scope="module")
def real_assessor() -> Assessor:
    return Assessor.from_pretrained(_model_dir(), rationale="rubric")


@pytest.fixture(scope="module")
def demo() -> tuple[bytes, str]:
    meta = json.loads((SAMPLES / "demo.json").read_text())
    return (SAMPLES / meta["audio"]).read_bytes(), meta["text"]


def test_real_assessment_validates_against_the_schema(real_assessor, demo):
    audio, text = demo
    jsonschema.validate(real_assessor.assess(audio, text).to_dict(), response_schema())


def test_real_assessor_through_the_service(real_assessor, demo):
    audio, text = demo
    with TestClient(create_app(lambda: real_assessor)) as client:
        response = client.post("/v1/assess", files={"audio": ("demo.flac", audio, "audio/flac")}, data={"text": text})
        assert response.status_code == 200, response.text
        jsonschema.validate(response.json(), response_schema())
        assert response.json()["words"][1]["text"] == "WEATHER"
        garbage = client.post("/v1/assess", files={"audio": ("x.flac", b"\0" * 100, "audio/flac")}, data={"text": text})
        assert garbage.status_code == 422 and "not readable audio" in garbage.json()["error"]
        assert " object at 0x" not in garbage.json()["error"]


@pytest.mark.parametrize("method, path, status, message", [
    ("GET", "/v1/assess", 405, "method not allowed: GET /v1/assess (allowed: POST)"),
    ("PUT", "/healthz", 405, "method not allowed: PUT /healthz"),
    ("GET", "/no/such/route", 404, "not found: GET /no/such/route"),
    ("GET", "/static/missing.js", 404, "not found: GET /static/missing.js"),
])
def test_every_http_error_has_the_error_shape(client, method, path, status, message):
    response = client.request(method, path)
    assert response.status_code == status
    assert set(response.json()) == {"error"} and message in response.json()["error"]


def test_unexpected_failure_is_a_json_500():
    class Broken(FakeAssessor):
        def assess(self, audio, text, sample_rate=None):
            raise RuntimeError("boom")

    with TestClient(create_app(Broken)) as client:
        response = post(client)
        assert response.status_code == 500 and "internal error" in response.json()["error"]
        assert "boom" not in response.text  # details go to the server log, not to the client


# ---------------------------------------------------------------------------------------------- worker processes

class SleepyAssessor:
    """Sleeps 1 s per request and reports its process id (model) and when it ran (timings: epoch seconds)."""

    model_name = "sleepy"

    def assess(self, audio, text: str, sample_rate: int | None = None) -> Assessment:
        started = time.time()
        time.sleep(1.0)
        result = fake_assessment(text)
        result.model, result.timings = str(os.getpid()), {"started": started, "ended": time.time()}
        return result


def refusing_factory():
    raise TextError("this worker refuses to load")


def test_worker_processes_assess_at_the_same_time():
    with TestClient(create_app(SleepyAssessor, workers=2, processes=True)) as client:
        assert client.get("/healthz").json()["status"] == "ok" and client.get("/v1/info").json()["model"] == "sleepy"
        bodies: list[dict] = []
        senders = [threading.Thread(target=lambda: bodies.append(post(client).json())) for _ in range(2)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(timeout=60)
    first, second = sorted(bodies, key=lambda b: b["timings"]["started"])
    assert first["model"] != second["model"] and str(os.getpid()) not in (first["model"], second["model"])
    assert second["timings"]["started"] < first["timings"]["ended"], "the two requests ran one after the other"


def test_worker_process_that_cannot_load_stops_the_start():
    with pytest.raises(RuntimeError, match="failed to load its model: TextError: this worker refuses to load"):
        with TestClient(create_app(refusing_factory, workers=2, processes=True)):
            pass
