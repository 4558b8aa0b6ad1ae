"""The rationalizer's full-scale backbone: an audio LLM (reference Qwen2-Audio-7B-Instruct) with LoRA.

The recording and a text prompt (reference text, scores, diagnosis; built elsewhere) go in, a rationale comes out.
Training is trl's ``SFTTrainer`` then Bounded DPO (``bounded_dpo.BoundedDPOTrainer``) or SimPO; this module gives
the model loading, the chat-format inputs and the collators those trainers need.

No audio-LLM weights are reachable here, so the code is tested with a tiny, randomly initialised model and a tiny
processor built from the same transformers classes (``tiny_qwen2_audio``, ``tiny_qwen2_audio_processor``).
GPU commands for the real model: docs/rationales_fullscale.md.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "AudioLLMConfig", "load_audio_llm", "lora_config", "tiny_qwen2_audio", "tiny_qwen2_audio_processor",
    "audio_chat_inputs", "AudioSFTCollator", "AudioPreferenceCollator", "AudioCPOCollator", "AudioCPOTrainer",
    "generate_rationale",
]

SAMPLE_RATE = 16_000
MIN_SAMPLES = SAMPLE_RATE // 10
END_OF_TURN = "<|im_end|>"  # Qwen chat format: every turn, the assistant's included, ends with this token
AUDIO_KEYS = ("input_features", "feature_attention_mask")  # the batch keys that carry the recording
LANGUAGE_MODEL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class AudioLLMConfig:
    """How to load the audio LLM and where its LoRA adapter goes.

    ``target_modules`` are matched only inside the language model (``model.language_model``); the audio tower
    (a Whisper encoder whose attention also has q/k/v_proj) gets an adapter only for the names listed in
    ``audio_tower_target_modules`` (its projections are q_proj, k_proj, v_proj, out_proj, fc1, fc2).
    """

    model: str = "Qwen/Qwen2-Audio-7B-Instruct"  # hub id or local directory
    adapter: str | None = None  # a saved LoRA adapter directory (e.g. the SFT stage's) to continue instead of a new one
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = LANGUAGE_MODEL_PROJECTIONS
    audio_tower_target_modules: tuple[str, ...] = ()
    load_in_4bit: bool = False  # NF4 via bitsandbytes; needs CUDA
    dtype: str = "bfloat16"
    device_map: str | dict | None = None  # e.g. "auto" or {"": 0} on a GPU
    local_files_only: bool = False  # True: never contact the hub (use the local cache or a directory only)
    attn_implementation: str | None = None  # e.g. "sdpa" or "flash_attention_2"
    extra_from_pretrained: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------- loading


def lora_config(config: AudioLLMConfig):
    """A peft ``LoraConfig`` whose targets are regex-anchored to the language model (and the audio tower if asked)."""
    from peft import LoraConfig

    return LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=_target_module_regex(config), task_type="CAUSAL_LM")


def _target_module_regex(config: AudioLLMConfig) -> str:
    # A plain name list would also match the audio tower's q/k/v_proj; peft full-matches a string as a regex.
    scopes = [(r"model\.language_model", config.target_modules)]
    if config.audio_tower_target_modules:
        scopes.append((r"model\.audio_tower", config.audio_tower_target_modules))
    for _, names in scopes:
        if not names:
            raise ValueError("target_modules must name at least one projection of the language model")
    return "|".join(rf"{prefix}\..*\.({'|'.join(map(re.escape, names))})" for prefix, names in scopes)


def load_audio_llm(config: AudioLLMConfig, apply_lora: bool = True):
    """Load ``(model, processor)`` from a hub id or a local directory; with ``apply_lora`` wrap the model in peft LoRA
    (a new adapter, or ``config.adapter`` loaded trainable).

    Given this ``PeftModel``, trl's DPOTrainer copies its adapter as a frozen "ref" adapter: the DPO reference is the
    starting (SFT) policy. ``apply_lora=False`` returns the bare model, to pass with ``peft_config=lora_config(config)``
    to a trl trainer (then the DPO reference is the model with its adapter disabled).

    Errors: ``FileNotFoundError`` for a local model or adapter path that does not exist, ``OSError`` for a hub id that
    cannot be fetched, ``RuntimeError`` for 4-bit without CUDA or bitsandbytes (all before anything is loaded).
    """
    quantization = _quantization_config(config) if config.load_in_4bit else None
    source = _model_source(config.model)
    if apply_lora and config.adapter is not None and not os.path.isdir(config.adapter):
        raise FileNotFoundError(f"no adapter directory at {config.adapter!r}")
    processor = _from_pretrained(_auto_processor(), source, config)
    model = _from_pretrained(_model_class(), source, config,
                             dtype=_torch_dtype(config.dtype), quantization_config=quantization,
                             device_map=config.device_map, attn_implementation=config.attn_implementation,
                             **config.extra_from_pretrained)
    if apply_lora:
        model = _with_lora(model, config)
    return model, processor


def _with_lora(model, config: AudioLLMConfig):
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training

    if config.load_in_4bit:  # trl 1.16 does not do this itself for an already loaded quantized model
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    if config.adapter is not None:
        return PeftModel.from_pretrained(model, config.adapter, is_trainable=True)
    return get_peft_model(model, lora_config(config))


def _model_source(model: str) -> str:
    expanded = os.path.expanduser(model)
    if os.path.isdir(expanded):
        return expanded
    if _looks_like_path(model):
        raise FileNotFoundError(f"no model directory at {model!r} (a local path must be a directory holding "
                                "config.json, the weights and the processor files)")
    return model


def _looks_like_path(model: str) -> bool:
    # A hub id is "name" or "owner/name"; anything else is meant as a path on this machine.
    return model.startswith((".", "/", "~")) or model.endswith("/") or model.count("/") > 1 or "\\" in model


def _from_pretrained(cls, source: str, config: AudioLLMConfig, **kwargs):
    try:
        return cls.from_pretrained(source, local_files_only=config.local_files_only, **kwargs)
    except OSError as error:
        if os.path.isdir(source):
            raise OSError(f"could not load {cls.__name__} from the directory {source!r}: {error}") from error
        raise OSError(f"could not load {source!r} from the Hugging Face hub or its local cache ({error}). Where no hub "
                      f"is reachable, download it elsewhere (e.g. `hf download {source} --local-dir DIR`), copy the "
                      "directory here and pass the local path.") from error


def _auto_processor():
    from transformers import AutoProcessor

    return AutoProcessor


def _model_class():
    # Resolves qwen2_audio to Qwen2AudioForConditionalGeneration (also phi4_multimodal, voxtral, qwen2_5_omni, ...;
    # only Qwen2-Audio's chat inputs are built in this module).
    from transformers import AutoModelForMultimodalLM

    return AutoModelForMultimodalLM


def _torch_dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}; use e.g. 'bfloat16', 'float16' or 'float32'")
    return dtype


def _quantization_config(config: AudioLLMConfig):
    if importlib.util.find_spec("bitsandbytes") is None:
        raise RuntimeError("load_in_4bit needs the bitsandbytes package (pip install bitsandbytes), which is not "
                           "installed; load in bf16 instead (load_in_4bit=False)")
    if not torch.cuda.is_available():
        raise RuntimeError("load_in_4bit needs a CUDA GPU (bitsandbytes NF4), and none is visible; load in bf16 or "
                           "float32 instead (load_in_4bit=False)")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=_torch_dtype(config.dtype),
        # Audio encoder, projector and LM head stay unquantised: small next to the LM (~0.65B for the encoder) and
        # the audio features feed every generated token.
        llm_int8_skip_modules=["audio_tower", "multi_modal_projector", "lm_head"],
    )


# ----------------------------------------------------------------------------------------- tiny test stand-ins

_TINY_SPECIAL_TOKENS = ("<|im_start|>", END_OF_TURN, "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>")
_TINY_MEL_BINS = 16
_TINY_CHUNK_SECONDS = 1  # the real model pads every clip to 30 s (3000 mel frames); the tiny one to 1 s


def tiny_qwen2_audio_processor():
    """A real ``Qwen2AudioProcessor`` with a tiny byte-level ``Qwen2Tokenizer`` (262 tokens, no merges) and a
    16-mel ``WhisperFeatureExtractor`` that pads clips to 1 s; it uses the processor's own Qwen2-Audio chat template."""
    from tokenizers import pre_tokenizers
    from transformers import Qwen2AudioProcessor, Qwen2Tokenizer, WhisperFeatureExtractor

    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], eos_token=END_OF_TURN, pad_token="<|endoftext|>",
                               additional_special_tokens=list(_TINY_SPECIAL_TOKENS))
    features = WhisperFeatureExtractor(feature_size=_TINY_MEL_BINS, sampling_rate=SAMPLE_RATE,
                                       chunk_length=_TINY_CHUNK_SECONDS)
    return Qwen2AudioProcessor(feature_extractor=features, tokenizer=tokenizer)


def tiny_qwen2_audio(seed: int = 0, processor=None):
    """A randomly initialised ``Qwen2AudioForConditionalGeneration`` (2 + 2 layers, width 32) matching
    :func:`tiny_qwen2_audio_processor`'s vocabulary and mel/padding geometry."""
    from transformers import Qwen2AudioConfig, Qwen2AudioEncoderConfig, Qwen2AudioForConditionalGeneration, Qwen2Config

    tokenizer = (processor or tiny_qwen2_audio_processor()).tokenizer
    mel_frames = _TINY_CHUNK_SECONDS * 100  # Whisper features: 10 ms hop
    audio = Qwen2AudioEncoderConfig(num_mel_bins=_TINY_MEL_BINS, encoder_layers=2, encoder_attention_heads=2,
                                    encoder_ffn_dim=64, d_model=32, max_source_positions=mel_frames // 2)
    text = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
                       tie_word_embeddings=False)
    config = Qwen2AudioConfig(audio_config=audio, text_config=text,
                              audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"))
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


# ------------------------------------------------------------------------------------------------ chat inputs


def audio_chat_inputs(processor, audio: np.ndarray, prompt: str, target: str | None = None) -> dict[str, torch.Tensor]:
    """Model inputs (batch of one) for one recording and prompt in Qwen2-Audio's chat format.

    The user turn is the audio placeholder (expanded by the processor to one ``<|AUDIO|>`` per audio frame the encoder
    keeps) followed by ``prompt``; the assistant turn is opened. With ``target``, the target and the end-of-turn token
    are appended and ``labels`` keep only those tokens (-100 elsewhere). Keys: input_ids, attention_mask,
    input_features (1, n_mels, frames), feature_attention_mask (1, frames) and, with a target, labels.
    """
    prompt_inputs = _prompt_inputs(processor, audio, prompt)
    if target is None:
        return prompt_inputs
    target_ids = torch.tensor([_completion_ids(processor.tokenizer, target)])
    prompt_ids = prompt_inputs["input_ids"]
    return {
        **prompt_inputs,
        "input_ids": torch.cat([prompt_ids, target_ids], dim=1),
        "attention_mask": torch.ones(1, prompt_ids.shape[1] + target_ids.shape[1], dtype=torch.long),
        "labels": torch.cat([torch.full_like(prompt_ids, -100), target_ids], dim=1),
    }


def _prompt_inputs(processor, audio: np.ndarray, prompt: str) -> dict[str, torch.Tensor]:
    conversation = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be one mono 16 kHz channel (1-D array), got shape {audio.shape}")
    if audio.size < MIN_SAMPLES:
        # With a single <|AUDIO|> token, Qwen2-Audio's forward would take its legacy (unexpanded) merge path.
        raise ValueError(f"audio too short: {audio.size} samples, at least {MIN_SAMPLES} (0.1 s at 16 kHz)")
    inputs = processor(text=text, audio=audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
    return {key: inputs[key] for key in ("input_ids", "attention_mask", *AUDIO_KEYS)}


def _completion_ids(tokenizer, text: str) -> list[int]:
    # trl's DPOTrainer appends the tokenizer's EOS to chosen/rejected; whatever ends it, the turn ends once, in-format.
    for suffix in {tokenizer.eos_token, END_OF_TURN} - {None}:
        text = text.removesuffix(suffix)
    return tokenizer(text + END_OF_TURN, add_special_tokens=False)["input_ids"]


def _prompts_and_completions(prompts: list[dict], rows: list[dict], side: str, tokenizer):
    """(prompt ids, completion ids) of every row for one side, "chosen" or "rejected"."""
    pairs = []
    for prompt, row in zip(prompts, rows):
        prompt_ids = prompt["input_ids"][0]
        pairs.append((prompt_ids, torch.tensor(_completion_ids(tokenizer, row[side]), dtype=prompt_ids.dtype)))
    return pairs


def _audio_tensors(prompts: list[dict], repeat: int = 1) -> dict[str, torch.Tensor]:
    return {key: torch.cat([p[key] for p in prompts] * repeat) for key in AUDIO_KEYS}


def _pad_right(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=value)


@dataclass
class AudioSFTCollator:
    """Collator for trl's ``SFTTrainer`` on rows ``{audio_key: 16 kHz samples, prompt_key: str, target_key: str}``.

    Use with ``SFTConfig(remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True})`` so the raw
    rows reach it. Yields input_ids, attention_mask, labels (target only), input_features, feature_attention_mask.
    """

    processor: Any
    audio_key: str = "audio"
    prompt_key: str = "prompt"
    target_key: str = "completion"

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        examples = [audio_chat_inputs(self.processor, row[self.audio_key], row[self.prompt_key], row[self.target_key])
                    for row in rows]
        pad_id = self.processor.tokenizer.pad_token_id
        return {
            "input_ids": _pad_right([e["input_ids"][0] for e in examples], pad_id),
            "attention_mask": _pad_right([e["attention_mask"][0] for e in examples], 0),
            "labels": _pad_right([e["labels"][0] for e in examples], -100),
            **_audio_tensors(examples),
        }


@dataclass
class AudioPreferenceCollator:
    """Collator for trl 1.16's ``DPOTrainer`` (hence ``BoundedDPOTrainer``): rows with audio, prompt, chosen, rejected.

    Output is trl's ``DataCollatorForPreference`` layout (rows 0..B-1 = prompt + chosen, rows B..2B-1 = prompt +
    rejected; input_ids, attention_mask, completion_mask) plus input_features and feature_attention_mask repeated
    for both halves. trl's ``_compute_loss`` passes every key but completion_mask and ref_*_logps to the model's
    forward, so the audio reaches both the policy and the reference pass. Use with
    ``remove_unused_columns=False``; trl still tokenizes the text columns into prompt_ids/chosen_ids/rejected_ids,
    which this collator ignores (the audio placeholder must be expanded with the recording's length).
    """

    processor: Any
    audio_key: str = "audio"
    prompt_key: str = "prompt"

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prompts = [_prompt_inputs(self.processor, row[self.audio_key], row[self.prompt_key]) for row in rows]
        tokenizer = self.processor.tokenizer
        pairs = [pair for side in ("chosen", "rejected")
                 for pair in _prompts_and_completions(prompts, rows, side, tokenizer)]
        return {
            "input_ids": _pad_right([torch.cat(pair) for pair in pairs], tokenizer.pad_token_id),
            "attention_mask": _pad_right([torch.ones(len(p) + len(c), dtype=torch.long) for p, c in pairs], 0),
            "completion_mask": _pad_right([torch.cat([torch.zeros_like(p), torch.ones_like(c)]) for p, c in pairs], 0),
            **_audio_tensors(prompts, repeat=2),
        }


@dataclass
class AudioCPOCollator:
    """Collator for SimPO/CPO (``AudioCPOTrainer``, i.e. trl.experimental's ``CPOTrainer``) on the same rows as
    :class:`AudioPreferenceCollator`: chosen_/rejected_ input_ids, attention_mask and labels (completion only) for B
    pairs, plus input_features and feature_attention_mask once per pair. Use with ``remove_unused_columns=False``."""

    processor: Any
    audio_key: str = "audio"
    prompt_key: str = "prompt"

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        prompts = [_prompt_inputs(self.processor, row[self.audio_key], row[self.prompt_key]) for row in rows]
        tokenizer = self.processor.tokenizer
        batch = _audio_tensors(prompts)
        for side in ("chosen", "rejected"):
            pairs = _prompts_and_completions(prompts, rows, side, tokenizer)
            batch[f"{side}_input_ids"] = _pad_right([torch.cat(pair) for pair in pairs], tokenizer.pad_token_id)
            batch[f"{side}_attention_mask"] = _pad_right([torch.ones(len(p) + len(c), dtype=torch.long)
                                                          for p, c in pairs], 0)
            batch[f"{side}_labels"] = _pad_right([torch.cat([torch.full_like(p, -100), c]) for p, c in pairs], -100)
        return batch


@functools.cache
def _audio_cpo_trainer_class():
    from trl.experimental.cpo import CPOTrainer  # slow to import and experimental: only when asked for

    class AudioCPOTrainer(CPOTrainer):
        """trl's ``CPOTrainer`` (``loss_type="simpo"`` for SimPO) whose forward also gets the audio.

        ``CPOTrainer.concatenated_forward`` calls the model with input_ids and attention_mask only, so the audio
        tensors (one row per pair) are bound to the model call, repeated for the [chosen; rejected] batch. Pass the
        *tokenizer* as ``processing_class`` (CPOTrainer uses it as one: ``pad_token``, tokenizing the text columns,
        which the collator then ignores) and ``data_collator=AudioCPOCollator(processor)``.
        """

        def concatenated_forward(self, model, batch):
            audio = {key: torch.cat([batch[key], batch[key]]).to(self.accelerator.device) for key in AUDIO_KEYS}
            return super().concatenated_forward(functools.partial(model, **audio), batch)

    return AudioCPOTrainer


def __getattr__(name: str):
    if name == "AudioCPOTrainer":
        return _audio_cpo_trainer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------------------- generation


@torch.no_grad()
def generate_rationale(model, processor, audio: np.ndarray, prompt: str, max_new_tokens: int = 256) -> str:
    """Greedy rationale for one recording and prompt (the assistant turn's text, special tokens removed)."""
    inputs = audio_chat_inputs(processor, audio, prompt)
    device = next(model.parameters()).device
    inputs = {key: value.to(device) for key, value in inputs.items()}
    tokenizer = processor.tokenizer
    stop_ids = sorted({tokenizer.convert_tokens_to_ids(END_OF_TURN), tokenizer.eos_token_id} - {None})
    was_training = model.training
    model.eval()
    try:
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stop_ids,
                                pad_token_id=tokenizer.pad_token_id)
    finally:
        model.train(was_training)
    new_tokens = output[0, inputs["input_ids"].shape[1]:]
    return tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
