"""The rationalizer's inputs built from the encoder's outputs, exactly as the service builds them.

`rationale_cases`: per utterance, the response the scorer gives (calibrated scores, diagnosis with pauses), the
score sheet made from it, the per-word audio states and the gold sheet of the labels: what evaluation needs.
`training_sources`: the same for train-split utterances, as the rationalizer's ExampleSources.
"""
from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..encoder.audio import load_audio
from ..encoder.corpus import Utterance, load_corpus
from ..encoder.features.posterior_gop import PosteriorGOP
from ..encoder.features.store import FeatureStore, extract_utterances
from ..encoder.scorer.phone_evidence import PhoneEvidenceFusion
from ..encoder.scorer.pipeline import Scorer
from ..rationalizer.data import ExampleSource, heard_by_position, pool_words
from ..rationalizer.records import ScoreSheet
from ..rationalizer.sheets import sheet_from_labels
from .assessor import (Assessment, aligned_edit_gains, build_assessment, frontend_config, fuse_phone_scores,
                       hear_phones)
from .rationale import sheet_from_words


@dataclass
class RationaleCase:
    """One utterance: its labels, the response built from the scorer's output, the audio states, the gold sheet."""

    utterance: Utterance
    assessment: Assessment
    phone_states: np.ndarray  # (n_phones, d) phone-encoder states
    word_index: tuple[int, ...]  # per phone
    heard: tuple[str, ...] | None  # per phone
    gold: ScoreSheet  # from the labels

    @property
    def sheet(self) -> ScoreSheet:
        """What the rationalizer is given: the response's scores and diagnosis."""
        a = self.assessment
        return sheet_from_words(a.text, a.sentence, a.words)

    @property
    def word_states(self) -> np.ndarray:
        return pool_words(self.phone_states, self.word_index, len(self.assessment.words))


def sample_utterances(utterances: list[Utterance], limit: int | None, seed: int) -> list[Utterance]:
    if limit is None or limit >= len(utterances):
        return utterances
    return sorted(random.Random(seed).sample(utterances, limit), key=lambda u: u.utt_id)


def rationale_cases(scorer: Scorer, utterances: list[Utterance], features_dir, model_name: str, nj: int = 1,
                    phone_evidence: PhoneEvidenceFusion | None = None) -> list[RationaleCase]:
    """Per utterance: the response the scorer gives (from cached features, or extracted), its sheet, the audio.
    phone_evidence: the model directory's fusion; with it the phone scores and what was heard are those `assess`
    returns (the CTC recogniser's segmentation-free evidence, from the utterance's audio)."""
    with tempfile.TemporaryDirectory() as scratch:
        if features_dir is None:  # extract as the model was trained
            extract_utterances(utterances, scratch, frontend_config(scorer), nj=nj)
            store = FeatureStore(scratch)
        else:
            store = FeatureStore(features_dir)
        features = {u.utt_id: store.load(u.utt_id) for u in utterances}
    examples = scorer.examples(features)
    scored, states = scorer.score_examples(examples), scorer.phone_states(examples)
    cases = []
    recogniser = PosteriorGOP() if phone_evidence is not None else None
    for utterance, s, phone_states in zip(utterances, scored, states):
        f = features[utterance.utt_id]
        gains = None if recogniser is None else aligned_edit_gains(recogniser, load_audio(utterance.audio_path), f)
        if gains is not None:
            s = fuse_phone_scores(s, gains, phone_evidence)
        assessment = build_assessment(utterance.text, [w.text for w in utterance.words], f, s, model_name, {})
        if gains is not None:
            hear_phones(assessment, gains, list(range(len(assessment.words))))
            heard = tuple(p.heard for w in assessment.words for p in w.phones)
        else:
            heard = tuple(h.base for h in f.heard) if f.heard else None
        word_index = tuple(p.word_index for p in f.phones)
        gold = sheet_from_labels(utterance, heard=heard_by_position(word_index, heard))
        cases.append(RationaleCase(utterance, assessment, phone_states, word_index, heard, gold))
    return cases


def training_sources(features_dir: str | Path, corpus_dir: str | Path | None, scorer_dir: str | Path,
                     utt_ids: Sequence[str]) -> list[ExampleSource]:
    """ExampleSources of train utterances from their cached features (features_dir/train)."""
    scorer = Scorer.from_pretrained(scorer_dir)
    by_id = {u.utt_id: u for u in load_corpus(corpus_dir, "train")}
    cases = rationale_cases(scorer, [by_id[u] for u in utt_ids], Path(features_dir) / "train", Path(scorer_dir).name,
                            phone_evidence=PhoneEvidenceFusion.load(scorer_dir))
    return [ExampleSource(c.utterance, c.phone_states, c.word_index, c.heard, c.sheet) for c in cases]


def labelled_train_ids(features_dir: str | Path, corpus_dir: str | Path | None) -> list[str]:
    store = FeatureStore(Path(features_dir) / "train")
    labelled = {u.utt_id for u in load_corpus(corpus_dir, "train")}
    return [u for u in store.utt_ids if u in labelled]
