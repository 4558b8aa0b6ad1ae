"""`orthoepy assess-batch`: manifest and output handling (fast, with a fake assessor), and the real model on fixture
utterances through the local engine and through Ray actors, which must give the same records."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from orthoepy.fusion import assessor as assessor_module
from orthoepy.fusion.batch import BatchError, EngineOptions, LineProblem, finished_ids, read_manifest, run_batch
from orthoepy.fusion.cli import main

from test_service import FakeAssessor

SAMPLE = Path(__file__).resolve().parents[1] / "fusion" / "samples" / "demo.flac"


def write_manifest(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def read_records(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


# ---------------------------------------------------------------------------------------------- manifest and output

def test_manifest_resolves_relative_audio_against_its_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    manifest = write_manifest(tmp_path / "sub" / "m.jsonl", [{"id": 7, "audio": "a.wav", "text": "hi"},
                                                            {"id": "b", "audio": str(SAMPLE), "text": "hello"}])
    items = read_manifest(manifest).items
    assert [i.id for i in items] == ["7", "b"]
    assert items[0].audio == tmp_path / "sub" / "a.wav" and items[1].audio == SAMPLE


@pytest.mark.parametrize("line, problem", [
    ("{not json", LineProblem("line:2", "m.jsonl:2: not valid JSON (Expecting property name enclosed in double "
                                        "quotes)")),
    ('{"id": "b", "audio": "x.wav"}', LineProblem("b", "m.jsonl:2: missing or empty field(s): text")),
    ('{"id": "b", "audio": "", "text": "hi"}', LineProblem("b", "m.jsonl:2: missing or empty field(s): audio")),
    ('{"audio": "x.wav", "text": "hi"}', LineProblem("line:2", "m.jsonl:2: missing or empty field(s): id")),
    ('["b", "x.wav", "hi"]', LineProblem("line:2", "m.jsonl:2: expected a JSON object with id, audio, text")),
])
def test_an_unusable_line_is_a_problem_of_that_line_only(tmp_path, line, problem):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a", "audio": "x.wav", "text": "hi"}\n' + line + "\n")
    lines = read_manifest(manifest)
    assert [i.id for i in lines.items] == ["a"] and lines.total == 2
    (found,) = lines.problems
    assert found == LineProblem(problem.id, f"{tmp_path}/{problem.message}")


@pytest.mark.parametrize("lines, message", [
    (['{"id": "a", "audio": "x.wav", "text": "hi"}', '{"id": "a", "audio": "y.wav", "text": "ho"}'],
     "m.jsonl:2: duplicate id 'a'"),
    (['{"id": "a", "audio": "x.wav", "text": "hi"}', '{"id": "a", "audio": "y.wav"}'], "m.jsonl:2: duplicate id 'a'"),
    ([""], "has no items"),
    (["{not json", '{"id": "a"}'],
     "has no usable line: .*m.jsonl:1: not valid JSON .* \\(and 1 more unusable lines\\)"),
])
def test_a_bad_manifest_as_a_whole_names_the_line(tmp_path, lines, message):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(BatchError, match=message):
        read_manifest(manifest)


def test_finished_ids_drops_errors_and_a_torn_last_line(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "a", "sentence": {}}\n{"id": "b", "error": "bad audio"}\n{"id": "c", "sent')
    assert finished_ids(out) == {"a"}
    assert out.read_text() == '{"id": "a", "sentence": {}}\n'


def test_foreign_output_file_is_refused(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("hello world\n")
    with pytest.raises(BatchError, match="not an assess-batch record"):
        finished_ids(out)


@pytest.fixture
def fake_models(monkeypatch):
    """Assessor.from_pretrained returns the service tests' FakeAssessor; counts the loads."""
    loads = []

    def fake_from_pretrained(path=None, rationale="auto", **kwargs):
        loads.append((path, rationale))
        return FakeAssessor()

    monkeypatch.setattr(assessor_module.Assessor, "from_pretrained", staticmethod(fake_from_pretrained))
    return loads


def test_bad_items_become_error_records_and_a_rerun_resumes(tmp_path, fake_models):
    (tmp_path / "noise.wav").write_bytes(b"not audio")
    manifest = write_manifest(tmp_path / "m.jsonl", [
        {"id": "ok", "audio": str(SAMPLE), "text": "hi"},
        {"id": "missing", "audio": "nope.wav", "text": "hi"},
        {"id": "noise", "audio": "noise.wav", "text": "hi"},
        {"id": "text", "audio": str(SAMPLE), "text": "!!!"},
    ])
    out = tmp_path / "out.jsonl"
    summary = run_batch(manifest, out, EngineOptions(rationale="none"), progress=False)
    assert (summary.total, summary.assessed, summary.errors, summary.skipped) == (4, 1, 3, 0)
    records = read_records(out)
    assert records["ok"]["words"][0]["text"] == "HI" and records["ok"]["schema_version"]
    assert records["missing"] == {"id": "missing", "error": f"audio file not found: {tmp_path / 'nope.wav'}"}
    assert records["noise"]["error"].startswith(f"{tmp_path / 'noise.wav'} is not readable audio")
    assert "no pronounceable English word" in records["text"]["error"]

    (tmp_path / "noise.wav").write_bytes(SAMPLE.read_bytes())  # fixed: the rerun retries the errors only
    summary = run_batch(manifest, out, EngineOptions(rationale="none"), progress=False)
    assert (summary.skipped, summary.assessed, summary.errors) == (1, 1, 2)
    assert sorted(read_records(out)) == ["missing", "noise", "ok", "text"] and "error" not in read_records(out)["noise"]
    assert len(out.read_text().splitlines()) == 4


def test_unusable_manifest_lines_become_error_records_with_a_warning(tmp_path, fake_models, caplog):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join([
        json.dumps({"id": "ok", "audio": str(SAMPLE), "text": "hi"}),
        "{not json",
        json.dumps({"id": "no-text", "audio": str(SAMPLE)}),
        json.dumps({"id": "missing", "audio": "nope.wav", "text": "hi"}),
        json.dumps({"id": "last", "audio": str(SAMPLE), "text": "hello"}),
    ]) + "\n")
    out = tmp_path / "out.jsonl"
    with caplog.at_level("WARNING", logger="orthoepy.batch"):
        summary = run_batch(manifest, out, EngineOptions(rationale="none"), progress=False)
    assert (summary.total, summary.assessed, summary.errors, summary.skipped) == (5, 2, 3, 0)
    order = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert order == ["line:2", "no-text", "ok", "missing", "last"]  # unusable lines first, then manifest order
    records = read_records(out)
    assert records["line:2"] == {"id": "line:2", "error": f"{manifest}:2: not valid JSON "
                                                          "(Expecting property name enclosed in double quotes)"}
    assert records["no-text"] == {"id": "no-text", "error": f"{manifest}:3: missing or empty field(s): text"}
    assert records["missing"]["error"].startswith("audio file not found")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [f"{i}: {records[i]['error']}" for i in ("line:2", "no-text", "missing")]

    summary = run_batch(manifest, out, EngineOptions(rationale="none"), progress=False)  # errors are retried
    assert (summary.skipped, summary.assessed, summary.errors) == (2, 0, 3)
    assert sorted(read_records(out)) == ["last", "line:2", "missing", "no-text", "ok"]


def test_cli_warns_on_stderr_of_an_unusable_line(tmp_path):
    """A subprocess, for the real stderr: the usable item is already done, so no model loads."""
    from test_cli import run_orthoepy

    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "ok", "audio": str(SAMPLE), "text": "hi"}) + "\n{not json\n")
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "ok", "sentence": {}}\n')
    result = run_orthoepy("assess-batch", str(manifest), "--out", str(out), timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"line:2: {manifest}:2: not valid JSON" in result.stderr
    assert result.stdout.startswith("0 assessed, 1 errors, 1 already done")
    assert read_records(out)["line:2"]["error"].startswith(f"{manifest}:2: not valid JSON")


def test_nothing_to_do_loads_no_model(tmp_path, fake_models):
    manifest = write_manifest(tmp_path / "m.jsonl", [{"id": "ok", "audio": str(SAMPLE), "text": "hi"}])
    run_batch(manifest, tmp_path / "out.jsonl", progress=False)
    assert len(fake_models) == 1
    summary = run_batch(manifest, tmp_path / "out.jsonl", progress=False)
    assert len(fake_models) == 1 and summary.skipped == 1 and summary.assessed == 0


@pytest.mark.parametrize("argv, message", [
    (["assess-batch", "/nonexistent/m.jsonl", "--out", "o.jsonl"], "manifest not found"),
    (["assess-batch", str(SAMPLE), "--out", "o.jsonl"], "not a UTF-8 text file"),
    (["assess-batch", str(SAMPLE.with_name("README.md")), "--out", "o.jsonl"], "README.md:1: not valid JSON"),
])
def test_cli_reports_bad_input_in_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_local_engine_refuses_several_workers(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.jsonl", [{"id": "ok", "audio": str(SAMPLE), "text": "hi"}])
    assert main(["assess-batch", str(manifest), "--out", str(tmp_path / "o.jsonl"), "--workers", "2"]) == 2
    assert "use --engine ray" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- real model, both engines

@pytest.fixture(scope="module")
def fixture_manifest(fixture_dir, tmp_path_factory) -> Path:
    """Three fixture utterances (relative paths) and one missing file."""
    scores = json.loads((fixture_dir / "scores.json").read_text())
    ids = sorted(scores)[:3]
    items = [{"id": i, "audio": f"{i}.flac", "text": scores[i]["text"]} for i in ids]
    folder = tmp_path_factory.mktemp("batch")
    for i in ids:
        (folder / f"{i}.flac").symlink_to(fixture_dir / f"{i}.flac")
    return write_manifest(folder / "manifest.jsonl", items + [{"id": "gone", "audio": "gone.flac", "text": "hi"}])


def without_timings(records: dict[str, dict]) -> dict[str, dict]:
    """Records less their timings (`timings`, and the rationale's `seconds`), which differ from run to run."""
    def strip(record: dict) -> dict:
        record = {f: v for f, v in record.items() if f != "timings"}
        if isinstance(record.get("rationale"), dict):
            record["rationale"] = {f: v for f, v in record["rationale"].items() if f != "seconds"}
        return record

    return {k: strip(r) for k, r in records.items()}


@pytest.fixture(scope="module")
def local_records(fixture_manifest, tmp_path_factory) -> dict[str, dict]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in each one-CPU Ray actor
    out = tmp_path_factory.mktemp("local") / "out.jsonl"
    try:
        summary = run_batch(fixture_manifest, out, EngineOptions(rationale="rubric"), progress=False)
    finally:
        torch.set_num_threads(threads)
    assert (summary.assessed, summary.errors) == (3, 1)
    return read_records(out)


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'orthoepy[ray]'); Ray engine untested")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_local_engine_on_fixture_utterances(local_records):
    good = [r for r in local_records.values() if "error" not in r]
    assert len(good) == 3 and all(r["rationale"]["source"] == "rubric" for r in good)
    assert all(0 <= r["sentence"]["total"] <= 10 for r in good)
    assert local_records["gone"]["error"].startswith("audio file not found")


def test_one_ray_worker_gives_the_local_engine_records_exactly(local_records, local_ray, fixture_manifest, tmp_path):
    out = tmp_path / "ray.jsonl"
    summary = run_batch(fixture_manifest, out, EngineOptions(engine="ray", rationale="rubric", workers=1),
                        progress=False)
    assert (summary.assessed, summary.errors) == (3, 1)
    assert local_ray.is_initialized()  # a Ray the caller started is left running
    assert without_timings(read_records(out)) == without_timings(local_records)


def scores(record: dict) -> list[float]:
    return [*record["sentence"].values(), *(w[a] for w in record["words"] for a in ("accuracy", "stress", "total")),
            *(p["score"] for w in record["words"] for p in w["phones"])]


def test_two_ray_workers_match_the_local_engine(local_records, local_ray, fixture_manifest, tmp_path):
    """Same records up to the aligner's history: an Assessor's pocketsphinx decoders carry state from the
    utterances it assessed before (measured: fluency 8.65 vs 8.72 for one fixture utterance assessed second vs
    first; a phone boundary moved by 10 ms), and two workers see other histories than one. Ids, phones and error
    records must be identical, times within 50 ms and scores within 0.15."""
    out = tmp_path / "ray2.jsonl"
    summary = run_batch(fixture_manifest, out, EngineOptions(engine="ray", rationale="rubric", workers=2),
                        progress=False)
    assert (summary.assessed, summary.errors) == (3, 1)
    ray_records = read_records(out)
    assert sorted(ray_records) == sorted(local_records) and ray_records["gone"] == local_records["gone"]
    for utt_id, local in local_records.items():
        if "error" in local:
            continue
        ours = ray_records[utt_id]
        phones = [[p["phone"] for w in r["words"] for p in w["phones"]] for r in (ours, local)]
        times = [[t for w in r["words"] for p in w["phones"] for t in (p["start"], p["end"])] for r in (ours, local)]
        assert phones[0] == phones[1] and times[0] == pytest.approx(times[1], abs=0.05)
        assert scores(ours) == pytest.approx(scores(local), abs=0.15)
