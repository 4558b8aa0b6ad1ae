"""HTTP service: POST /v1/assess (multipart audio + text) -> the assessment JSON, plus a learner page at /.

Requests pass a bounded admission counter (503 + Retry-After when full) into a pool of workers, each owning its
own Assessor because the aligner is not thread-safe: processes (`processes=True`, what `orthoepy serve` uses), so
N workers really assess N recordings at once, or threads in this process (the default for tests and embedding,
where the factory may be any callable; measured in docs/robustness.md to give no speed-up, because the
assessment holds the GIL much of the time). Every 4xx/5xx answer, including unknown routes
(404), wrong methods (405) and unexpected failures (500), is JSON `{"error": "..."}`.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import math
import re
import queue
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Protocol

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..encoder.audio import MAX_DURATION_S, MIN_DURATION_S, AudioError
from ..encoder.features.frontend import FrontEndError
from ..encoder.lexicon import TextError
from ..rationalizer.bands import band_table
from .assessor import Assessment
from .schema import RESPONSE_SCHEMA_VERSION, response_schema

log = logging.getLogger("orthoepy.service")

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSESS_PATH = "/v1/assess"
DEFAULT_MAX_UPLOAD_BYTES = 64 * 2**20  # a 5 min stereo 48 kHz 16-bit WAV is ~55 MiB
DEFAULT_MAX_TEXT_CHARS = 6000  # comfortably more than 5 min of read speech
DEFAULT_MAX_QUEUE = 16
DEFAULT_WORKERS = 1
WORKER_START_TIMEOUT_S = 300.0
INPUT_ERRORS = (AudioError, TextError, FrontEndError)
OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


class AssessorLike(Protocol):
    model_name: str

    def assess(self, audio: Any, text: str, sample_rate: int | None = None) -> Assessment: ...


AssessorFactory = Callable[[], AssessorLike]


def default_assessor_factory() -> AssessorLike:
    from .assessor import Assessor

    return Assessor.from_pretrained(warm=True)  # the first request then costs what the others do


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_text_chars: int
    max_queue: int  # requests waiting beyond the `workers` being assessed
    workers: int
    min_audio_seconds: float = MIN_DURATION_S
    max_audio_seconds: float = MAX_DURATION_S


# ---------------------------------------------------------------------------------------------- worker pool

class AssessorPool:
    """N threads, each loading its own Assessor, taking jobs from one unbounded queue (admission bounds it)."""

    def __init__(self, factory: AssessorFactory, workers: int):
        self.factory, self.workers = factory, workers
        self.jobs: queue.Queue = queue.Queue()
        self.threads: list[threading.Thread] = []
        self.model_name: str | None = None
        self.ready = False
        self.seconds_per_job = 1.0  # running estimate, for Retry-After

    def start(self, timeout: float = WORKER_START_TIMEOUT_S) -> None:
        """Start the workers and wait until each has loaded its Assessor; raise if any failed."""
        loaded: queue.Queue = queue.Queue()
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, args=(loaded,), name=f"assessor-{i}", daemon=True)
            thread.start()
            self.threads.append(thread)
        for _ in range(self.workers):
            try:
                error = loaded.get(timeout=timeout)
            except queue.Empty:
                error = TimeoutError(f"no assessor loaded within {timeout:.0f} s")
            if error is not None:
                self.close()
                raise RuntimeError(f"an assessor worker failed to load its model: {error}") from error
        self.ready = True

    def submit(self, audio: bytes, text: str) -> Future:
        future: Future = Future()
        self.jobs.put((future, audio, text))
        return future

    def close(self) -> None:
        self.ready = False
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(timeout=30)
        self.threads.clear()

    def _work(self, loaded: queue.Queue) -> None:
        try:
            assessor = self.factory()
        except Exception as err:  # reported to start(), which raises it
            loaded.put(err)
            return
        self.model_name = self.model_name or getattr(assessor, "model_name", "unknown")
        loaded.put(None)
        while (job := self.jobs.get()) is not None:
            future, audio, text = job
            if future.set_running_or_notify_cancel():
                self._run(assessor, future, audio, text)

    def _run(self, assessor: AssessorLike, future: Future, audio: bytes, text: str) -> None:
        started = time.perf_counter()
        try:
            future.set_result(assessor.assess(audio, text))
        except BaseException as err:
            future.set_exception(err)
        self.seconds_per_job = 0.8 * self.seconds_per_job + 0.2 * (time.perf_counter() - started)


class ProcessAssessorPool:
    """N processes, each loading its own Assessor at start; jobs go to whichever is free.

    The factory must be picklable (a module-level function or functools.partial of one): it is sent to the
    processes, which are spawned (not forked: torch and onnxruntime threads in this process do not survive a fork).
    Each process holds its own copy of the models (~1 GB each with the rationalizer).
    """

    def __init__(self, factory: AssessorFactory, workers: int):
        self.factory, self.workers = factory, workers
        self.executor: ProcessPoolExecutor | None = None
        self.model_name: str | None = None
        self.ready = False
        self.seconds_per_job = 1.0  # running estimate, for Retry-After

    def start(self, timeout: float = WORKER_START_TIMEOUT_S) -> None:
        """Spawn the processes and wait until every one has loaded its Assessor; raise if any failed."""
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(self.workers)
        self.executor = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_load_process_assessor,
                                            initargs=(self.factory, barrier, timeout))
        # one probe per process: a process runs a job only after its initializer, which waits for all to load
        probes = [self.executor.submit(_process_model_name) for _ in range(self.workers)]
        try:
            names = [probe.result(timeout=timeout + 30) for probe in probes]
        except Exception as err:
            self.close()
            raise RuntimeError(f"an assessor worker process failed to start: {err}") from err
        failures = [name for name in names if name.startswith(LOAD_FAILED)]
        if failures:
            self.close()
            raise RuntimeError(f"an assessor worker failed to load its model: {failures[0][len(LOAD_FAILED):]}")
        self.model_name, self.ready = names[0], True

    def submit(self, audio: bytes, text: str) -> Future:
        future = self.executor.submit(_assess_in_process, audio, text)
        future.add_done_callback(self._observe)
        return future

    def _observe(self, future: Future) -> None:
        if not future.cancelled() and future.exception() is None:
            seconds = sum(future.result().timings.values())
            self.seconds_per_job = 0.8 * self.seconds_per_job + 0.2 * seconds

    def close(self) -> None:
        self.ready = False
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None


LOAD_FAILED = "load failed: "
_process_assessor: AssessorLike | None = None  # the Assessor of this worker process
_process_load_error: str | None = None


def _load_process_assessor(factory: AssessorFactory, barrier: Any, timeout: float) -> None:
    """Initializer of a worker process: load the Assessor (or note why not), then wait for the other workers."""
    global _process_assessor, _process_load_error
    try:
        _process_assessor = factory()
    except Exception as err:  # reported by the start-up probe, which the parent turns into a clear error
        _process_load_error = f"{type(err).__name__}: {err}"
    barrier.wait(timeout)


def _process_model_name() -> str:
    if _process_load_error is not None:
        return LOAD_FAILED + _process_load_error
    return getattr(_process_assessor, "model_name", "unknown")


def _assess_in_process(audio: bytes, text: str) -> Assessment:
    return _process_assessor.assess(audio, text)


class Admission:
    """Counts requests in the service (assessing + waiting); only the event loop thread touches it."""

    def __init__(self, capacity: int):
        self.capacity, self.pending = capacity, 0

    def try_enter(self) -> bool:
        if self.pending >= self.capacity:
            return False
        self.pending += 1
        return True

    def leave(self) -> None:
        self.pending -= 1


# ---------------------------------------------------------------------------------------------- upload limit

class UploadTooLarge(Exception):
    pass


class UploadLimitMiddleware:
    """413 for a request body over the limit: from Content-Length up front, else by counting streamed bytes.

    When the count trips mid-body, the form parser's own error response (FastAPI turns parse failures into a
    400) is replaced by the 413, so the client sees why.
    """

    def __init__(self, app: Any, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            return await self._reject(send)
        state = {"received": 0, "tripped": False, "started": False}

        async def counting_receive() -> dict:
            message = await receive()
            state["received"] += len(message.get("body", b""))
            if state["received"] > self.max_bytes:
                state["tripped"] = True
                raise UploadTooLarge()
            return message

        async def guarded_send(message: dict) -> None:
            if state["tripped"]:
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await self._reject(send)
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except UploadTooLarge:
            if not state["started"]:
                await self._reject(send)

    async def _reject(self, send: Callable) -> None:
        message = f"request body is larger than the limit of {self.max_bytes} bytes ({self.max_bytes / 2**20:.1f} MiB)"
        await JSONResponse({"error": message}, status_code=413)({"type": "http"}, _no_receive, send)


async def _no_receive() -> dict:
    return {"type": "http.disconnect"}


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# ---------------------------------------------------------------------------------------------- the app

def create_app(assessor_factory: AssessorFactory = default_assessor_factory,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, max_queue: int = DEFAULT_MAX_QUEUE,
               workers: int = DEFAULT_WORKERS, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
               processes: bool = False) -> FastAPI:
    """The service app. Workers load their Assessors at startup (the lifespan; use TestClient as a context).

    processes: each worker is a process with its own models, so `workers` assessments run at once (the factory
    must then be picklable); else worker threads in this process. Raises ValueError for non-positive limits.
    """
    if workers < 1 or max_queue < 0 or max_upload_bytes < 1 or max_text_chars < 1:
        raise ValueError("workers and limits must be positive (max_queue may be 0)")
    limits = Limits(max_upload_bytes, max_text_chars, max_queue, workers)
    pool = (ProcessAssessorPool if processes else AssessorPool)(assessor_factory, workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(pool.start)
        try:
            yield
        finally:
            await asyncio.to_thread(pool.close)

    app = FastAPI(title="orthoepy", version=_package_version(), lifespan=lifespan,
                  description="Pronunciation assessment of L2 English speech: scores and a phone-level diagnosis.")
    app.state.limits, app.state.pool, app.state.admission = limits, pool, Admission(workers + max_queue)
    app.add_middleware(UploadLimitMiddleware, max_bytes=max_upload_bytes)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _add_routes(app)
    return app


def _add_routes(app: FastAPI) -> None:
    limits: Limits = app.state.limits
    pool: AssessorPool | ProcessAssessorPool = app.state.pool
    admission: Admission = app.state.admission

    @app.get("/", include_in_schema=False)
    async def learner_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/healthz", summary="Liveness and readiness")
    async def healthz() -> dict:
        return {"status": "ok" if pool.ready else "starting", "busy": admission.pending, "capacity": admission.capacity}

    @app.get("/v1/info", summary="Model, schema version, limits, package version and the score bands")
    async def info() -> dict:
        """bands: rationalizer.bands.band_table(), the edges, band words and colours the learner page uses."""
        return {"model": pool.model_name, "schema_version": RESPONSE_SCHEMA_VERSION,
                "version": _package_version(), "limits": asdict(limits), "bands": band_table()}

    @app.post(ASSESS_PATH, summary="Assess one recording against the text read", responses=_assess_responses())
    async def assess(audio: UploadFile = File(..., description="the recording: WAV, FLAC, OGG or MP3"),
                     text: str = Form(..., description="the text the speaker read")) -> JSONResponse:
        if problem := _text_problem(text, limits.max_text_chars):
            return _error(422, problem)
        payload = await audio.read()
        if not pool.ready:
            return _error(503, "the service is starting; try again shortly", retry_after=5)
        if not admission.try_enter():
            return _error(503, f"the service is busy ({admission.capacity} requests in progress or queued); "
                               "try again later", retry_after=_retry_after(pool, admission))
        try:
            result = await asyncio.wrap_future(pool.submit(payload, text))
        except INPUT_ERRORS as err:
            return _error(422, _without_object_reprs(str(err)))
        except Exception:
            log.exception("assessment failed")
            return _error(500, "internal error while assessing this recording; the server log has the details")
        finally:
            admission.leave()
        return JSONResponse(result.to_dict())


def _text_problem(text: str, max_chars: int) -> str | None:
    if not text.strip():
        return "text is empty: give the sentence the speaker read"
    if len(text) > max_chars:
        return f"text is too long: {len(text)} characters (at most {max_chars})"
    return None


def _without_object_reprs(message: str) -> str:
    # libsndfile's decode error names the in-memory buffer ("<_io.BytesIO object at 0x...>"): noise to a client
    return OBJECT_REPR.sub("the upload", message)


def _retry_after(pool: AssessorPool | ProcessAssessorPool, admission: Admission) -> int:
    return max(1, math.ceil(pool.seconds_per_job * admission.pending / pool.workers))


def _error(status: int, message: str, retry_after: int | None = None, headers: dict | None = None) -> JSONResponse:
    headers = dict(headers or {}) | ({"Retry-After": str(retry_after)} if retry_after is not None else {})
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors (404 unknown route, 405 wrong method, ...) in the service's `{"error": ...}` shape."""
    where = f"{request.method} {request.url.path}"
    messages = {404: f"not found: {where} (routes: POST {ASSESS_PATH}, GET /healthz, GET /v1/info, GET /)",
                405: f"method not allowed: {where}" + (f" (allowed: {exc.headers['Allow']})"
                                                      if exc.headers and "Allow" in exc.headers else "")}
    return _error(exc.status_code, messages.get(exc.status_code, str(exc.detail)), headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Any exception a route did not handle: logged with its traceback, answered as a JSON 500."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal error; the server log has the details")


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a missing/invalid field, reworded as `{"error": ...}` like every other client error."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body", "query"))
        if error.get("type") == "missing":
            problems.append(f"form field '{field}' is missing or empty")
        else:
            problems.append(f"form field '{field}': {error.get('msg', 'invalid')}" if field else error.get("msg", "invalid"))
    hint = " (POST multipart/form-data with an 'audio' file and a 'text' field)" if request.url.path == ASSESS_PATH else ""
    return _error(422, "; ".join(problems) + hint)


def _assess_responses() -> dict:
    body = {k: v for k, v in response_schema().items() if k not in ("$schema", "$id")}
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}

    def described(text: str) -> dict:
        return {"description": text, "content": {"application/json": {"schema": error}}}

    return {200: {"description": "the assessment", "content": {"application/json": {"schema": body}}},
            413: described("request body over the upload limit"),
            422: described("unusable audio or text (unreadable, silent, too short/long, empty text, ...)"),
            503: described("queue full or starting; see the Retry-After header")}


def _package_version() -> str:
    try:
        return metadata.version("orthoepy")
    except metadata.PackageNotFoundError:
        return "unknown"
