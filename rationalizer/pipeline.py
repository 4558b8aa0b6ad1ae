"""The compact rationalizer's training recipe: examples from the train split, SFT, then a preference stage.

`train_rationalizer` writes out_dir/sft, out_dir/bounded_dpo and/or out_dir/simpo, each a Rationalizer directory,
and out_dir/training_report.json (sizes, settings, minutes per stage). Only train-split utterances are used.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PREFERENCE_METHODS = ("bounded_dpo", "simpo")  # as rationalizer.training, which is heavy to import

REPORT_FILE = "training_report.json"


@dataclass(frozen=True)
class RationalizerRecipe:
    n_sft: int = 240  # utterances for SFT
    n_pairs: int = 64  # preference pairs, from other utterances than the SFT ones
    noise_std: float = 0.5  # label noise (0-10 scale) so the scores shown resemble a scorer's
    preference: tuple[str, ...] = PREFERENCE_METHODS
    base_model: str | None = None
    threads: int | None = None
    seed: int = 0


def train_rationalizer(features_dir: str | Path, corpus_dir: str | Path | None, scorer_dir: str | Path,
                       out_dir: str | Path, recipe: RationalizerRecipe = RationalizerRecipe(), plan=None) -> dict:
    """plan: a training.RationalizerTrainingPlan (default: its defaults)."""
    import torch

    from ..encoder.corpus import load_corpus
    from ..encoder.features.store import FeatureStore
    from ..encoder.scorer.pipeline import Scorer
    from .compact import load_compact_base
    from .data import corpus_examples, sources_from_store
    from .model import Rationalizer, RationalizerSettings
    from .training import RationalizerTrainingPlan, train_preference, train_sft

    plan = plan or RationalizerTrainingPlan()

    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store, scorer = FeatureStore(Path(features_dir) / "train"), Scorer.from_pretrained(scorer_dir)
    utterances = {u.utt_id: u for u in load_corpus(corpus_dir) if u.split == "train"}
    sft_ids, pair_ids = _choose_utterances(store.utt_ids, utterances, recipe)
    sources = sources_from_store(store, scorer, utterances, sft_ids + pair_ids)
    model, tokenizer = load_compact_base(int(sources[0].phone_states.shape[1]), recipe.base_model, seed=recipe.seed)
    sft_examples = corpus_examples(sources[:len(sft_ids)], tokenizer, noise_std=recipe.noise_std, seed=recipe.seed)
    pairs = corpus_examples(sources[len(sft_ids):], tokenizer, noise_std=recipe.noise_std, with_rejected=True,
                            seed=recipe.seed + 1)
    report = {"recipe": asdict(recipe), "plan": asdict(plan), "n_sft": len(sft_examples), "n_pairs": len(pairs),
              "minutes": {}}
    settings = RationalizerSettings(audio_dim=int(sources[0].phone_states.shape[1]), base_model=recipe.base_model,
                                    training={"recipe": asdict(recipe), "plan": asdict(plan)})
    started = time.perf_counter()
    sft_model = train_sft(model, tokenizer, sft_examples, plan)
    report["minutes"]["sft"] = (time.perf_counter() - started) / 60
    Rationalizer(sft_model, tokenizer, _stage(settings, "sft")).save_pretrained(out_dir / "sft")
    for method in recipe.preference:
        started = time.perf_counter()
        tuned = train_preference(_fresh_copy(out_dir / "sft", settings), tokenizer, pairs, plan, method)
        report["minutes"][method] = (time.perf_counter() - started) / 60
        Rationalizer(tuned, tokenizer, _stage(settings, method)).save_pretrained(out_dir / method)
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=1))
    return report


def _choose_utterances(store_ids: list[str], utterances: dict, recipe: RationalizerRecipe) -> tuple[list[str], list[str]]:
    ids = sorted(u for u in store_ids if u in utterances)
    random.Random(recipe.seed).shuffle(ids)
    if len(ids) < recipe.n_sft + recipe.n_pairs:
        raise ValueError(f"{len(ids)} labelled train utterances; the recipe asks for {recipe.n_sft} + {recipe.n_pairs}")
    return ids[:recipe.n_sft], ids[recipe.n_sft:recipe.n_sft + recipe.n_pairs]


def _fresh_copy(sft_dir: Path, settings):
    """The SFT model loaded anew (trainable), so each preference method starts from the same point."""
    from peft import PeftModel

    from .compact import load_compact_base

    base, _ = load_compact_base(settings.audio_dim, settings.base_model)
    return PeftModel.from_pretrained(base, sft_dir / "adapter", is_trainable=True)


def _stage(settings, stage: str):
    return type(settings)(**{**asdict(settings), "training": {**settings.training, "stage": stage}})
