"""A frame-level phone recogniser fine-tuned from Whisper's encoder (issue 10, phone evidence v2).

`WhisperPhoneRecogniser` wraps a transformers `WhisperEncoder` (whisper-base from `whisper_torch.
load_whisper_encoder`): the convolutions and the lower `frozen_layers` layers are frozen, so their output can be
computed once per utterance and cached as float16 (`lower_states`); the upper layers are trained (fully, or
through LoRA adapters from peft when `lora_rank > 0`) with the final LayerNorm and a linear head over the 39
ARPAbet phones plus "outside any phone" (silence), in PHONES order then OUTSIDE, as `indomain_gop`.

Training reuses `indomain_gop`'s data preparation: `frame_targets` turns aligned canonical phones and their
human scores into per-frame labels with positive weights (well-pronounced phones: cross-entropy towards the
canonical phone) and negative weights (badly pronounced ones: -log(1 - p(canonical))), and
`weighted_frame_loss` is the loss. `train_phone_recogniser` checkpoints (trainable weights, optimiser, position,
random state) and resumes from its checkpoint; `save_pretrained` writes only the trainable weights.

Frames are 20 ms (Whisper's 10 ms mel hop, conv stride 2); input is the utterance's own length (no 30 s
padding), which gave the same signal as the padded window at a twentieth of the time (docs/frontend.md).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .frontend import FrontEndError
from .indomain_gop import N_CLASSES, FrameTargets, pad_batch, shuffled_batches, weighted_frame_loss
from .whisper_torch import embed, run_layers

CONFIG_FILE, WEIGHTS_FILE, CHECKPOINT_FILE = "phone_recogniser.json", "phone_recogniser.safetensors", "checkpoint.pt"
LORA_TARGETS = r"self_attn\.(q_proj|k_proj|v_proj|out_proj)|fc1|fc2"


@dataclass(frozen=True)
class PhoneRecogniserConfig:
    frozen_layers: int = 4  # lower encoder layers kept frozen (of 6 in whisper-base); their output is cacheable
    lora_rank: int = 0  # 0: train the upper layers fully; > 0: LoRA adapters of this rank on them instead
    lora_alpha: float = 16.0
    head_dropout: float = 0.1
    lr: float = 1e-4  # upper layers (or their adapters)
    head_lr: float = 1e-3  # final LayerNorm and head
    weight_decay: float = 1e-2
    epochs: int = 3
    batch_utterances: int = 8
    checkpoint_every: int = 200  # optimiser steps between checkpoints (also one at every epoch end)
    seed: int = 0


class WhisperPhoneRecogniser(nn.Module):
    """Whisper encoder (lower layers frozen) + linear head: log-mel -> (B, T, 40) frame log-posteriors."""

    def __init__(self, encoder, config: PhoneRecogniserConfig = PhoneRecogniserConfig()) -> None:
        super().__init__()
        n_layers = len(encoder.layers)
        if not 0 <= config.frozen_layers <= n_layers:
            raise ValueError(f"frozen_layers={config.frozen_layers}: the encoder has {n_layers} layers")
        self.config, self.encoder = config, encoder
        with torch.random.fork_rng():  # the same config gives the same initial head and adapters
            torch.manual_seed(config.seed)
            self.head = nn.Sequential(nn.Dropout(config.head_dropout), nn.Linear(encoder.config.d_model, N_CLASSES))
            if config.lora_rank > 0:
                _add_lora(encoder, config, n_layers)
        self._set_trainable()

    def _set_trainable(self) -> None:
        k, lora = self.config.frozen_layers, self.config.lora_rank > 0
        for name, p in self.encoder.named_parameters():
            upper = name.startswith("layers.") and int(name.split(".")[1]) >= k
            p.requires_grad = name.startswith("layer_norm.") or (upper and (not lora or "lora_" in name))
        for p in self.head.parameters():
            p.requires_grad = True

    def lower(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, F) log-mel (F even) -> (B, F / 2, d_model) output of the frozen layers, no gradient."""
        with torch.no_grad():
            return run_layers(self.encoder, embed(self.encoder, mel), 0, self.config.frozen_layers, final_norm=False)

    def upper(self, hidden: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, d_model) lower states -> (B, T, N_CLASSES) log-posteriors; `lengths` (B,) masks padding."""
        mask = None if lengths is None else key_padding_mask(lengths, hidden.shape[1], hidden.dtype)
        x = hidden
        for layer in self.encoder.layers[self.config.frozen_layers:]:
            x = layer(x, mask)
            x = x[0] if isinstance(x, tuple) else x
        return torch.log_softmax(self.head(self.encoder.layer_norm(x)), dim=-1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, F) log-mel -> (B, F / 2, N_CLASSES) frame log-posteriors (PHONES order, then OUTSIDE)."""
        return self.upper(self.lower(mel))

    def lower_states(self, mel: np.ndarray) -> np.ndarray:
        """(n_mels, F) log-mel of one utterance -> (F / 2, d_model) float16 frozen states, the training cache."""
        return self.lower(torch.as_tensor(mel, dtype=torch.float32)[None])[0].numpy().astype(np.float16)

    def predict_log_proba(self, states: np.ndarray) -> np.ndarray:
        """(T, d_model) cached lower states -> (T, N_CLASSES) float32 log-posteriors (eval mode, no gradient)."""
        self.eval()
        with torch.no_grad():
            return self.upper(torch.as_tensor(np.asarray(states, np.float32))[None])[0].numpy()

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the trained tensors: upper layers (or their LoRA adapters), final LayerNorm, head."""
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Writes CONFIG_FILE (config, encoder shape, base fingerprint) and WEIGHTS_FILE (trainable tensors)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"config": asdict(self.config), "encoder": _encoder_shape(self.encoder),
                "base_fingerprint": base_fingerprint(self.encoder, self.config.frozen_layers)}
        (directory / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
        save_file({n: t.contiguous() for n, t in self.trainable_state_dict().items()}, directory / WEIGHTS_FILE)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, encoder=None, cache_dir: str | Path | None = None
                        ) -> "WhisperPhoneRecogniser":
        """Rebuild on `encoder` (default: the converted whisper-base) and load the trained tensors.

        Raises FrontEndError when the folder is incomplete or the encoder is not the one it was trained on.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (directory / name).is_file():
                raise FrontEndError(f"{directory} holds no Whisper phone recogniser: {name} is missing")
        meta = json.loads((directory / CONFIG_FILE).read_text())
        if encoder is None:
            from .whisper_torch import load_whisper_encoder
            encoder = load_whisper_encoder(cache_dir)
        config = PhoneRecogniserConfig(**meta["config"])
        if _encoder_shape(encoder) != meta["encoder"] or \
                base_fingerprint(encoder, config.frozen_layers) != meta["base_fingerprint"]:
            raise FrontEndError(f"the recogniser in {directory} was trained on another Whisper encoder "
                                f"({meta['encoder']}); load it with the encoder it was trained on")
        model = cls(encoder, config)
        model.load_trainable(load_file(directory / WEIGHTS_FILE))
        return model.eval()

    def load_trainable(self, state: dict[str, torch.Tensor]) -> None:
        """Copy saved trainable tensors in; raises FrontEndError unless they are exactly the trainable set."""
        params = dict(self.named_parameters())
        expected = {n for n, p in params.items() if p.requires_grad}
        if set(state) != expected:
            raise FrontEndError(f"saved recogniser weights do not match the model: missing "
                                f"{sorted(expected - set(state))[:3]}, unexpected {sorted(set(state) - expected)[:3]}")
        with torch.no_grad():
            for name, value in state.items():
                params[name].copy_(value)


def _add_lora(encoder, config: PhoneRecogniserConfig, n_layers: int) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    layers = "|".join(str(i) for i in range(config.frozen_layers, n_layers))
    if not layers:
        return
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                      target_modules=rf"layers\.({layers})\.({LORA_TARGETS})")
    inject_adapter_in_model(lora, encoder)


def key_padding_mask(lengths: torch.Tensor, n_frames: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, 1, T, T) additive attention mask: 0 where the key frame is real, the dtype's minimum where padding."""
    padded = torch.arange(n_frames)[None, :] >= lengths[:, None]  # (B, T)
    mask = torch.zeros(padded.shape, dtype=dtype).masked_fill(padded, torch.finfo(dtype).min)
    return mask[:, None, None, :].expand(-1, 1, n_frames, -1)


def base_fingerprint(encoder, frozen_layers: int) -> str:
    """Short hash of the frozen weights (convolutions + lower layers), to refuse a mismatched base encoder."""
    digest = hashlib.sha256()
    for name, p in sorted(encoder.state_dict().items()):
        lower = name.startswith("layers.") and int(name.split(".")[1]) < frozen_layers
        if (name.startswith("conv") or lower) and "lora_" not in name:
            digest.update(p.detach().to(torch.float16).numpy().tobytes())
    return digest.hexdigest()[:16]


def _encoder_shape(encoder) -> dict[str, int]:
    c = encoder.config
    return {"d_model": c.d_model, "layers": c.encoder_layers, "heads": c.encoder_attention_heads,
            "n_mels": c.num_mel_bins}


def log_mel(samples: np.ndarray) -> np.ndarray:
    """16 kHz mono float samples -> (80, F) Whisper log-mel features (10 ms hop), F cut to an even count."""
    from faster_whisper.feature_extractor import FeatureExtractor

    mel = FeatureExtractor(feature_size=80)(np.asarray(samples, np.float32))
    return np.ascontiguousarray(mel[:, :mel.shape[1] // 2 * 2], np.float32)


def train_phone_recogniser(model: WhisperPhoneRecogniser, states: Sequence[np.ndarray],
                           targets: Sequence[FrameTargets], checkpoint_dir: str | Path | None = None,
                           progress: bool = True) -> list[float]:
    """Train the upper layers and head on cached lower states; returns the mean loss of each epoch.

    states: per utterance (T_i, d_model) arrays from `lower_states` (float16 is fine); targets: `frame_targets`
    of the same T_i. With `checkpoint_dir`, a checkpoint is written every `checkpoint_every` steps and at each
    epoch end, and an existing one is resumed from (same data and config, possibly more epochs).
    """
    if len(states) != len(targets) or not states:
        raise ValueError(f"need one FrameTargets per utterance, got {len(states)} states and {len(targets)} targets")
    config = model.config
    optimiser = _optimiser(model)
    position = _resume(model, optimiser, checkpoint_dir)
    n_batches = int(np.ceil(len(states) / config.batch_utterances))
    bar = _progress_bar(config.epochs * n_batches, position["epoch"] * n_batches + position["batch"], progress)
    while position["epoch"] < config.epochs:
        model.train()
        batches = shuffled_batches(len(states), config.batch_utterances, np.random.default_rng(config.seed + position["epoch"]))
        for index in range(position["batch"], len(batches)):
            loss = _step(model, optimiser, [states[i] for i in batches[index]], [targets[i] for i in batches[index]])
            position["losses"].append(loss)
            position["batch"] = index + 1
            bar.update(1)
            bar.set_postfix(epoch=position["epoch"] + 1, loss=f"{loss:.4f}")
            if checkpoint_dir and position["batch"] % config.checkpoint_every == 0:
                _save_checkpoint(model, optimiser, position, checkpoint_dir)
        position["history"].append(float(np.mean(position["losses"])))
        position.update(epoch=position["epoch"] + 1, batch=0, losses=[])
        if checkpoint_dir:
            _save_checkpoint(model, optimiser, position, checkpoint_dir)
    bar.close()
    model.eval()
    return list(position["history"])


def _step(model: WhisperPhoneRecogniser, optimiser: torch.optim.Optimizer, states: list[np.ndarray],
          targets: list[FrameTargets]) -> float:
    x, labels, pos, neg = pad_batch(states, targets)
    lengths = torch.tensor([len(s) for s in states])
    loss = weighted_frame_loss(model.upper(x, lengths), labels, pos, neg)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return float(loss.item())


def _optimiser(model: WhisperPhoneRecogniser) -> torch.optim.Optimizer:
    head = [p for p in model.head.parameters()] + [p for p in model.encoder.layer_norm.parameters()]
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head, "lr": model.config.head_lr}] + ([{"params": body, "lr": model.config.lr}] if body else [])
    torch.manual_seed(model.config.seed)
    return torch.optim.AdamW(groups, weight_decay=model.config.weight_decay)


def _resume(model: WhisperPhoneRecogniser, optimiser: torch.optim.Optimizer, checkpoint_dir) -> dict:
    path = Path(checkpoint_dir) / CHECKPOINT_FILE if checkpoint_dir else None
    if path is None or not path.is_file():
        return {"epoch": 0, "batch": 0, "losses": [], "history": []}
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model.load_trainable(saved["trainable"])
        optimiser.load_state_dict(saved["optimiser"])
    except Exception as e:  # noqa: BLE001 - unpickling, shape and key errors all mean an unusable checkpoint
        raise FrontEndError(f"cannot resume from {path} ({e}): delete it to start over") from e
    torch.set_rng_state(saved["torch_rng"])
    return saved["position"]


def _save_checkpoint(model: WhisperPhoneRecogniser, optimiser: torch.optim.Optimizer, position: dict,
                     checkpoint_dir: str | Path) -> None:
    directory = Path(checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    state = {"trainable": model.trainable_state_dict(), "optimiser": optimiser.state_dict(),
             "position": dict(position), "torch_rng": torch.get_rng_state()}
    torch.save(state, directory / (CHECKPOINT_FILE + ".tmp"))
    (directory / (CHECKPOINT_FILE + ".tmp")).replace(directory / CHECKPOINT_FILE)  # never half a checkpoint


def _progress_bar(total: int, done: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=done, disable=not enabled, desc="phone recogniser", unit="batch")
