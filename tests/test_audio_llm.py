"""The audio-LLM backbone of the rationalizer, on a tiny random Qwen2-Audio (no weights, no network, CPU)."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

pytest.importorskip("peft")
pytest.importorskip("trl")
from orthoepy.rationalizer.audio_llm import (  # noqa: E402
    AudioLLMConfig, AudioPreferenceCollator, AudioSFTCollator, audio_chat_inputs, generate_rationale, load_audio_llm,
    lora_config, tiny_qwen2_audio, tiny_qwen2_audio_processor,
)

_CPU = dict(report_to="none", use_cpu=True, bf16=False, fp16=False, save_strategy="no", dataloader_num_workers=0,
            seed=0, max_steps=1, per_device_train_batch_size=2, learning_rate=1e-2, logging_steps=1)
_TINY_LORA = AudioLLMConfig(model="unused", lora_rank=4, lora_alpha=8, lora_dropout=0.0, dtype="float32")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def processor():
    return tiny_qwen2_audio_processor()


def _clip(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.3, 0.3, int(16_000 * seconds)).astype(np.float32)


def _audio_token_count(processor, inputs) -> int:
    return int((inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")).sum())


def test_chat_inputs_expand_audio_and_mask_labels(processor):
    model = tiny_qwen2_audio(seed=0, processor=processor)
    inputs = audio_chat_inputs(processor, _clip(0.5), "ship: accuracy 4.0", target="The vowel is short.")
    assert inputs["input_features"].shape == (1, 16, 100) and inputs["feature_attention_mask"].sum() == 50
    assert _audio_token_count(processor, inputs) == 12  # 50 mel frames -> conv stride 2 -> avg-pool 2
    labels = inputs["labels"][0]
    target_ids = labels[labels != -100].tolist()
    assert processor.tokenizer.decode(target_ids) == "The vowel is short.<|im_end|>"
    assert inputs["input_ids"][0, -len(target_ids):].tolist() == target_ids
    prompt_text = processor.tokenizer.decode(inputs["input_ids"][0, :-len(target_ids)])
    assert prompt_text.startswith("<|im_start|>system") and prompt_text.endswith("<|im_start|>assistant\n")
    assert "<|audio_bos|>" + "<|AUDIO|>" * 12 + "<|audio_eos|>\nship: accuracy 4.0<|im_end|>" in prompt_text
    loss = model(**inputs).loss
    assert torch.isfinite(loss)


def test_lora_lands_on_the_language_model_only(processor):
    from peft import get_peft_model

    model = get_peft_model(tiny_qwen2_audio(processor=processor), lora_config(_TINY_LORA))
    lora_names = [n for n, p in model.named_parameters() if "lora_" in n]
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert set(trainable) == set(lora_names)
    assert all(".language_model." in n for n in lora_names)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "audio_tower" in n or "projector" in n)
    # per layer, rank 4: q 32->32, k/v 32->16 (2 kv heads of 8), o 32->32, gate/up 32->64, down 64->32
    per_layer = 4 * ((32 + 32) + 2 * (32 + 16) + (32 + 32) + 2 * (32 + 64) + (64 + 32))
    assert sum(trainable.values()) == 2 * per_layer

    asked = replace(_TINY_LORA, audio_tower_target_modules=("q_proj", "out_proj"))
    model = get_peft_model(tiny_qwen2_audio(processor=processor), lora_config(asked))
    tower = {n for n, _ in model.named_parameters() if "lora_" in n and "audio_tower" in n}
    assert tower and all(n.split(".lora_")[0].endswith(("q_proj", "out_proj")) for n in tower)


@pytest.fixture(scope="module")
def tiny_dir(processor, tmp_path_factory):
    """The tiny model and processor saved as a local model directory, as a downloaded checkpoint would be."""
    directory = tmp_path_factory.mktemp("tiny-qwen2-audio")
    tiny_qwen2_audio(processor=processor).save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def _tiny_config(directory, **changes) -> AudioLLMConfig:
    return replace(_TINY_LORA, model=str(directory), local_files_only=True, **changes)


def test_loads_from_a_local_directory(processor, tiny_dir):
    from peft import PeftModel
    from transformers import Qwen2AudioForConditionalGeneration, Qwen2AudioProcessor

    config = _tiny_config(tiny_dir)
    model, loaded = load_audio_llm(config)
    assert isinstance(model, PeftModel) and isinstance(model.get_base_model(), Qwen2AudioForConditionalGeneration)
    assert isinstance(loaded, Qwen2AudioProcessor) and len(loaded.tokenizer) == len(processor.tokenizer)
    bare, _ = load_audio_llm(config, apply_lora=False)
    assert isinstance(bare, Qwen2AudioForConditionalGeneration)


def test_missing_local_path_and_unreachable_hub_id_raise_clearly(tmp_path, tiny_dir):
    with pytest.raises(FileNotFoundError, match="no model directory"):
        load_audio_llm(AudioLLMConfig(model=str(tmp_path / "no-such-model")))
    with pytest.raises(FileNotFoundError, match="no adapter directory"):
        load_audio_llm(_tiny_config(tiny_dir, adapter=str(tmp_path / "no-such-adapter")))
    with pytest.raises(OSError, match="download it elsewhere .* pass the local path"):
        load_audio_llm(AudioLLMConfig(model="orthoepy-test/no-such-model", local_files_only=True))


def test_4bit_without_cuda_or_bitsandbytes_raises_clearly(tmp_path):
    import importlib.util

    if torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("CUDA and bitsandbytes are both present: 4-bit loading is possible here")
    with pytest.raises(RuntimeError, match="load_in_4bit needs"):
        load_audio_llm(AudioLLMConfig(model=str(tmp_path), load_in_4bit=True))


def _lora_weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def test_sft_step_updates_lora(tiny_dir, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    data = Dataset.from_dict({
        "audio": [_clip(0.4, 1).tolist(), _clip(0.6, 2).tolist()],
        "prompt": ["ship: accuracy 4.0", "sheep: accuracy 9.0"],
        "completion": ["The vowel is short.", "Well said."],
    })
    args = SFTConfig(output_dir=str(tmp_path), remove_unused_columns=False,
                     dataset_kwargs={"skip_prepare_dataset": True}, **_CPU)
    model, processor = load_audio_llm(_tiny_config(tiny_dir))  # a PeftModel, as for the real checkpoint
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=processor,
                         data_collator=AudioSFTCollator(processor))
    before = _lora_weights(trainer.model)
    result = trainer.train()
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    after = _lora_weights(trainer.model)
    assert any(not torch.equal(before[n], after[n]) for n in before)


def _preference_rows() -> dict[str, list]:
    return {
        "audio": [_clip(0.5, 3).tolist(), _clip(0.3, 4).tolist()],
        "prompt": ["ship: accuracy 4.0", "bear: accuracy 8.5"],
        "chosen": ["Short vowel.", "Fine."],
        "rejected": ["Long vowel, well done.", "Bad."],
    }


def test_preference_collator_layout(processor):
    rows = _preference_rows()
    batch = AudioPreferenceCollator(processor)([{k: v[i] for k, v in rows.items()} for i in range(2)])
    assert batch["input_ids"].shape[0] == 4 and batch["input_features"].shape == (4, 16, 100)
    torch.testing.assert_close(batch["input_features"][:2], batch["input_features"][2:])
    tokenizer = processor.tokenizer
    for row, side in ((0, "chosen"), (1, "chosen"), (2, "rejected"), (3, "rejected")):
        completion = batch["input_ids"][row][batch["completion_mask"][row].bool()]
        assert tokenizer.decode(completion) == rows[side][row % 2] + "<|im_end|>"
        assert _audio_token_count(processor, {"input_ids": batch["input_ids"][row]}) == (12, 7)[row % 2]
    assert (batch["completion_mask"] <= batch["attention_mask"]).all()
    # trl's DPOTrainer appends the tokenizer's EOS to chosen/rejected: the turn still ends with one <|im_end|>
    with_eos = [{**{k: v[i] for k, v in rows.items()}, "chosen": rows["chosen"][i] + "<|im_end|>"} for i in range(2)]
    torch.testing.assert_close(AudioPreferenceCollator(processor)(with_eos)["input_ids"], batch["input_ids"])


def test_bounded_dpo_step_with_audio(processor, tmp_path):
    from datasets import Dataset
    from orthoepy.rationalizer.bounded_dpo import BoundedDPOConfig, BoundedDPOTrainer

    args = BoundedDPOConfig(output_dir=str(tmp_path), remove_unused_columns=False, **_CPU)
    trainer = BoundedDPOTrainer(model=tiny_qwen2_audio(processor=processor), args=args,
                                train_dataset=Dataset.from_dict(_preference_rows()), processing_class=processor,
                                data_collator=AudioPreferenceCollator(processor), peft_config=lora_config(_TINY_LORA))
    assert set(trainer.model.peft_config) == {"default"}  # no "ref" adapter: the reference is the adapter disabled
    audio_batches = []
    tower = trainer.model.get_base_model().model.audio_tower
    tower.register_forward_hook(lambda module, args, output: audio_batches.append(args[0].shape[0]))
    before = _lora_weights(trainer.model)
    result = trainer.train()
    assert math.isfinite(result.training_loss)
    assert audio_batches == [4, 4]  # the audio reached the policy and the reference (adapter disabled) passes
    logged = next(h for h in trainer.state.log_history if "loss" in h)
    assert "sft_loss" in logged
    assert logged["rewards/chosen"] == 0 and logged["rewards/margins"] == 0  # fresh adapter: policy = reference
    after = _lora_weights(trainer.model)
    assert any(not torch.equal(before[n], after[n]) for n in before)


def test_dpo_after_sft_uses_the_sft_adapter_as_reference(processor, tiny_dir, tmp_path):
    from datasets import Dataset
    from peft import get_peft_model
    from orthoepy.rationalizer.bounded_dpo import BoundedDPOConfig, BoundedDPOTrainer

    sft = get_peft_model(tiny_qwen2_audio(processor=processor), lora_config(_TINY_LORA))
    with torch.no_grad():  # stand-in for SFT training: a non-zero adapter
        for name, weight in sft.named_parameters():
            if "lora_B" in name:
                weight.add_(0.1 * torch.randn_like(weight))
    sft.save_pretrained(tmp_path / "sft-adapter")
    model, processor = load_audio_llm(_tiny_config(tiny_dir, adapter=str(tmp_path / "sft-adapter")))
    saved = {n.replace(".default", ""): w for n, w in _lora_weights(sft).items()}
    loaded = {n.replace(".default", ""): w for n, w in _lora_weights(model).items()}
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[n], loaded[n]) for n in saved)
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)

    args = BoundedDPOConfig(output_dir=str(tmp_path / "dpo"), remove_unused_columns=False, **_CPU)
    trainer = BoundedDPOTrainer(model=model, args=args, train_dataset=Dataset.from_dict(_preference_rows()),
                                processing_class=processor, data_collator=AudioPreferenceCollator(processor))
    assert set(trainer.model.peft_config) == {"default", "ref"}
    trainer.train()
    logged = next(h for h in trainer.state.log_history if "loss" in h)
    # reference = the SFT adapter (its frozen copy), not the base: the policy starts exactly at the reference
    assert logged["rewards/chosen"] == 0 and logged["rewards/rejected"] == 0


def test_simpo_step_with_audio(processor, tmp_path):
    from datasets import Dataset
    from trl.experimental.cpo import CPOConfig
    from orthoepy.rationalizer.audio_llm import AudioCPOCollator, AudioCPOTrainer

    args = CPOConfig(output_dir=str(tmp_path), loss_type="simpo", cpo_alpha=0.0, remove_unused_columns=False, **_CPU)
    trainer = AudioCPOTrainer(model=tiny_qwen2_audio(processor=processor), args=args,
                              train_dataset=Dataset.from_dict(_preference_rows()), processing_class=processor.tokenizer,
                              data_collator=AudioCPOCollator(processor), peft_config=lora_config(_TINY_LORA))
    audio_batches = []
    tower = trainer.model.get_base_model().model.audio_tower
    tower.register_forward_hook(lambda module, args, output: audio_batches.append(args[0].shape[0]))
    before = _lora_weights(trainer.model)
    result = trainer.train()
    assert math.isfinite(result.training_loss) and audio_batches == [4]  # [chosen; rejected] of 2 pairs, one pass
    after = _lora_weights(trainer.model)
    assert any(not torch.equal(before[n], after[n]) for n in before)


def test_generation_returns_a_string(processor):
    model = tiny_qwen2_audio(seed=1, processor=processor)
    text = generate_rationale(model, processor, _clip(0.5), "ship: accuracy 4.0", max_new_tokens=6)
    assert isinstance(text, str)


def test_audio_must_be_mono_and_not_too_short(processor):
    with pytest.raises(ValueError, match="mono"):
        audio_chat_inputs(processor, np.zeros((2, 8000), dtype=np.float32), "x")
    with pytest.raises(ValueError, match="too short"):
        audio_chat_inputs(processor, np.zeros(800, dtype=np.float32), "x")
