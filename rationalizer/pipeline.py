"""The compact rationalizer's training recipe: examples from the train split, SFT, then a preference stage.

`train_rationalizer` writes out_dir/sft, out_dir/bounded_dpo and/or out_dir/simpo, each a Rationalizer directory,
and out_dir/training_report.json (sizes, settings, minutes per stage). Only train-split utterances are used.
Sheets come half from the scorer's own output on those utterances (the prompts inference will show; the scorer was
trained on them, so its scores there are closer to the labels than on new speech) and half from noised labels.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

PREFERENCE_METHODS = ("bounded_dpo", "simpo")  # as rationalizer.training, which is heavy to import

REPORT_FILE = "training_report.json"


@dataclass(frozen=True)
class RationalizerRecipe:
    n_sft: int = 240  # utterances for SFT
    n_pairs: int = 64  # preference pairs, from other utterances than the SFT ones
    sft_variants: int = 1  # phrasings (and sheet draws) per SFT utterance
    noise_std: float = 0.5  # label noise (0-10 scale) on the sheets drawn from labels
    predicted_rate: float = 0.5  # share of sheets from the scorer's own output (what inference shows)
    phrasing: str = "plain"  # targets' wording (RubricWriter): "plain" is short and fixed, "varied" as in v0.3
    preference: tuple[str, ...] = PREFERENCE_METHODS
    base_model: str | None = None
    threads: int | None = None
    seed: int = 0


def train_rationalizer(sft_sources: Sequence, pair_sources: Sequence, out_dir: str | Path,
                       recipe: RationalizerRecipe = RationalizerRecipe(), plan=None,
                       scorer_fingerprint: str | None = None) -> dict:
    """sft_sources, pair_sources: data.ExampleSource lists from different utterances (fusion.rationale_sources
    builds them from a feature store, a scorer and the corpus). plan: a training.RationalizerTrainingPlan.
    scorer_fingerprint: that scorer's network_fingerprint, recorded so that no other scorer's states are fed."""
    import torch

    from .compact import load_compact_base
    from .data import corpus_examples
    from .model import Rationalizer, RationalizerSettings
    from .training import RationalizerTrainingPlan, train_preference, train_sft

    plan = plan or RationalizerTrainingPlan()
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    audio_dim = int(sft_sources[0].phone_states.shape[1])
    model, tokenizer = load_compact_base(audio_dim, recipe.base_model, seed=recipe.seed)
    options = dict(noise_std=recipe.noise_std, predicted_rate=recipe.predicted_rate, phrasing=recipe.phrasing)
    sft_examples = corpus_examples(sft_sources, tokenizer, variants=recipe.sft_variants, seed=recipe.seed, **options)
    pairs = corpus_examples(pair_sources, tokenizer, with_rejected=True, seed=recipe.seed + 1, **options)
    report = {"recipe": asdict(recipe), "plan": asdict(plan), "n_sft": len(sft_examples), "n_pairs": len(pairs),
              "threads": torch.get_num_threads(), "minutes": {},
              "utterances": {"sft": sorted({e.utt_id for e in sft_examples}),
                             "pairs": sorted({e.utt_id for e in pairs})}}
    settings = RationalizerSettings(audio_dim=audio_dim, base_model=recipe.base_model,
                                    training={"recipe": asdict(recipe), "plan": asdict(plan)},
                                    scorer_fingerprint=scorer_fingerprint)
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


def choose_utterances(utt_ids: Sequence[str], recipe: RationalizerRecipe) -> tuple[list[str], list[str]]:
    """Disjoint SFT and preference-pair utterances, drawn with the recipe's seed."""
    ids = sorted(utt_ids)
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
