"""The acoustic front-end: audio + canonical phones -> alignment -> per-phone feature groups + utterance pool."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..alignment import ForcedAligner
from ..audio import Audio
from ..phoneset import CanonicalPhone, canonical_phones
from .records import FeatureBlock, GroupOutput, HeardPhone

PHONE_GROUPS = ("likelihood_gop", "posterior_gop", "whisper", "prosody")  # the default groups
# groups that need a trained model of their own (given in the config); never on by default
OPTIONAL_GROUPS = ("indomain_gop",)
ALL_GROUPS = PHONE_GROUPS + OPTIONAL_GROUPS
FEATURE_VERSION = "1"  # bump when extraction changes, so cached features are recomputed


class FrontEndError(ValueError):
    """The front-end was configured wrongly or given inconsistent input."""


@dataclass(frozen=True)
class FrontEndConfig:
    groups: tuple[str, ...] = PHONE_GROUPS
    utterance_pool: bool = True
    whisper_size: str = "base"  # "base" or "tiny.en"
    version: str = FEATURE_VERSION
    ctc_context_frames: int = 1  # frames added on each side of a phone when pooling CTC posteriors
    ctc_lag_frames: int = 0  # frames the CTC pooling window is moved later
    indomain_gop_dir: str | None = None  # the in-domain recogniser's folder (group `indomain_gop`)

    def __post_init__(self) -> None:
        unknown = set(self.groups) - set(ALL_GROUPS)
        if unknown:
            raise FrontEndError(f"unknown feature group(s) {sorted(unknown)}; choose from {', '.join(ALL_GROUPS)}")
        if "indomain_gop" in self.groups and not self.indomain_gop_dir:
            raise FrontEndError("the indomain_gop group needs its recogniser: set indomain_gop_dir "
                                "(a model directory carries it in indomain_gop/)")

    def key(self) -> str:
        """A short hash of everything that changes the features: the cache key's configuration half.

        Fields added after version 1 count only when they differ from their defaults, so caches made
        before they existed stay valid.
        """
        defaults = FrontEndConfig()
        fields = {k: v for k, v in asdict(self).items() if k in _V1_FIELDS or v != getattr(defaults, k)}
        if self.indomain_gop_dir:  # the recogniser's weights, not where they lie, change the features
            fields["indomain_gop_dir"] = _file_digest(Path(self.indomain_gop_dir) / "indomain_gop.pt")
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


_V1_FIELDS = ("groups", "utterance_pool", "whisper_size", "version")


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path.is_file() else f"missing:{path}"


@dataclass
class PhoneFeatures:
    """Everything the front-end extracted from one utterance."""

    phones: list[CanonicalPhone]
    starts: np.ndarray  # (n,) seconds
    ends: np.ndarray  # (n,) seconds
    alignment_fallback: bool
    alignment_note: str
    blocks: dict[str, FeatureBlock]  # per-phone groups, each (n, d)
    heard: list[HeardPhone] | None  # most likely phone heard per canonical phone
    utterance: FeatureBlock | None  # (1, m) handcrafted utterance-level pool
    duration: float
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def select_words(self, words: list[int]) -> "PhoneFeatures":
        """The features of these words only (word indices, ascending), renumbered 0..len(words)-1 in that order.
        The utterance-level pool is kept as it was computed, over the whole recording."""
        position = {w: j for j, w in enumerate(words)}
        rows = self.rows_of(words)
        return replace(self, phones=[replace(self.phones[i], word_index=position[self.phones[i].word_index]) for i in rows],
                       starts=self.starts[rows], ends=self.ends[rows],
                       blocks={g: FeatureBlock(b.names, b.values[rows]) for g, b in self.blocks.items()},
                       heard=None if self.heard is None else [self.heard[i] for i in rows])

    def rows_of(self, words) -> list[int]:
        """Indices of the phones (rows of every per-phone array) that belong to these words, in phone order."""
        wanted = set(words)
        return [i for i, p in enumerate(self.phones) if p.word_index in wanted]

    def phone_matrix(self, groups: tuple[str, ...] | None = None) -> FeatureBlock:
        """The chosen groups' per-phone features side by side, names prefixed by group."""
        chosen = [g for g in (groups or tuple(self.blocks)) if g in self.blocks]
        names = tuple(f"{g}.{n}" for g in chosen for n in self.blocks[g].names)
        values = np.concatenate([self.blocks[g].values for g in chosen], axis=1) if chosen else np.zeros((len(self.phones), 0), np.float32)
        return FeatureBlock(names, values.astype(np.float32))

    def save(self, path) -> None:
        """Write to a path, or to a binary file object (a BytesIO, for features sent between processes)."""
        meta = {
            "word_phones": _word_phones(self.phones), "fallback": self.alignment_fallback,
            "note": self.alignment_note, "duration": self.duration, "timings": self.timings,
            "names": {g: list(b.names) for g, b in self.blocks.items()},
            "heard": None if self.heard is None else [[h.base, h.probability, [list(n) for n in h.nbest]]
                                                      for h in self.heard],
            "utterance_names": None if self.utterance is None else list(self.utterance.names),
        }
        arrays = {f"group.{g}": b.values for g, b in self.blocks.items()}
        if self.utterance is not None:
            arrays["utterance"] = self.utterance.values
        if hasattr(path, "write"):
            np.savez(path, meta=json.dumps(meta), starts=self.starts, ends=self.ends, **arrays)
            return
        with open(path, "wb") as fh:  # a file handle keeps numpy from appending .npz to the name
            np.savez(fh, meta=json.dumps(meta), starts=self.starts, ends=self.ends, **arrays)

    @staticmethod
    def read_fallback(path: str | Path) -> bool:
        """Whether a saved utterance's alignment fell back, reading only its metadata (npz members load lazily)."""
        with np.load(path) as data:
            return bool(json.loads(str(data["meta"]))["fallback"])

    @classmethod
    def load(cls, path: str | Path) -> "PhoneFeatures":
        with np.load(path) as data:
            meta = json.loads(str(data["meta"]))
            blocks = {g: FeatureBlock(tuple(n), data[f"group.{g}"]) for g, n in meta["names"].items()}
            utterance = None if meta["utterance_names"] is None else FeatureBlock(tuple(meta["utterance_names"]), data["utterance"])
            starts, ends = data["starts"], data["ends"]
        heard = None if meta["heard"] is None else [_heard_phone(h) for h in meta["heard"]]
        return cls(canonical_phones(meta["word_phones"]), starts, ends, meta["fallback"], meta["note"],
                   blocks, heard, utterance, meta["duration"], meta["timings"])


def _heard_phone(saved: list) -> HeardPhone:
    """[base, probability] (files written before the n-best list) or [base, probability, [[base, p], ...]]."""
    nbest = tuple((str(b), float(p)) for b, p in saved[2]) if len(saved) > 2 else ()
    return HeardPhone(str(saved[0]), float(saved[1]), nbest)


def _word_phones(phones: list[CanonicalPhone]) -> list[list[str]]:
    words: list[list[str]] = []
    for p in phones:
        if p.word_index == len(words):
            words.append([])
        words[-1].append(p.symbol)
    return words


class FrontEnd:
    """Loads the aligner and the enabled feature groups once; `extract` runs them on one utterance."""

    def __init__(self, config: FrontEndConfig | None = None):
        self.config = config or FrontEndConfig()
        self.aligner = ForcedAligner()
        self.groups: dict = {}
        for name in self.config.groups:
            self.groups[name] = _build_group(name, self.config, self.groups)
        self.pool = _build_pool() if self.config.utterance_pool else None

    def extract(self, audio: Audio, phones: list[CanonicalPhone],
                chunks: list[tuple[float, float, int, int]] | None = None,
                spare_cuts: list[tuple[int, float]] | None = None,
                anchors: list[tuple[float, float] | None] | None = None) -> PhoneFeatures:
        """chunks: (start s, end s, first word, end word) stretches aligned separately (verified pauses),
        spare_cuts: (word, time s) where a chunk whose alignment fails may be split, and anchors: per word where a
        transcription heard it (s), to split a chunk whose alignment misplaces its words (ForcedAligner.align_chunks);
        None aligns the whole recording at once, as the training features were."""
        if not phones:
            raise FrontEndError("no canonical phones to align")
        timings: dict[str, float] = {}
        alignment = _timed(timings, "alignment", self.aligner.align_chunks, audio, phones, chunks or [],
                           spare_cuts or [], anchors)
        outputs = {name: _timed(timings, name, group.extract, audio, alignment) for name, group in self.groups.items()}
        utterance = None
        if self.pool is not None:
            names, values = _timed(timings, "utterance_pool", self.pool.extract, audio, alignment, outputs)
            utterance = FeatureBlock(tuple(names), np.asarray(values, np.float32).reshape(1, -1))
        return PhoneFeatures(
            phones=list(phones),
            starts=np.array([s.start for s in alignment.segments], np.float32),
            ends=np.array([s.end for s in alignment.segments], np.float32),
            alignment_fallback=alignment.fallback, alignment_note=alignment.note,
            blocks={name: out.block for name, out in outputs.items()},
            heard=_heard(outputs), utterance=utterance, duration=audio.duration, timings=timings,
        )


def _heard(outputs: dict[str, GroupOutput]) -> list[HeardPhone] | None:
    return next((out.heard for out in outputs.values() if out.heard is not None), None)


def _timed(timings: dict[str, float], name: str, fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    timings[name] = time.perf_counter() - start
    return result


def _build_group(name: str, config: FrontEndConfig, built: dict):
    # imported here so a disabled group's heavy dependencies are never loaded
    if name == "indomain_gop":
        from .indomain_gop import InDomainGOP
        # one Whisper model in memory when both groups are on
        return InDomainGOP(config.indomain_gop_dir, whisper=built.get("whisper"), whisper_size=config.whisper_size)
    if name == "likelihood_gop":
        from .likelihood_gop import LikelihoodGOP
        return LikelihoodGOP()
    if name == "posterior_gop":
        from .posterior_gop import PosteriorGOP
        return PosteriorGOP(config.ctc_context_frames, config.ctc_lag_frames)
    if name == "whisper":
        from .whisper import WhisperFeatures
        return WhisperFeatures(model=config.whisper_size)
    from .prosody import ProsodyFeatures
    return ProsodyFeatures()


def _build_pool():
    from .utterance_pool import UtterancePool
    return UtterancePool()
