"""Batch assessment: a JSONL manifest in, one JSON assessment per line out; resumable, on this process or on Ray.

Manifest lines are objects with `id`, `audio` (a path; relative paths are resolved against the manifest's folder)
and `text`. Each output line is `Assessment.to_dict()` plus the `id`, or `{"id": ..., "error": "..."}` for an item
that failed (unreadable audio, unpronounceable text, ...): one bad item never stops the run. A manifest line that
cannot be read as an item (not JSON, not an object, `id`/`audio`/`text` missing or empty) is such an item too: its
error record (the line's id, or "line:N" when it has none; the message names the file and line) is written before
the others, and every error record is also logged as a warning (stderr). Only problems of the manifest as a whole
raise BatchError before anything runs: no such file, not UTF-8 text, no usable line at all, or an id on two lines
(ids key the output and its resumption). Lines are appended and flushed as items finish, so an interrupted run
loses at most the items in flight; rerunning the same command skips every id that already has an assessment in the
output (error records are dropped and those items retried).

Engines:
- "local": one Assessor in this process, items in manifest order (after the unusable lines' error records).
- "ray": `workers` Ray actors, each holding its own loaded Assessor, fed as they become free (output order is
  completion order). A local Ray is started (`ray.init(num_cpus=workers * cpus_per_worker)`) unless `address`
  names a running cluster. The driver reads the audio files and sends their bytes, so the cluster's machines need
  the orthoepy package (and the model directory at the same path, or the shipped model) but not the audio files.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Iterable, Iterator

from tqdm import tqdm

log = logging.getLogger("orthoepy.batch")

ENGINES = ("local", "ray")
MANIFEST_FIELDS = ("id", "audio", "text")


class BatchError(ValueError):
    """An unusable manifest (as a whole), output file or engine setting; the message says which line/option and why."""


@dataclass(frozen=True)
class BatchItem:
    id: str
    audio: Path  # absolute, or relative to the current directory when the manifest path was
    text: str


@dataclass(frozen=True)
class EngineOptions:
    """How to run: engine "local" or "ray"; the Ray options are ignored by the local engine."""

    engine: str = "local"
    model: str | Path | None = None  # model directory; None: the shipped model
    rationale: str = "auto"  # see Assessor.from_pretrained
    workers: int = 1  # Ray actors, each with its own Assessor (local: must be 1)
    address: str | None = None  # a running Ray cluster ("ray://host:10001", "auto"); None: start a local one
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0


@dataclass
class BatchSummary:
    total: int  # items in the manifest, unusable lines included
    skipped: int  # already assessed in the output before this run
    assessed: int  # new assessments written
    errors: int  # error records written
    load_s: float  # seconds to start the engine and load the models
    assess_s: float  # seconds from models loaded to the last record written

    @property
    def per_second(self) -> float:
        """Items (assessments and errors) finished per second of assessing, model loading excluded."""
        done = self.assessed + self.errors
        return done / self.assess_s if self.assess_s > 0 else 0.0


# ---------------------------------------------------------------------------------------------- manifest and output

@dataclass(frozen=True)
class LineProblem:
    """A manifest line that is not a usable item; it becomes the error record {"id": id, "error": message}."""

    id: str  # the line's id, or "line:N" (N counted from 1) when it has none
    message: str  # names the file and line: "m.jsonl:3: not valid JSON (...)"


@dataclass(frozen=True)
class Manifest:
    items: tuple[BatchItem, ...]  # the usable lines, in order
    problems: tuple[LineProblem, ...]  # the unusable ones, in order

    @property
    def total(self) -> int:
        return len(self.items) + len(self.problems)


def read_manifest(path: str | Path) -> Manifest:
    """The manifest's items and its unusable lines (see the module doc).

    Raises BatchError for a missing or non-UTF-8 file, a manifest without one usable line, or a duplicate id.
    Audio files are not opened here: a missing one becomes that item's error record.
    """
    path = Path(path)
    if not path.is_file():
        raise BatchError(f"manifest not found: {path}")
    parsed, seen = [], set()
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        entry = _parse_line(line, number, path)
        if entry.id in seen:
            raise BatchError(f"{path}:{number}: duplicate id {entry.id!r}")
        seen.add(entry.id)
        parsed.append(entry)
    manifest = Manifest(tuple(e for e in parsed if isinstance(e, BatchItem)),
                        tuple(e for e in parsed if isinstance(e, LineProblem)))
    if not manifest.items:
        raise BatchError(_no_items(path, manifest.problems))
    return manifest


def _no_items(path: Path, problems: tuple[LineProblem, ...]) -> str:
    if not problems:
        return f"manifest {path} has no items (one JSON object per line: id, audio, text)"
    more = f" (and {len(problems) - 1} more unusable lines)" if len(problems) > 1 else ""
    return f"manifest {path} has no usable line: {problems[0].message}{more}"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BatchError(f"{path} is not a UTF-8 text file (JSON lines expected)") from None


def _parse_line(line: str, number: int, path: Path) -> BatchItem | LineProblem:
    """Line `number` of the manifest at `path` as an item, or the problem that makes it unusable."""
    where, fallback_id = f"{path}:{number}", f"line:{number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return LineProblem(fallback_id, f"{where}: not valid JSON ({err.msg})")
    if not isinstance(record, dict):
        return LineProblem(fallback_id, f"{where}: expected a JSON object with {', '.join(MANIFEST_FIELDS)}")
    present = [k for k in MANIFEST_FIELDS if isinstance(record.get(k), (str, int)) and str(record[k]).strip() != ""]
    if len(present) < len(MANIFEST_FIELDS):
        missing = ", ".join(k for k in MANIFEST_FIELDS if k not in present)
        item_id = str(record["id"]) if "id" in present else fallback_id
        return LineProblem(item_id, f"{where}: missing or empty field(s): {missing}")
    audio = Path(str(record["audio"])).expanduser()
    return BatchItem(str(record["id"]), audio if audio.is_absolute() else path.parent / audio, str(record["text"]))


def finished_ids(out: Path) -> set[str]:
    """Ids with an assessment in `out`; its error records and a torn last line are removed so they are redone.

    Raises BatchError when `out` holds a line that is not one of this command's records (a wrong --out).
    """
    if not out.is_file():
        return set()
    kept, done = [], set()
    lines = _read_text(out).splitlines(keepends=True)
    for number, line in enumerate(lines, start=1):
        record = _output_record(line, number == len(lines))
        if record is None:
            raise BatchError(f"{out}:{number} is not an assess-batch record; is --out the right file?")
        if record and "error" not in record:
            kept.append(line)
            done.add(str(record["id"]))
    if len(kept) != len(lines):
        out.write_text("".join(kept), encoding="utf-8")
    return done


def _output_record(line: str, last: bool) -> dict | None:
    """The record on an output line; {} for a blank or torn last line (dropped); None for a foreign line."""
    if not line.strip() or (last and not line.endswith("\n")):
        return {}
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "id" in record else None


# ---------------------------------------------------------------------------------------------- one item

def read_audio(item: BatchItem) -> bytes | dict:
    """The item's audio file as bytes, or its error record when it cannot be read."""
    try:
        return item.audio.read_bytes()
    except FileNotFoundError:
        return error_record(item.id, f"audio file not found: {item.audio}")
    except OSError as err:
        return error_record(item.id, f"cannot read {item.audio}: {err.strerror or err}")


def assess_record(assessor, item_id: str, audio: bytes, text: str, label: str = "the audio file") -> dict:
    """One output line: the assessment with its id, or an error record (never raises for a bad item).

    label names the audio in error messages (the file's path). BLAS runs on one thread, as in a one-CPU Ray
    actor: with several, numpy's float sums change in the last bits and a score can move by a rounding step,
    and both engines must give the same records.
    """
    from threadpoolctl import threadpool_limits

    from ..encoder.audio import BYTES_LABEL, AudioError
    from ..encoder.features.frontend import FrontEndError
    from ..encoder.lexicon import TextError

    try:
        with threadpool_limits(limits=1, user_api="blas"):
            return {"id": item_id, **assessor.assess(audio, text).to_dict()}
    except (AudioError, TextError, FrontEndError) as err:
        return error_record(item_id, str(err).replace(BYTES_LABEL, label))
    except Exception as err:  # a bug or resource failure on one item must not lose the others
        log.exception("assessing %s failed", item_id)
        return error_record(item_id, f"internal error: {type(err).__name__}: {err}")


def error_record(item_id: str, message: str) -> dict:
    return {"id": item_id, "error": message}


# ---------------------------------------------------------------------------------------------- engines

class LocalEngine:
    """One Assessor in this process; items in order."""

    def __init__(self, options: EngineOptions):
        if options.workers != 1:
            raise BatchError("the local engine runs one assessor; use --engine ray for more workers")
        self.options, self.assessor = options, None

    def start(self) -> None:
        from .assessor import Assessor

        self.assessor = Assessor.from_pretrained(self.options.model, rationale=self.options.rationale)

    def records(self, items: Iterable[BatchItem]) -> Iterator[dict]:
        for item in items:
            audio = read_audio(item)
            yield audio if isinstance(audio, dict) else assess_record(self.assessor, item.id, audio, item.text,
                                                                      str(item.audio))

    def close(self) -> None:
        self.assessor = None


class AssessorWorker:
    """The Ray actor's body: loads one Assessor when created, then assesses items sent to it."""

    def __init__(self, model: str | None, rationale: str):
        from .assessor import Assessor

        self.assessor = Assessor.from_pretrained(model, rationale=rationale)

    def ready(self) -> str:
        return self.assessor.model_name

    def assess(self, item_id: str, audio: bytes, text: str, label: str) -> dict:
        return assess_record(self.assessor, item_id, audio, text, label)


class RayEngine:
    """`workers` Ray actors, each with its own Assessor; an item goes to whichever actor is free."""

    def __init__(self, options: EngineOptions):
        if options.workers < 1 or options.cpus_per_worker <= 0 or options.gpus_per_worker < 0:
            raise BatchError("--workers and --cpus-per-worker must be positive, --gpus-per-worker at least 0")
        try:
            import ray  # noqa: F401
        except ImportError:
            raise BatchError("--engine ray needs Ray: pip install 'orthoepy[ray]'") from None
        self.options, self.actors, self.started_ray = options, [], False

    def start(self) -> None:
        import ray

        if not ray.is_initialized():
            self._init_ray()
        model = None if self.options.model is None else str(Path(self.options.model).resolve())
        actor = ray.remote(AssessorWorker).options(num_cpus=self.options.cpus_per_worker,
                                                   num_gpus=self.options.gpus_per_worker)
        self.actors = [actor.remote(model, self.options.rationale) for _ in range(self.options.workers)]
        try:
            ray.get([a.ready.remote() for a in self.actors])
        except ray.exceptions.RayError as err:
            self.close()
            raise BatchError(f"a Ray worker could not load the model: {_first_line(err)}") from err

    def _init_ray(self) -> None:
        import ray

        if self.options.address:
            ray.init(address=self.options.address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, round(self.options.workers * self.options.cpus_per_worker)),
                     num_gpus=None if self.options.gpus_per_worker else 0,
                     include_dashboard=False, log_to_driver=False)
        self.started_ray = True

    def records(self, items: Iterable[BatchItem]) -> Iterator[dict]:
        """Keeps every actor busy with up to two items (one running, one queued); yields in completion order.

        An actor that dies (out of memory, killed) raises Ray's error here; the records written so far are kept,
        so rerunning the command resumes.
        """
        from ray.util import ActorPool

        pool, pending = ActorPool(self.actors), iter(items)
        for _ in range(2 * len(self.actors)):
            yield from self._submit_next(pool, pending)
        while pool.has_next():
            yield pool.get_next_unordered()
            yield from self._submit_next(pool, pending)

    @staticmethod
    def _submit_next(pool, pending: Iterator[BatchItem]) -> Iterator[dict]:
        """Sends the next readable item to the pool; yields error records for unreadable ones on the way."""
        for item in pending:
            audio = read_audio(item)
            if isinstance(audio, dict):
                yield audio
                continue
            pool.submit(lambda actor, job: actor.assess.remote(*job), (item.id, audio, item.text, str(item.audio)))
            return

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self.started_ray:
            ray.shutdown()
            self.started_ray = False


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def make_engine(options: EngineOptions) -> LocalEngine | RayEngine:
    if options.engine not in ENGINES:
        raise BatchError(f"unknown engine {options.engine!r}; expected one of {', '.join(ENGINES)}")
    return LocalEngine(options) if options.engine == "local" else RayEngine(options)


# ---------------------------------------------------------------------------------------------- the run

def run_batch(manifest: str | Path, out: str | Path, options: EngineOptions = EngineOptions(),
              progress: bool = True) -> BatchSummary:
    """Assesses the manifest's items not yet in `out`, appending one JSON line per item (see the module doc).

    The error records of unusable manifest lines come first; models load only when a usable item is left to do.
    Raises BatchError for an unusable manifest (as a whole), output file or engine setting, before any model loads.
    """
    lines = read_manifest(manifest)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = finished_ids(out)
    todo = [item for item in lines.items if item.id not in done]
    engine = make_engine(options)
    started = time.perf_counter()
    if todo:
        engine.start()
    loaded = time.perf_counter()
    try:
        problems = (error_record(p.id, p.message) for p in lines.problems)
        assessed, errors = _write_records(out, chain(problems, engine.records(todo)),
                                          len(lines.problems) + len(todo), progress)
    finally:
        engine.close()
    return BatchSummary(lines.total, len(lines.items) - len(todo), assessed, errors, round(loaded - started, 2),
                        round(time.perf_counter() - loaded, 2))


def _write_records(out: Path, records: Iterable[dict], total: int, progress: bool) -> tuple[int, int]:
    """Appends each record to `out` as one flushed JSON line, logging error records; (assessed, errors) written."""
    assessed = errors = 0
    with out.open("a", encoding="utf-8") as sink, tqdm(total=total, desc="assess", unit="utt",
                                                       disable=not progress) as bar:
        for record in records:
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            if "error" in record:
                errors += 1
                log.warning("%s: %s", record["id"], record["error"])
            else:
                assessed += 1
            bar.update()
    return assessed, errors
