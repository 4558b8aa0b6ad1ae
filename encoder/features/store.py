"""Feature store: extract a corpus split in parallel, cache by (configuration, audio content), write a manifest."""
from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from tqdm import tqdm

from ..audio import AudioError, load_audio
from ..corpus import Utterance
from ..phoneset import canonical_phones
from .frontend import FrontEnd, FrontEndConfig, PhoneFeatures

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ExtractionJob:
    utt_id: str
    audio_path: str
    word_phones: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ExtractionResult:
    utt_id: str
    cache_file: str | None
    fallback: bool
    error: str | None


def default_cache_dir() -> Path:
    return Path(os.environ.get("ORTHOEPY_CACHE", Path.home() / ".cache" / "orthoepy")) / "features"


def content_key(audio_path: str | Path, word_phones: Iterable[Iterable[str]]) -> str:
    """Hash of the audio bytes and the canonical phones: what the features depend on besides the configuration."""
    digest = hashlib.sha256(Path(audio_path).read_bytes())
    digest.update(json.dumps([list(w) for w in word_phones]).encode())
    return digest.hexdigest()[:32]


def extract_utterances(
    utterances: list[Utterance], out_dir: str | Path, config: FrontEndConfig | None = None,
    nj: int | None = None, cache_dir: str | Path | None = None, progress: bool = True,
    engine: str = "local", address: str | None = None,
) -> dict:
    """Features of every utterance into out_dir/utts/<utt_id>.npz plus out_dir/manifest.json; returns the manifest.

    engine: "local" (nj processes here) or "ray" (nj Ray actors, each with its own front-end, on a local Ray or
    the cluster at `address`; the driver sends the audio bytes and writes the returned features, so cluster nodes
    need neither the corpus nor the cache). Both give the same files. Raises ValueError for an unknown engine.
    """
    if engine not in ("local", "ray"):
        raise ValueError(f"unknown engine {engine!r}: choose local or ray")
    config = config or FrontEndConfig()
    out_dir, cache = Path(out_dir), Path(cache_dir or default_cache_dir()) / config.key()
    (out_dir / "utts").mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    jobs = [ExtractionJob(u.utt_id, str(u.audio_path), tuple(w.phones for w in u.words)) for u in utterances]
    results = list(_run_jobs(jobs, cache, config, nj or os.cpu_count() or 1, progress, engine, address))
    for r in results:
        if r.cache_file:
            _place(Path(r.cache_file), out_dir / "utts" / f"{r.utt_id}.npz")
    manifest = _manifest(config, results, utterances)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _run_jobs(jobs: list[ExtractionJob], cache: Path, config: FrontEndConfig, nj: int, progress: bool,
              engine: str = "local", address: str | None = None) -> Iterator[ExtractionResult]:
    cached, todo = [], []
    for job in jobs:
        path = cache / f"{content_key(job.audio_path, job.word_phones)}.npz"
        (cached if path.exists() else todo).append((job, path))
    yield from (ExtractionResult(j.utt_id, str(p), PhoneFeatures.read_fallback(p), None) for j, p in cached)
    if not todo:
        return
    bar = tqdm(total=len(todo), desc=f"features ({len(cached)} cached)", unit="utt", disable=not progress)
    if engine == "ray":
        for result in _ray_results(todo, config, nj, address):
            yield result
            bar.update()
    elif nj == 1:
        _init_worker(config)
        for item in todo:
            yield _extract_one(item)
            bar.update()
    else:
        with multiprocessing.get_context("spawn").Pool(nj, initializer=_init_worker, initargs=(config,)) as pool:
            for result in pool.imap_unordered(_extract_one, todo, chunksize=4):
                yield result
                bar.update()
    bar.close()


_worker_frontend: FrontEnd | None = None


def _init_worker(config: FrontEndConfig) -> None:
    global _worker_frontend  # one front-end per worker process: models load once, not per utterance
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _worker_frontend = FrontEnd(config)


def _extract_one(item: tuple[ExtractionJob, Path]) -> ExtractionResult:
    job, path = item
    try:
        audio = load_audio(job.audio_path)
        features = _worker_frontend.extract(audio, canonical_phones([list(w) for w in job.word_phones]))
    except (AudioError, ValueError) as err:
        return ExtractionResult(job.utt_id, None, False, f"{type(err).__name__}: {err}")
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    features.save(tmp)
    tmp.replace(path)  # atomic: a crash never leaves a half-written cache entry
    return ExtractionResult(job.utt_id, str(path), features.alignment_fallback, None)


class FeatureActor:
    """A Ray actor's body: one front-end, loaded once; features of audio bytes come back as .npz bytes."""

    def __init__(self, config: FrontEndConfig):
        _init_worker(config)

    def extract(self, job: ExtractionJob, audio: bytes) -> tuple[str, bytes | None, bool, str | None]:
        try:
            features = _worker_frontend.extract(load_audio(audio), canonical_phones([list(w) for w in job.word_phones]))
        except (AudioError, ValueError) as err:
            return job.utt_id, None, False, f"{type(err).__name__}: {err}"
        buffer = io.BytesIO()
        features.save(buffer)
        return job.utt_id, buffer.getvalue(), features.alignment_fallback, None


def _ray_results(todo: list[tuple[ExtractionJob, Path]], config: FrontEndConfig, workers: int,
                 address: str | None) -> Iterator[ExtractionResult]:
    """Extraction on Ray actors (one CPU each); results written to the cache here, in completion order."""
    import ray
    from ray.util import ActorPool

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, log_to_driver=False, **({} if address else {"num_cpus": workers,
                                                                                "include_dashboard": False}))
    try:
        actor = ray.remote(num_cpus=1)(FeatureActor)
        pool = ActorPool([actor.remote(config) for _ in range(workers)])
        paths = {job.utt_id: path for job, path in todo}
        work = ((job, Path(job.audio_path).read_bytes()) for job, _ in todo)
        for utt_id, data, fallback, error in pool.map_unordered(lambda a, item: a.extract.remote(*item), work):
            if data is None:
                yield ExtractionResult(utt_id, None, False, error)
                continue
            tmp = paths[utt_id].with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(paths[utt_id])
            yield ExtractionResult(utt_id, str(paths[utt_id]), fallback, None)
    finally:
        if started_here:
            ray.shutdown()


def _place(src: Path, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _manifest(config: FrontEndConfig, results: list[ExtractionResult], utterances: list[Utterance]) -> dict:
    done = sorted(r.utt_id for r in results if r.cache_file)
    sample = PhoneFeatures.load(next(Path(r.cache_file) for r in results if r.cache_file)) if done else None
    return {
        "config": {**asdict(config), "groups": list(config.groups)}, "config_key": config.key(),
        "utterances": done,
        "splits": {u.utt_id: u.split for u in utterances if u.utt_id in set(done)},
        "groups": {} if sample is None else {g: len(b.names) for g, b in sample.blocks.items()},
        "utterance_features": 0 if sample is None or sample.utterance is None else len(sample.utterance.names),
        "fallbacks": sorted(r.utt_id for r in results if r.fallback),
        "failures": {r.utt_id: r.error for r in sorted(results, key=lambda r: r.utt_id) if r.error},
    }


class FeatureStore:
    """Read side of an extracted directory: manifest plus one PhoneFeatures per utterance."""

    def __init__(self, out_dir: str | Path):
        self.root = Path(out_dir)
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            raise FileNotFoundError(f"{self.root} holds no {MANIFEST}: run `orthoepy features` first")
        self.manifest = json.loads(manifest.read_text())

    @property
    def utt_ids(self) -> list[str]:
        return list(self.manifest["utterances"])

    def load(self, utt_id: str) -> PhoneFeatures:
        return PhoneFeatures.load(self.root / "utts" / f"{utt_id}.npz")

    def __iter__(self) -> Iterator[tuple[str, PhoneFeatures]]:
        return ((u, self.load(u)) for u in self.utt_ids)

    def __len__(self) -> int:
        return len(self.manifest["utterances"])
