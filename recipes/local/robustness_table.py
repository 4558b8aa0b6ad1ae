"""Run every bad (and unusual-but-valid) input we try against orthoepy and print a markdown table of what each got.

Audio cases go through `load_audio` (and, for valid variants, the full Assessor); text and model-directory cases
through the Assessor; HTTP cases through the FastAPI TestClient with the real shipped model. Nothing is
hand-written: the result column is the exception's type and message, or a summary of the result.

    python recipes/local/robustness_table.py > /tmp/rows.md
"""
from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile

from orthoepy.encoder.audio import SAMPLE_RATE, Audio, load_audio
from orthoepy.fusion.assessor import DEFAULT_MODEL_DIR, Assessment, Assessor

SAMPLES = Path(__file__).resolve().parents[2] / "fusion" / "samples"
DEMO = json.loads((SAMPLES / "demo.json").read_text())
DEMO_AUDIO = (SAMPLES / DEMO["audio"]).read_bytes()
DEMO_TEXT = DEMO["text"]
TMP = Path(tempfile.mkdtemp(prefix="orthoepy-robustness-"))


def cell(text: str, limit: int = 260) -> str:
    text = text.replace(str(TMP), "<tmp>").replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + " …"


def outcome(call: Callable[[], Any]) -> str:
    try:
        value = call()
    except Exception as err:  # the point: report whatever escapes, with its type
        return f"**{type(err).__name__}**: {cell(str(err))}"
    if isinstance(value, Audio):
        return f"OK: Audio {value.duration:.2f} s, 16 kHz float32 mono, peak {float(np.max(np.abs(value.samples))):.2f}"
    if isinstance(value, Assessment):
        phones = sum(len(w.phones) for w in value.words)
        flagged = [f"{w.text} {w.error_type}" for w in value.words if w.error_type != "None"]
        flagged += [f"{i.text} {i.kind}" for i in value.insertions]
        warnings = value.verification["warnings"] if value.verification else []
        return cell(f"OK: {len(value.words)} words, {phones} phones, total {value.sentence['total']:.1f}, "
                    f"accuracy {value.sentence['accuracy']:.1f}, completeness {value.sentence['completeness']:.1f}, "
                    f"alignment_fallback={value.alignment_fallback}; flagged: {', '.join(flagged) or 'none'}"
                    + (f"; warning: {warnings[0]}" if warnings else "")
                    + "".join(f"; audio: {w.split(';')[0].split(':')[0]}" for w in value.audio_warnings), limit=460)
    if isinstance(value, Assessor):
        return f"OK: loaded model {value.model_name!r}"
    return f"OK: {cell(repr(value))}"


def encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def demo_samples() -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(DEMO_AUDIO), dtype="float32")
    return samples, rate


def resampled(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(samples, rate, new_rate).astype(np.float32)


def tone(seconds: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- cases

def audio_rows(assessor: Assessor) -> list[tuple[str, str, str, str]]:
    rows = []
    text_wav = TMP / "notes.wav"
    text_wav.write_text("These are my notes, not a recording.\n" * 20)
    with_nan = tone(1.0)
    with_nan[100] = np.nan
    with_inf = tone(1.0)
    with_inf[100] = np.inf
    bad = [
        ("empty bytes (b\"\")", lambda: load_audio(b"")),
        ("non-audio bytes (240 B of ASCII)", lambda: load_audio(b"this is not audio at all" * 10)),
        ("text file renamed .wav (path)", lambda: load_audio(text_wav)),
        ("missing file (path)", lambda: load_audio(TMP / "nope.wav")),
        ("truncated WAV (first 100 bytes of a valid one)", lambda: load_audio(encoded(tone(1.0), SAMPLE_RATE, "WAV")[:100])),
        ("too short: 0.1 s tone", lambda: load_audio(tone(0.1), SAMPLE_RATE)),
        ("too long: 301 s tone", lambda: load_audio(tone(301.0), SAMPLE_RATE)),
        ("silence: 1 s of zeros", lambda: load_audio(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)),
        ("NaN: one sample of a 1 s tone", lambda: load_audio(with_nan, SAMPLE_RATE)),
        ("inf: one sample of a 1 s tone", lambda: load_audio(with_inf, SAMPLE_RATE)),
        ("array without sample_rate", lambda: load_audio(tone(1.0))),
        ("3-D array", lambda: load_audio(np.zeros((2, 2, 2), np.float32), SAMPLE_RATE)),
        ("string array", lambda: load_audio(np.array(["a", "b"]), SAMPLE_RATE)),
        ("negative sample rate", lambda: load_audio(tone(1.0), -16000)),
    ]
    rows += [("audio", name, "`load_audio`", outcome(call)) for name, call in bad]

    samples, rate = demo_samples()
    at_48k = resampled(samples, rate, 48_000)
    at_44k = resampled(samples, rate, 44_100)
    valid = [
        ("demo.flac as shipped (16 kHz FLAC)", DEMO_AUDIO),
        ("8-bit WAV (PCM_U8)", encoded(samples, rate, "WAV", "PCM_U8")),
        ("24-bit WAV (PCM_24)", encoded(samples, rate, "WAV", "PCM_24")),
        ("32-bit float WAV", encoded(samples, rate, "WAV", "FLOAT")),
        ("stereo 16-bit WAV", encoded(np.stack([samples, samples], axis=1), rate, "WAV", "PCM_16")),
        ("48 kHz 16-bit WAV", encoded(at_48k, 48_000, "WAV", "PCM_16")),
        ("8 kHz 16-bit WAV (telephone band)", encoded(resampled(samples, rate, 8_000), 8_000, "WAV", "PCM_16")),
        ("MP3 (44.1 kHz)", encoded(at_44k, 44_100, "MP3")),
        ("OGG Vorbis (44.1 kHz)", encoded(at_44k, 44_100, "OGG", "VORBIS")),
        ("clipped: demo x 4, cut at full scale", encoded(np.clip(samples * 4, -1, 1), rate, "WAV", "FLOAT")),
        ("very quiet: demo x 0.02", encoded(samples * 0.02, rate, "WAV", "FLOAT")),
    ]
    for name, data in valid:
        rows.append(("audio (valid variant)", name, "`Assessor.assess`", outcome(lambda: assessor.assess(data, DEMO_TEXT))))
    rows.append(("audio (valid variant)", "int16 array at 22.05 kHz", "`Assessor.assess`",
                 outcome(lambda: assessor.assess((resampled(samples, rate, 22_050) * 32767).astype(np.int16),
                                                 DEMO_TEXT, sample_rate=22_050))))
    return rows


FIELD_DIR = Path(__file__).resolve().parents[3] / "shared" / "field"


def field_rows(assessor: Assessor) -> list[tuple[str, str, str, str]]:
    """The field recordings (../shared/field): what a user sends and what orthoepy returns now."""
    if not (FIELD_DIR / "cases.json").is_file():
        return []
    cases = json.loads((FIELD_DIR / "cases.json").read_text())
    return [("field recording", f"{c['kind']}: {c['audio']} read as {c['text']!r}", "`Assessor.assess`",
             outcome(lambda c=c: assessor.assess(str(FIELD_DIR / c["audio"]), c["text"]))) for c in cases]


def text_rows(assessor: Assessor) -> list[tuple[str, str, str, str]]:
    long_text = " ".join([DEMO_TEXT] * 60)
    cases = [
        ("empty string", ""),
        ("whitespace only", "   \t\n"),
        ("punctuation only", "!!! ... ???"),
        ("non-Latin script: Chinese", "\u4eca\u5929\u5929\u6c14\u5f88\u597d"),
        ("non-Latin script: Russian", "\u043f\u043e\u0433\u043e\u0434\u0430 \u0445\u043e\u0440\u043e\u0448\u0430\u044f"),
        ("emoji only", "\U0001f600\U0001f44d"),
        ("numbers: \"I have 42 cats and 3.5 dogs\"", "I have 42 cats and 3.5 dogs"),
        ("number past 10^33 (41 digits)", "1" + "0" * 40),
        ("accented Latin: \"naïve café\"", "naïve café"),
        ("OOV words: \"the blorptic zxqv flimbered\"", "the blorptic zxqv flimbered"),
        (f"very long: demo sentence x60 ({len(long_text)} chars, {len(long_text.split())} words) for 2.8 s audio",
         long_text),
        ("text unrelated to the audio: \"purple elephants dance\"", "purple elephants dance"),
    ]
    return [("text", name, "`Assessor.assess` (demo audio)", outcome(lambda: assessor.assess(DEMO_AUDIO, text)))
            for name, text in cases]


def model_rows() -> list[tuple[str, str, str, str]]:
    def broken(name: str, content: bytes | None) -> Path:
        directory = Path(tempfile.mkdtemp(dir=TMP)) / "model"
        shutil.copytree(DEFAULT_MODEL_DIR, directory)
        if content is None:
            (directory / name).unlink()
        else:
            (directory / name).write_bytes(content)
        return directory

    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    empty = TMP / "empty-model"
    empty.mkdir()
    cases = [
        ("missing directory", lambda: TMP / "no-such-model"),
        ("empty directory", lambda: empty),
        ("model.pt removed", lambda: broken("model.pt", None)),
        ("model.pt truncated to 1000 bytes", lambda: broken("model.pt", (DEFAULT_MODEL_DIR / "model.pt").read_bytes()[:1000])),
        ("model.pt empty (0 bytes)", lambda: broken("model.pt", b"")),
        ("model.pt replaced by text", lambda: broken("model.pt", b"not a checkpoint")),
        ("scorer.onnx truncated to 1000 bytes", lambda: broken("scorer.onnx", (DEFAULT_MODEL_DIR / "scorer.onnx").read_bytes()[:1000])),
        ("config.json corrupt JSON", lambda: broken("config.json", b"{not json")),
        ("config.json phone_feature_dim 583 -> 10", lambda: broken("config.json", json.dumps({**config, "phone_feature_dim": 10}).encode())),
        ("config.json `{}`", lambda: broken("config.json", b"{}")),
        ("config.json `[1]`", lambda: broken("config.json", b"[1]")),
        ("calibration.json `[]`", lambda: broken("calibration.json", b"[]")),
        ("scorer.json `{}`", lambda: broken("scorer.json", b"{}")),
        ("scaler.npz garbage", lambda: broken("scaler.npz", b"xx")),
    ]
    return [("model dir", name, "`Assessor.from_pretrained`", outcome(lambda: Assessor.from_pretrained(make())))
            for name, make in cases]


class GatedAssessor:
    """The real assessor, but each call first waits for `gate`: holds requests in flight to fill the queue."""

    def __init__(self, inner: Assessor, gate: threading.Event):
        self.inner, self.gate, self.model_name = inner, gate, inner.model_name

    def assess(self, audio, text, sample_rate=None):
        self.gate.wait(timeout=30)
        return self.inner.assess(audio, text, sample_rate)


def http_rows(assessor: Assessor) -> list[tuple[str, str, str, str]]:
    from fastapi.testclient import TestClient

    from orthoepy.fusion.service import create_app

    def show(response) -> str:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code == 200 and isinstance(body, dict) and "sentence" in body:
            return f"HTTP 200: {len(body['words'])} words, total {body['sentence']['total']:.1f}"
        retry = f" (Retry-After: {response.headers['retry-after']})" if "retry-after" in response.headers else ""
        return f"HTTP {response.status_code}{retry}: `{cell(json.dumps(body), 220)}`"

    def post(client, audio=DEMO_AUDIO, text=DEMO_TEXT, mime="audio/flac", name="demo.flac"):
        return client.post("/v1/assess", files={"audio": (name, audio, mime)}, data={"text": text})

    rows = []
    with TestClient(create_app(lambda: assessor, max_upload_bytes=1 * 2**20)) as client:
        cases = [
            ("valid: demo.flac + its text", lambda: post(client)),
            ("oversize upload (2 MiB, limit 1 MiB)", lambda: post(client, audio=b"\0" * 2 * 2**20)),
            ("missing `audio` field", lambda: client.post("/v1/assess", data={"text": DEMO_TEXT})),
            ("missing `text` field", lambda: client.post("/v1/assess", files={"audio": ("demo.flac", DEMO_AUDIO, "audio/flac")})),
            ("empty text", lambda: post(client, text="")),
            ("whitespace text", lambda: post(client, text="   ")),
            ("text over 1000 chars", lambda: post(client, text="hello " * 200)),
            ("punctuation-only text", lambda: post(client, text="?!")),
            ("number past 10^33 in text", lambda: post(client, text="1" + "0" * 40)),
            ("non-audio upload", lambda: post(client, audio=b"hello world" * 50, name="x.wav", mime="audio/wav")),
            ("silent WAV upload", lambda: post(client, audio=encoded(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE, "WAV"), name="s.wav")),
            ("wrong content type: JSON body", lambda: client.post("/v1/assess", json={"audio": "x", "text": DEMO_TEXT})),
            ("wrong content type: urlencoded form", lambda: client.post("/v1/assess", data={"audio": "x", "text": DEMO_TEXT})),
            ("audio part labelled text/plain (real FLAC inside)", lambda: post(client, mime="text/plain", name="demo.txt")),
            ("GET /v1/assess", lambda: client.get("/v1/assess")),
        ]
        for name, call in cases:
            try:
                rows.append(("HTTP", name, "TestClient, real model", show(call())))
            except Exception as err:
                rows.append(("HTTP", name, "TestClient, real model", f"**{type(err).__name__}** (client): {cell(str(err))}"))

    gate = threading.Event()
    app = create_app(lambda: GatedAssessor(assessor, gate), workers=1, max_queue=1)
    with TestClient(app) as client:
        held: list = []
        senders = [threading.Thread(target=lambda: held.append(post(client))) for _ in range(2)]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 30
        while app.state.admission.pending < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        rejected = post(client)
        gate.set()
        for sender in senders:
            sender.join(timeout=60)
        rows.append(("HTTP", "queue full (workers=1, max_queue=1, 2 requests held in flight, a 3rd sent)",
                     "TestClient, real model (gated)", show(rejected)))
        rows.append(("HTTP", "the 2 held requests once released", "TestClient, real model (gated)",
                     ", ".join(f"HTTP {r.status_code}" for r in held)))
    return rows


def main() -> int:
    started = time.perf_counter()
    assessor = Assessor.from_pretrained()
    rows = audio_rows(assessor) + field_rows(assessor) + text_rows(assessor) + model_rows() + http_rows(assessor)
    print("| area | input | through | result |")
    print("|---|---|---|---|")
    for area, name, via, result in rows:
        print(f"| {area} | {cell(name)} | {via} | {result} |")
    shutil.rmtree(TMP, ignore_errors=True)
    print(f"\n{len(rows)} cases in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
