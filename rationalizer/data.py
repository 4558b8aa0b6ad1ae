"""Training and evaluation examples for the compact rationalizer: prompt + per-word audio states + rationale(s).

The prompt is the rubric prompt behind one audio placeholder per word, in the backbone's chat format. The audio
is the scorer's phone-encoder states averaged over each word's phones. Targets come from the rubric writer;
rejected rationales from its perturbations (a wrong word or phone blamed, a contradicting judgement, a wrong number).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from .records import AUDIO_PLACEHOLDER, ScoreSheet
from .rubric import PROMPT_INSTRUCTIONS, Rubric, RubricWriter, build_prompt, perturb
from .sheets import sheet_from_labels

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

SYSTEM_PROMPT = f"You are a pronunciation tutor. {PROMPT_INSTRUCTIONS}"


@dataclass(frozen=True)
class RationaleExample:
    utt_id: str
    sheet: ScoreSheet  # the scores the prompt shows
    prompt: str  # chat-formatted, ending where the assistant's answer starts
    word_states: np.ndarray  # (n_words, d_audio): one soft prefix token per word
    chosen: str  # a faithful rationale
    rejected: str | None = None  # an unfaithful one, for preference training
    rejected_kind: str | None = None


def render_prompt(tokenizer: "PreTrainedTokenizerBase", sheet: ScoreSheet, rubric: Rubric = Rubric()) -> str:
    user = f"Recording: {AUDIO_PLACEHOLDER * len(sheet.words)}\n{build_prompt(sheet, rubric, with_instructions=False)}"
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def pool_words(phone_states: np.ndarray, word_index: Sequence[int], n_words: int) -> np.ndarray:
    """(n_phones, d) phone states -> (n_words, d) means; a word without phones gets zeros."""
    word_index = np.asarray(word_index)
    if len(word_index) != len(phone_states):
        raise ValueError(f"{len(phone_states)} phone states but {len(word_index)} word indices")
    pooled = np.zeros((n_words, phone_states.shape[1]), dtype=np.float32)
    for w in range(n_words):
        members = word_index == w
        if members.any():
            pooled[w] = phone_states[members].mean(axis=0)
    return pooled


def heard_by_position(word_index: Sequence[int], heard: Sequence[str] | None) -> dict[tuple[int, int], str]:
    """{(word index, phone index within the word): heard ARPAbet} from per-phone lists."""
    if not heard:
        return {}
    out, position, previous = {}, 0, None
    for w, h in zip(word_index, heard):
        position = position + 1 if w == previous else 0
        previous = w
        out[(int(w), position)] = h
    return out


@dataclass(frozen=True)
class ExampleSource:
    """What one corpus utterance contributes: its labels, the scorer's phone states, what was heard, and the
    sheet built from the scorer's own output the way the service builds it (when available)."""

    utterance: object  # encoder.corpus.Utterance
    phone_states: np.ndarray  # (n_phones, d)
    word_index: tuple[int, ...]  # per phone
    heard: tuple[str, ...] | None  # per phone
    predicted: ScoreSheet | None = None


def corpus_examples(sources: Sequence[ExampleSource], tokenizer: "PreTrainedTokenizerBase", rubric: Rubric = Rubric(),
                    noise_std: float = 0.0, predicted_rate: float = 0.0, with_rejected: bool = False,
                    variants: int = 1, seed: int = 0, progress: bool = False, phrasing: str = "varied"
                    ) -> list[RationaleExample]:
    """Examples from labelled utterances; targets = the rubric writer's text for the sheet the prompt shows.

    The sheet is the scorer's (`source.predicted`, what inference shows) with probability predicted_rate, else the
    labels with Gaussian noise. variants > 1 writes several phrasings (and sheet draws) per utterance.
    phrasing: the RubricWriter's ("plain": one fixed wording, no numbers; "varied").
    """
    rng = random.Random(seed)
    writer = RubricWriter(rubric, seed=seed, phrasing=phrasing)
    examples = []
    for source in tqdm(sources, desc="rationale examples", unit="utt", disable=not progress):
        for variant in range(variants):
            sheet = _sheet(source, rng, noise_std, predicted_rate)
            examples.append(_example(source, sheet, tokenizer, rubric, writer, rng, with_rejected, variant))
    return examples


def _sheet(source: ExampleSource, rng: random.Random, noise_std: float, predicted_rate: float) -> ScoreSheet:
    if source.predicted is not None and rng.random() < predicted_rate:
        return source.predicted
    heard = heard_by_position(source.word_index, source.heard)
    return sheet_from_labels(source.utterance, noise_std=noise_std, rng=rng, heard=heard)


def _example(source: ExampleSource, sheet: ScoreSheet, tokenizer, rubric: Rubric, writer: RubricWriter,
             rng: random.Random, with_rejected: bool, variant: int) -> RationaleExample:
    utterance = source.utterance
    chosen = writer.write(sheet, variant=variant)
    rejected = kind = None
    if with_rejected:
        rejected, kind = perturb(chosen, sheet, rubric, rng)
    states = pool_words(source.phone_states, source.word_index, len(sheet.words))
    return RationaleExample(utterance.utt_id, sheet, render_prompt(tokenizer, sheet, rubric), states, chosen,
                            rejected, kind)
