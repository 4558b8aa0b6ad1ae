"""speechocean762 corpus: typed utterance records with their labels, and the speaker-disjoint dev split.

Two layouts are read:
- the standard corpus directory (``resource/scores.json``, ``train/`` and ``test/`` Kaldi-style lists, ``WAVE/``);
- a flat directory with ``scores.json`` (each entry carrying ``split``) and ``<utt_id>.flac|.wav`` beside it,
  as in the 32-utterance test fixture.
Absent label fields stay None: nothing is invented.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .phoneset import CanonicalPhone, canonical_phones

SPLITS = ("train", "dev", "test")
DEV_SPEAKER_SHARE = 0.10
SENTENCE_ASPECTS = ("accuracy", "completeness", "fluency", "prosodic", "total")
WORD_ASPECTS = ("accuracy", "stress", "total")


class CorpusError(ValueError):
    """The corpus directory is missing or malformed; the message says what to fix."""


@dataclass(frozen=True)
class WordLabel:
    text: str
    phones: tuple[str, ...]
    phone_accuracy: tuple[float, ...] | None
    accuracy: float | None
    stress: float | None
    total: float | None


@dataclass(frozen=True)
class SentenceLabels:
    accuracy: float | None
    completeness: float | None
    fluency: float | None
    prosodic: float | None
    total: float | None


@dataclass(frozen=True)
class Utterance:
    utt_id: str
    speaker: str
    split: str  # train, dev or test
    audio_path: Path
    text: str
    words: tuple[WordLabel, ...]
    sentence: SentenceLabels

    @property
    def canonical_phones(self) -> list[CanonicalPhone]:
        return canonical_phones([list(w.phones) for w in self.words])

    @property
    def phone_accuracy(self) -> list[float] | None:
        if any(w.phone_accuracy is None for w in self.words):
            return None
        return [a for w in self.words for a in w.phone_accuracy]


def resolve_corpus_dir(corpus_dir: str | Path | None) -> Path:
    """The corpus directory from the argument or $SO762_DIR, checked to hold a scores.json."""
    raw = corpus_dir or os.environ.get("SO762_DIR")
    if not raw:
        raise CorpusError("no corpus directory: pass --corpus DIR or set SO762_DIR")
    path = Path(raw).expanduser()
    if not (path / "resource" / "scores.json").is_file() and not (path / "scores.json").is_file():
        raise CorpusError(f"{path} is not a speechocean762 directory (no resource/scores.json or scores.json)")
    return path


def load_corpus(corpus_dir: str | Path | None = None, split: str | None = None) -> list[Utterance]:
    """All utterances of the corpus (or of one split: train, dev, test), sorted by utterance id."""
    if split is not None and split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    root = resolve_corpus_dir(corpus_dir)
    utterances = _load_standard(root) if (root / "resource" / "scores.json").is_file() else _load_flat(root)
    utterances = _carve_dev(utterances)
    if split is not None:
        utterances = [u for u in utterances if u.split == split]
    return sorted(utterances, key=lambda u: u.utt_id)


def is_dev_speaker(speaker: str, share: float = DEV_SPEAKER_SHARE) -> bool:
    """Whether a train speaker belongs to dev: a hash threshold, so any subset of the corpus agrees with the whole.

    The salt was picked once (before any model existed) so the full corpus gets 12 of 125 train speakers.
    """
    digest = hashlib.sha1(f"orthoepy-dev-6:{speaker}".encode()).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF < share


def _carve_dev(utterances: list[Utterance]) -> list[Utterance]:
    return [_with_split(u, "dev") if u.split == "train" and is_dev_speaker(u.speaker) else u for u in utterances]


def _with_split(utt: Utterance, split: str) -> Utterance:
    return Utterance(utt.utt_id, utt.speaker, split, utt.audio_path, utt.text, utt.words, utt.sentence)


def _load_standard(root: Path) -> list[Utterance]:
    scores = _read_scores(root / "resource" / "scores.json")
    out = []
    for split in ("train", "test"):
        wav_scp = _read_kaldi_map(root / split / "wav.scp")
        utt2spk = _read_kaldi_map(root / split / "utt2spk")
        for utt_id, rel in wav_scp.items():
            if utt_id not in scores:
                raise CorpusError(f"{utt_id} is in {split}/wav.scp but has no entry in resource/scores.json")
            speaker = utt2spk.get(utt_id, _speaker_from_id(utt_id))
            out.append(_utterance(utt_id, speaker, split, root / rel, scores[utt_id]))
    return out


def _load_flat(root: Path) -> list[Utterance]:
    out = []
    for utt_id, entry in _read_scores(root / "scores.json").items():
        audio = next((root / f"{utt_id}{ext}" for ext in (".flac", ".wav", ".WAV") if (root / f"{utt_id}{ext}").exists()), None)
        if audio is None:
            raise CorpusError(f"no audio for {utt_id} in {root} (expected {utt_id}.flac or .wav)")
        split = entry.get("split")
        if split not in ("train", "test"):
            raise CorpusError(f"{utt_id}: a flat corpus entry needs split 'train' or 'test', got {split!r}")
        out.append(_utterance(utt_id, _speaker_from_id(utt_id), split, audio, entry))
    return out


def _utterance(utt_id: str, speaker: str, split: str, audio: Path, entry: dict) -> Utterance:
    try:
        words = tuple(_word(w) for w in entry["words"])
        sentence = SentenceLabels(*(_number(entry.get(a)) for a in SENTENCE_ASPECTS))
        return Utterance(utt_id, speaker, split, audio, entry["text"], words, sentence)
    except (KeyError, TypeError, ValueError) as err:
        raise CorpusError(f"{utt_id}: malformed scores.json entry ({err})") from None


def _word(entry: dict) -> WordLabel:
    phones = tuple(entry["phones"].split() if isinstance(entry["phones"], str) else entry["phones"])
    acc = entry.get("phones-accuracy")
    if acc is not None and len(acc) != len(phones):
        raise ValueError(f"word {entry.get('text')!r} has {len(phones)} phones but {len(acc)} phone scores")
    return WordLabel(
        entry["text"], phones, None if acc is None else tuple(float(a) for a in acc),
        *(_number(entry.get(a)) for a in WORD_ASPECTS),
    )


def _number(value) -> float | None:
    return None if value is None else float(value)


def _speaker_from_id(utt_id: str) -> str:
    return utt_id[1:5]  # speechocean762 ids: 0 + 4-digit speaker + 4-digit index


def _read_scores(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CorpusError(f"{path} is not valid JSON: {err}") from None


def _read_kaldi_map(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise CorpusError(f"missing {path}")
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {p[0]: p[1].strip() for p in pairs if len(p) == 2}
