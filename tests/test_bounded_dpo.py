"""Bounded DPO (Cho et al. 2025, arXiv:2506.12725): the loss and a tiny end-to-end trl training step."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("trl")
from orthoepy.rationalizer.bounded_dpo import BoundedDPOConfig, BoundedDPOTrainer, bounded_dpo_loss  # noqa: E402


def _logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def _t(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64)


def test_loss_on_hand_computed_logps():
    pc, pr, rc, rr = _t(-5.0, -12.0), _t(-7.0, -9.5), _t(-6.0, -11.0), _t(-8.0, -10.0)
    beta, m = 0.1, 0.5  # m = weight of pi_ref in the rejected-side mixture
    losses, chosen_r, rejected_r = bounded_dpo_loss(pc, pr, rc, rr, beta=beta, mixture=m)
    for i in range(2):
        log_mix = math.log((1 - m) * math.exp(pr[i].item()) + m * math.exp(rr[i].item()))
        chosen = pc[i].item() - rc[i].item()
        rejected = pr[i].item() - log_mix
        expected = -_logsigmoid(beta * (chosen - rejected))
        assert losses[i].item() == pytest.approx(expected, abs=1e-12)
        assert chosen_r[i].item() == pytest.approx(beta * chosen, abs=1e-12)
        assert rejected_r[i].item() == pytest.approx(beta * rejected, abs=1e-12)
    # example 0 by hand: log_mix = log(0.5 e^-7 + 0.5 e^-8) = -7 + log((1 + e^-1)/2)
    assert losses[0].item() == pytest.approx(-_logsigmoid(0.1 * (1.0 + math.log((1 + math.exp(-1)) / 2))), abs=1e-12)
    # also on an asymmetric mixture, and in float32
    losses, _, _ = bounded_dpo_loss(pc.float(), pr.float(), rc.float(), rr.float(), beta=0.5, mixture=0.2)
    log_mix = math.log(0.8 * math.exp(-7.0) + 0.2 * math.exp(-8.0))
    assert losses[0].item() == pytest.approx(-_logsigmoid(0.5 * (1.0 - (-7.0 - log_mix))), abs=1e-6)


@pytest.mark.parametrize("mixture", [1.0, 1.0 - 1e-15])  # exact, and the continuous limit
def test_mixture_one_is_standard_dpo(mixture):
    g = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-20 * torch.rand(16, generator=g, dtype=torch.float64) for _ in range(4))
    beta = 0.1
    losses, _, _ = bounded_dpo_loss(pc, pr, rc, rr, beta=beta, mixture=mixture)
    # textbook DPO, which is trl's "sigmoid" loss with f_divergence_type="reverse_kl"
    dpo = -F.logsigmoid(beta * ((pc - rc) - (pr - rr)))
    torch.testing.assert_close(losses, dpo, atol=1e-6, rtol=0)


def test_mixture_zero_drops_rejected_term_and_half_matches_trl_js_score():
    pc, pr, rc, rr = _t(-5.0, -3.0), _t(-7.0, -1.0), _t(-6.0, -4.0), _t(-8.0, -9.0)
    losses, _, rejected_r = bounded_dpo_loss(pc, pr, rc, rr, beta=0.1, mixture=0.0)
    torch.testing.assert_close(losses, -F.logsigmoid(0.1 * (pc - rc)))
    torch.testing.assert_close(rejected_r, torch.zeros(2, dtype=torch.float64))
    # mixture 0.5: the rejected term equals trl's js_divergence score log 2 + logsigmoid(pr - rr)
    _, _, rejected_r = bounded_dpo_loss(pc, pr, rc, rr, beta=1.0, mixture=0.5)
    torch.testing.assert_close(rejected_r, math.log(2) + F.logsigmoid(pr - rr))
    with pytest.raises(ValueError):
        bounded_dpo_loss(pc, pr, rc, rr, mixture=1.5)


def test_rejected_side_is_bounded():
    beta = 0.1
    rc, rr, pc = _t(-10.0), _t(-10.0), _t(-10.0)
    grads = {}
    for m in (1.0, 0.5):  # standard DPO vs BDPO
        pr = _t(30.0).requires_grad_()  # policy puts far more mass on the rejected response than the reference
        loss, _, rejected_r = bounded_dpo_loss(pc, pr, rc, rr, beta=beta, mixture=m)
        loss.sum().backward()
        grads[m] = pr.grad.item()
        assert math.isfinite(grads[m])
        if m == 0.5:  # rejected log-ratio <= -log(1 - m) = log 2, whereas DPO's is 40
            assert rejected_r.item() / beta <= math.log(2) + 1e-12
    assert 0 <= grads[0.5] < 1e-10 < 0.09 < grads[1.0] <= beta  # DPO: beta * sigmoid(4) ~ 0.098
    # the rejected log-ratio's slope in pr lies in (0, 1) everywhere (it is 1 for DPO), so |dL/dpr| < beta
    pr = torch.linspace(-200, 200, 41, dtype=torch.float64).requires_grad_()
    n = pr.numel()
    loss, _, _ = bounded_dpo_loss(pc.expand(n), pr, rc.expand(n), rr.expand(n), beta=beta, mixture=0.5)
    loss.sum().backward()
    assert torch.isfinite(pr.grad).all() and (pr.grad >= 0).all() and (pr.grad < beta).all()


_CPU = dict(output_dir="unused", report_to="none", use_cpu=True, bf16=False)  # trl defaults to bf16


def test_config_defaults():
    cfg = BoundedDPOConfig(**_CPU)
    assert cfg.mixture == 0.5 and cfg.beta == 0.1
    assert cfg.loss_type == ["sigmoid", "sft"] and cfg.loss_weights == [1.0, 1.0]
    assert BoundedDPOConfig(**_CPU, loss_type="sigmoid").loss_weights is None
    with pytest.raises(ValueError):
        BoundedDPOConfig(**_CPU, mixture=-0.1)


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<unk>", "<eos>", "say", "ship", "sheep", "the", "vowel", "is", "long", "short", "good", "bad"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")


def _tiny_model(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    ))


def _pairs():
    from datasets import Dataset

    return Dataset.from_dict({
        "prompt": ["say ship", "say sheep", "the vowel", "say the"],
        "chosen": [" the vowel is short", " the vowel is long", " is good", " ship is good"],
        "rejected": [" the vowel is long", " the vowel is short", " is bad", " sheep is bad"],
    })


def test_trainer_with_mixture_one_matches_trl_dpo(tmp_path):
    """The override reproduces trl's own DPOTrainer loss (sigmoid + sft) when mixture = 1, on a real batch."""
    from trl import DPOConfig, DPOTrainer

    tokenizer, data = _tiny_tokenizer(), _pairs()
    kw = dict(output_dir=str(tmp_path), per_device_train_batch_size=4, report_to="none", use_cpu=True, bf16=False,
              loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.5], beta=0.3)
    model, ref = _tiny_model(tokenizer), _tiny_model(tokenizer)
    with torch.no_grad():  # make the policy differ from the reference
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ours = BoundedDPOTrainer(model=model, ref_model=ref, args=BoundedDPOConfig(**kw, mixture=1.0),
                             train_dataset=data, processing_class=tokenizer)
    theirs = DPOTrainer(model=model, ref_model=ref, args=DPOConfig(**kw), train_dataset=data,
                        processing_class=tokenizer)
    batch = next(iter(theirs.get_train_dataloader()))
    model.eval()
    with torch.no_grad():
        expected = theirs.compute_loss(model, batch)
        got = ours.compute_loss(model, batch)
        got_half = BoundedDPOTrainer(model=model, ref_model=ref, args=BoundedDPOConfig(**kw), train_dataset=data,
                                     processing_class=tokenizer).compute_loss(model, batch)
    assert abs(expected.item() - got.item()) < 1e-6
    assert abs(expected.item() - got_half.item()) > 1e-6  # mixture 0.5 really changes the loss


def test_end_to_end_lora_step(tmp_path):
    from peft import LoraConfig

    tokenizer = _tiny_tokenizer()
    model = _tiny_model(tokenizer)
    data = _pairs()
    args = BoundedDPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2, max_steps=2, learning_rate=5e-2,
        logging_steps=1, report_to="none", save_strategy="no", use_cpu=True, bf16=False, fp16=False,
        dataloader_num_workers=0, seed=0,
    )
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0, task_type="CAUSAL_LM")
    trainer = BoundedDPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer,
                                peft_config=lora)
    assert trainer.mixture == 0.5
    lora_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    assert lora_before and all(p.requires_grad for n, p in trainer.model.named_parameters() if "lora_" in n)

    result = trainer.train()

    assert math.isfinite(result.training_loss)
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and all(math.isfinite(h["loss"]) for h in logged)
    assert "rewards/margins" in logged[0] and "sft_loss" in logged[0]
    lora_after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(lora_before[n], lora_after[n].detach()) for n in lora_before)
