import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from orthoepy.fusion.cli import main

REPO = Path(__file__).resolve().parents[1]
ORTHOEPY = Path(sys.executable).with_name("orthoepy")  # the console script of this environment


def run_orthoepy(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(ORTHOEPY), *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_demo_prints_a_phone_table(capsys):
    assert main(["frontend", "--demo", "--groups", "likelihood_gop,posterior_gop,prosody"]) == 0
    out = capsys.readouterr().out
    assert "WEATHER" in out and "PARK" in out and "heard" in out
    assert "forced alignment" in out or "fallback" in out
    assert len([line for line in out.splitlines() if line.strip()]) > 30  # one row per phone


@pytest.mark.parametrize(
    "argv,message",
    [
        (["frontend", "missing.wav", "--text", "hello"], "audio file not found"),
        (["frontend", "--demo", "--groups", "mfcc"], "unknown feature group"),
        (["frontend", "--text", "hello"], "give an audio file"),
        (["features", "--split", "test", "--out", "x", "--corpus", "/nonexistent"], "not a speechocean762 directory"),
        # --model is optional (the shipped model): the corpus is checked first
        (["evaluate", "--split", "test", "--out", "x", "--corpus", "/nonexistent"], "not a speechocean762 directory"),
    ],
)
def test_user_errors_are_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unpronounceable_text(tmp_path, capsys):
    sample = REPO / "fusion" / "samples" / "demo.flac"
    assert main(["frontend", str(sample), "--text", "?!"]) == 2
    assert "no pronounceable English word" in capsys.readouterr().err


def test_features_command_on_fixture(tmp_path, fixture_dir, capsys):
    argv = ["features", "--corpus", str(fixture_dir), "--split", "dev", "--out", str(tmp_path / "dev"), "--nj", "1",
            "--limit", "1", "--cache", str(tmp_path / "cache"), "--groups", "likelihood_gop,prosody"]
    assert main(argv) == 0
    assert "1 utterances" in capsys.readouterr().out
    assert len(list((tmp_path / "dev" / "utts").glob("*.npz"))) == 1


def test_wheel_contains_and_imports_the_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("orthoepy-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("orthoepy/__init__.py", "orthoepy/fusion/static/index.html",
                     "orthoepy/fusion/models/default/rationalizer/adapter/adapter_config.json", "orthoepy/encoder/phoneset.py", "orthoepy/encoder/features/frontend.py", "orthoepy/fusion/cli.py",
                     "orthoepy/fusion/samples/demo.flac", "orthoepy/rationalizer/__init__.py", "orthoepy/rationalizer/tips.csv"):
        assert expected in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = ("import orthoepy.fusion.cli as c, orthoepy.encoder.features.store as s; print(c.__file__); "
            "from orthoepy import Assessor, Assessment; assert Assessor.__module__ == 'orthoepy.fusion.assessor'")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path / "site"))


def test_wheel_build_has_no_setuptools_warnings(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w",
                             str(tmp_path), str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    log = result.stdout + result.stderr
    for notice in ("would be ignored", "SetuptoolsDeprecationWarning", "_Warning"):
        assert notice not in log, f"setuptools says {notice!r} while building the wheel"


def test_import_orthoepy_is_cheap_and_exposes_the_api():
    code = ("import sys, orthoepy; heavy = sorted({'torch', 'sklearn', 'espnet'} & set(sys.modules)); "
            "from orthoepy import Assessor, Assessment; print(heavy, Assessor.__name__, Assessment.__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ["[]", "Assessor", "Assessment"]


def test_assess_json_stdout_parses_as_json():
    """`orthoepy assess --json | python -m json.tool`: ESPnet's import notice and progress bars stay off stdout."""
    result = run_orthoepy("assess", "--demo", "--json", "--rationale", "rubric")
    assert result.returncode == 0, result.stderr[-2000:]
    body = json.loads(result.stdout)
    assert body["words"][1]["text"] == "WEATHER" and body["rationale"]["source"] == "rubric"


@pytest.mark.parametrize("make_input, message", [
    (lambda tmp: tmp / "missing.wav", "audio file not found"),
    (lambda tmp: (tmp / "notes.wav").write_text("not audio") and tmp / "notes.wav", "is not readable audio"),
])
def test_bad_audio_fails_before_any_model_loads(tmp_path, make_input, message):
    started = time.perf_counter()
    result = run_orthoepy("assess", str(make_input(tmp_path)), "--text", "hello", "--json")
    seconds = time.perf_counter() - started  # ~0.2 s here; loading the models first took ~30 s
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert message in json.loads(result.stdout)["error"]  # --json: one JSON object on stdout, even on failure
    assert seconds < 5, f"a bad input took {seconds:.1f} s to report: models were loaded first?"


def error_json(capsys, argv: list[str]) -> tuple[dict, str]:
    """Runs `main(argv)`, expects exit 2; (stdout parsed as JSON, stderr)."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


@pytest.mark.parametrize("argv, message", [
    (["assess", "missing.wav", "--text", "hello"], "audio file not found: missing.wav"),
    (["assess", str(REPO / "fusion" / "samples" / "demo.flac"), "--text", "?!"], "no pronounceable English word"),
    (["assess", "--text", "hello"], "give an audio file"),
    (["assess", str(REPO / "fusion" / "samples" / "demo.flac"), "--text", ""], "the text is empty"),
    (["assess", str(REPO / "fusion" / "samples" / "demo.flac")], "give the sentence read in"),
])
def test_assess_json_errors_are_one_json_object_on_stdout(argv, message, capsys):
    body, err = error_json(capsys, argv + ["--json"])
    assert list(body) == ["error"] and message in body["error"]
    assert err.strip() == f"orthoepy: error: {body['error']}"


def test_assess_without_json_keeps_stdout_empty_on_errors(capsys):
    assert main(["assess", "missing.wav", "--text", "hello"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "audio file not found" in captured.err


class RefusingAssessor:
    """An Assessor whose recordings hold no speech, or whose every assessment hits a bug."""

    def __init__(self, error: Exception):
        self.error = error

    def assess(self, *args, **kwargs):
        raise self.error


@pytest.fixture
def refusing_models(monkeypatch):
    from orthoepy.fusion import assessor as assessor_module

    def install(error: Exception):
        monkeypatch.setattr(assessor_module.Assessor, "from_pretrained",
                            staticmethod(lambda *args, **kwargs: RefusingAssessor(error)))

    return install


def test_assess_json_no_speech_is_an_error_object(refusing_models, capsys):
    from orthoepy.encoder.verification import NoSpeechError

    refusing_models(NoSpeechError("no speech found in the recording (0.00 s of voice activity in 1.0 s)"))
    body, err = error_json(capsys, ["assess", "--demo", "--json"])
    assert body == {"error": "no speech found in the recording (0.00 s of voice activity in 1.0 s)"}
    assert "orthoepy: error: no speech found" in err


def test_assess_json_bug_still_raises_after_an_error_object(refusing_models, capsys):
    refusing_models(KeyError("phones"))
    with pytest.raises(KeyError):
        main(["assess", "--demo", "--json"])
    assert json.loads(capsys.readouterr().out) == {"error": "internal error: KeyError: 'phones'"}


def test_a_text_too_long_for_the_scorer_is_refused_before_the_model_loads(monkeypatch, capsys):
    from orthoepy.fusion.assessor import Assessor

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the text was checked")

    monkeypatch.setattr(Assessor, "from_pretrained", no_model)
    long_text = " ".join(["extraordinarily"] * 400)  # 14 phones a word: 5600 phones
    body, _ = error_json(capsys, ["assess", str(REPO / "fusion" / "samples" / "demo.flac"), "--text", long_text,
                                  "--json"])
    assert "too long to score at once" in body["error"] and "at most 4900" in body["error"]
