"""Training the compact rationalizer with trl: LoRA SFT, then Bounded DPO (or SimPO) on preference pairs.

Each stage is trl's own trainer; what is added here is only what the audio prefix needs: collators that carry
the per-word audio features next to the token ids, and (for CPOTrainer, whose forward takes no extra inputs) a
forward pre-hook that hands them to the backbone for the duration of one batch.
"""
from __future__ import annotations

import contextlib
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import PreTrainedTokenizerBase
from trl import SFTConfig, SFTTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from .bounded_dpo import BoundedDPOConfig, BoundedDPOTrainer
from .compact import AudioPrefixLlamaModel
from .data import RationaleExample

PREFERENCE_METHODS = ("bounded_dpo", "simpo")
REFERENCE_ADAPTER = "ref"


@dataclass(frozen=True)
class RationalizerTrainingPlan:
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # attention only: a 7 MB adapter
    batch_size: int = 4
    sft_epochs: float = 1.0
    sft_lr: float = 5e-4
    preference_epochs: float = 1.0
    preference_lr: float = 1e-4
    beta: float = 0.1  # Bounded DPO and SimPO
    mixture: float = 0.5  # Bounded DPO: weight of pi_ref on the rejected side (1 = standard DPO)
    sft_weight: float = 1.0  # Bounded DPO's SFT term
    simpo_gamma: float = 0.5  # SimPO's target reward margin
    max_length: int | None = None  # no truncation: prompts + rationales stay near 400 tokens
    seed: int = 0
    logging_steps: int = 10
    progress: bool = True


def lora_config(plan: RationalizerTrainingPlan) -> LoraConfig:
    """LoRA on the language model; the audio projector is trained in full and saved with the adapter."""
    return LoraConfig(r=plan.lora_rank, lora_alpha=plan.lora_alpha, lora_dropout=plan.lora_dropout,
                      target_modules=list(plan.target_modules), modules_to_save=["audio_projector"],
                      task_type="CAUSAL_LM")


def pad_audio(rows: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example (W_i, d) feature lists -> (B, W, d) features and (B, W) mask."""
    arrays = [np.asarray(r, dtype=np.float32).reshape(len(r), -1) for r in rows]
    width, dim = max(len(a) for a in arrays), max(a.shape[1] for a in arrays)
    features = torch.zeros(len(arrays), width, dim)
    mask = torch.zeros(len(arrays), width, dtype=torch.bool)
    for i, a in enumerate(arrays):
        features[i, :len(a)] = torch.from_numpy(a)
        mask[i, :len(a)] = True
    return features, mask


@dataclass
class AudioLanguageModelingCollator(DataCollatorForLanguageModeling):
    """trl's SFT collator plus `audio_features` / `audio_mask`."""

    def torch_call(self, examples: list[dict]) -> dict:
        batch = super().torch_call(examples)
        batch["audio_features"], batch["audio_mask"] = pad_audio([e["audio_features"] for e in examples])
        return batch


@dataclass
class AudioPreferenceCollator(DataCollatorForPreference):
    """trl's preference collator (chosen rows, then rejected rows) plus the audio, repeated for both halves."""

    def torch_call(self, examples: list[dict]) -> dict:
        batch = super().torch_call(examples)
        features, mask = pad_audio([e["audio_features"] for e in examples])
        batch["audio_features"], batch["audio_mask"] = torch.cat([features, features]), torch.cat([mask, mask])
        return batch


def sft_dataset(examples: Sequence[RationaleExample], tokenizer: PreTrainedTokenizerBase) -> Dataset:
    rows = {"input_ids": [], "labels": [], "audio_features": []}
    for example in examples:
        prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
        target = tokenizer(example.chosen + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        rows["input_ids"].append(prompt + target)
        rows["labels"].append([-100] * len(prompt) + target)
        rows["audio_features"].append(example.word_states.tolist())
    return Dataset.from_dict(rows)


def preference_dataset(examples: Sequence[RationaleExample]) -> Dataset:
    pairs = [e for e in examples if e.rejected is not None]
    if not pairs:
        raise ValueError("no preference pairs: build the examples with rejected rationales")
    return Dataset.from_dict({"prompt": [e.prompt for e in pairs], "chosen": [e.chosen for e in pairs],
                              "rejected": [e.rejected for e in pairs],
                              "audio_features": [e.word_states.tolist() for e in pairs]})


def train_sft(model, tokenizer: PreTrainedTokenizerBase, examples: Sequence[RationaleExample],
              plan: RationalizerTrainingPlan, max_steps: int = -1) -> PeftModel:
    """LoRA SFT on the faithful rationales; returns the PEFT model (adapter "default")."""
    peft_model = get_peft_model(model, lora_config(plan))
    args = SFTConfig(num_train_epochs=plan.sft_epochs, learning_rate=plan.sft_lr, max_length=None,
                     dataset_kwargs={"skip_prepare_dataset": True}, **_common_args(plan, max_steps))
    collator = AudioLanguageModelingCollator(pad_token_id=tokenizer.pad_token_id)
    trainer = SFTTrainer(model=peft_model, args=args, train_dataset=sft_dataset(examples, tokenizer),
                         processing_class=tokenizer, data_collator=collator)
    trainer.train()
    return peft_model.eval()


def train_preference(sft_model: PeftModel, tokenizer: PreTrainedTokenizerBase, examples: Sequence[RationaleExample],
                     plan: RationalizerTrainingPlan, method: str = "bounded_dpo", max_steps: int = -1) -> PeftModel:
    """Continue the SFT adapter with a preference loss; Bounded DPO's reference is the SFT adapter, frozen."""
    if method not in PREFERENCE_METHODS:
        raise ValueError(f"preference method must be one of {PREFERENCE_METHODS}, not {method!r}")
    dataset = preference_dataset(examples)
    if method == "bounded_dpo":  # trl copies the current adapter into a frozen "ref" adapter: the reference
        trainer = _bounded_dpo_trainer(sft_model, tokenizer, dataset, plan, max_steps)
    else:
        trainer = _simpo_trainer(sft_model, tokenizer, dataset, plan, max_steps)
    trainer.train()
    if REFERENCE_ADAPTER in sft_model.peft_config:
        sft_model.delete_adapter(REFERENCE_ADAPTER)
    sft_model.set_adapter("default")
    return sft_model.eval()


def _bounded_dpo_trainer(model: PeftModel, tokenizer, dataset: Dataset, plan: RationalizerTrainingPlan,
                         max_steps: int) -> BoundedDPOTrainer:
    args = BoundedDPOConfig(num_train_epochs=plan.preference_epochs, learning_rate=plan.preference_lr,
                            beta=plan.beta, mixture=plan.mixture, loss_weights=[1.0, plan.sft_weight],
                            max_length=plan.max_length, **_common_args(plan, max_steps))
    collator = AudioPreferenceCollator(pad_token_id=tokenizer.pad_token_id)
    return BoundedDPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             data_collator=collator)


def _simpo_trainer(model: PeftModel, tokenizer, dataset: Dataset, plan: RationalizerTrainingPlan, max_steps: int):
    with warnings.catch_warnings():  # trl warns on every import from trl.experimental, where CPOTrainer lives
        warnings.simplefilter("ignore")
        from trl.experimental.cpo import CPOConfig, CPOTrainer

    class AudioCPOTrainer(CPOTrainer):
        """CPOTrainer (SimPO with loss_type="simpo") whose forward passes also carry the batch's audio."""

        def concatenated_forward(self, model, batch):
            features, mask = pad_audio(batch["audio_features"])
            with audio_input(model, torch.cat([features, features]), torch.cat([mask, mask])):
                return super().concatenated_forward(model, batch)

    args = CPOConfig(num_train_epochs=plan.preference_epochs, learning_rate=plan.preference_lr, loss_type="simpo",
                     cpo_alpha=0.0, beta=plan.beta, simpo_gamma=plan.simpo_gamma, max_length=plan.max_length,
                     **_common_args(plan, max_steps))
    return AudioCPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


@contextlib.contextmanager
def audio_input(model: torch.nn.Module, features: torch.Tensor, mask: torch.Tensor) -> Iterator[None]:
    """Within the block, every backbone forward that is given no audio gets these features."""
    backbone = next(m for m in model.modules() if isinstance(m, AudioPrefixLlamaModel))

    def add_audio(module, args, kwargs):
        if kwargs.get("audio_features") is None:
            kwargs = {**kwargs, "audio_features": features, "audio_mask": mask}
        return args, kwargs

    handle = backbone.register_forward_pre_hook(add_audio, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def _common_args(plan: RationalizerTrainingPlan, max_steps: int) -> dict:
    return dict(output_dir=str(Path(tempfile.gettempdir()) / "orthoepy-rationalizer-trainer"),
                per_device_train_batch_size=plan.batch_size, max_steps=max_steps, seed=plan.seed,
                logging_steps=plan.logging_steps, save_strategy="no", report_to=[], use_cpu=True,
                remove_unused_columns=False, bf16=False, fp16=False, disable_tqdm=not plan.progress, dataloader_num_workers=0)
