import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orthoepy.fusion.cli import main

REPO = Path(__file__).resolve().parents[1]


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
    for expected in ("orthoepy/encoder/phoneset.py", "orthoepy/encoder/features/frontend.py", "orthoepy/fusion/cli.py",
                     "orthoepy/fusion/samples/demo.flac", "orthoepy/rationalizer/__init__.py"):
        assert expected in names
    zipfile.ZipFile(wheel).extractall(tmp_path / "site")
    code = "import orthoepy.fusion.cli as c, orthoepy.encoder.features.store as s; print(c.__file__)"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(tmp_path / "site"))
