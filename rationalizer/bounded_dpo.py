"""Bounded DPO (BDPO) as a drop-in subclass of trl's ``DPOTrainer``.

Reference: J. H. Cho, J. Oh, M. Kim, B.-J. Lee, "Rethinking DPO: The Role of Rejected Responses in Preference
Misalignment", arXiv:2506.12725 (Findings of EMNLP 2025), as used for the rationalizer in arXiv:2606.09470.

BDPO keeps DPO's chosen-side log-ratio but replaces the *reference* likelihood of the rejected response by a
mixture of the policy and the reference, which caps how much the rejected response can dominate the loss.

Written against trl 1.16.0, whose ``DPOTrainer`` computes the DPO loss inline in ``_compute_loss`` (there is no
separate ``dpo_loss`` method any more), so ``_compute_loss`` is the one method overridden here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from trl import DPOConfig, DPOTrainer

__all__ = ["bounded_dpo_loss", "BoundedDPOConfig", "BoundedDPOTrainer"]


def bounded_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
    mixture: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Per-pair Bounded-DPO loss on sequence log-probabilities (each tensor of shape ``(B,)``).

    With :math:`m` = ``mixture`` (the weight of the **reference** in the rejected-side mixture)::

        log pi_mix(y_l) = log((1 - m) * pi_theta(y_l) + m * pi_ref(y_l))        # torch.logaddexp, in log space
        loss = -log sigmoid( beta * [ (log pi_theta(y_w) - log pi_ref(y_w))
                                    - (log pi_theta(y_l) - log pi_mix(y_l)) ] )

    Parameterisation. Cho et al. (2025) write the mixture as ``lambda * pi_theta + (1 - lambda) * pi_ref``, so
    ``mixture = 1 - lambda``:

    * ``mixture = 1`` (paper lambda = 0): pi_mix = pi_ref, i.e. **standard sigmoid DPO**
      (``-log sigmoid(beta * [(pc - rc) - (pr - rr)])``).
    * ``mixture = 0`` (paper lambda = 1): pi_mix = pi_theta, the rejected log-ratio is identically 0 and the loss
      reduces to ``-log sigmoid(beta * (pc - rc))`` (the rejected response no longer contributes).
    * ``mixture = 0.5`` (the default, lambda = 0.5 in either convention).

    Why "bounded": the rejected log-ratio equals ``-log((1 - m) + m * exp(rr - pr))`` which is bounded above by
    ``-log(1 - m)`` (DPO's ``pr - rr`` is unbounded), and its derivative w.r.t. ``pr`` lies in ``(0, 1)``
    (it is exactly 1 for DPO), so the rejected side's gradient is damped as the policy over-weights it.

    Returns ``(losses, chosen_rewards, rejected_rewards)``, all shape ``(B,)``; the rewards are detached
    ``beta * log-ratio`` with the rejected one taken against ``pi_mix`` (for logging, as trl does).
    """
    if not 0.0 <= mixture <= 1.0:
        raise ValueError(f"mixture must lie in [0, 1], got {mixture}")
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    if mixture == 1.0:  # log(0) would appear below; this is exactly pi_mix = pi_ref
        mix_rejected_logps = ref_rejected_logps
    elif mixture == 0.0:  # exactly pi_mix = pi_theta
        mix_rejected_logps = policy_rejected_logps
    else:
        mix_rejected_logps = torch.logaddexp(
            policy_rejected_logps + math.log1p(-mixture), ref_rejected_logps + math.log(mixture)
        )
    rejected_logratios = policy_rejected_logps - mix_rejected_logps
    losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


@dataclass
class BoundedDPOConfig(DPOConfig):
    """``DPOConfig`` plus the BDPO ``mixture`` (weight of pi_ref in the rejected-side mixture; 1 = standard DPO).

    The SFT (NLL) term on the chosen completion uses trl's own multi-loss mechanism: the default ``loss_type`` is
    ``["sigmoid", "sft"]`` with ``loss_weights`` ``[1.0, 1.0]``; ``"sigmoid"`` is computed as Bounded DPO by
    :class:`BoundedDPOTrainer`. Use ``loss_type=["sigmoid"]`` to drop the SFT term, or change ``loss_weights``.
    """

    mixture: float = field(
        default=0.5,
        metadata={"help": "Weight of pi_ref in the BDPO rejected-side mixture (1 - lambda of Cho et al. 2025); "
                          "1.0 reproduces standard DPO, 0.0 removes the rejected term."},
    )
    loss_type: list[str] = field(default_factory=lambda: ["sigmoid", "sft"])
    loss_weights: list[float] | None = field(default_factory=lambda: [1.0, 1.0])

    def __post_init__(self):
        if isinstance(self.loss_type, str):
            self.loss_type = [self.loss_type]
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            # The default weights only fit the default loss_type; fall back to trl's equal weighting.
            self.loss_weights = None
        super().__post_init__()
        if not 0.0 <= self.mixture <= 1.0:
            raise ValueError(f"mixture must lie in [0, 1], got {self.mixture}")


class BoundedDPOTrainer(DPOTrainer):
    """``DPOTrainer`` whose ``"sigmoid"`` loss is Bounded DPO (:func:`bounded_dpo_loss`).

    Only ``_compute_loss`` is overridden. Supported: loss types ``"sigmoid"`` (-> BDPO) and ``"sft"`` (trl's NLL on
    the chosen completion), with ``loss_weights``; PEFT (reference = adapters disabled), an explicit ``ref_model``,
    and ``precompute_ref_log_probs``. Not supported (rejected at construction): other loss types, ``ld_alpha``,
    ``f_divergence_type`` other than ``"reverse_kl"``, and ``use_weighting``.
    """

    _SUPPORTED_LOSSES = {"sigmoid", "sft"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        unsupported = set(self.loss_types) - self._SUPPORTED_LOSSES
        if unsupported or "sigmoid" not in self.loss_types:
            raise ValueError(f"BoundedDPOTrainer needs loss_type ⊆ {sorted(self._SUPPORTED_LOSSES)} including "
                             f"'sigmoid'; got {self.loss_types}")
        if self.ld_alpha is not None or self.f_divergence_type != "reverse_kl" or self.use_weighting:
            raise NotImplementedError("BoundedDPOTrainer does not support ld_alpha, f_divergence_type != "
                                      "'reverse_kl' or use_weighting")
        self.mixture = float(getattr(self.args, "mixture", 0.5))

    def _compute_loss(self, model, inputs, return_outputs):
        mode = "train" if self.model.training else "eval"
        _non_model_keys = {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}
        model_kwargs = {k: v for k, v in inputs.items() if k not in _non_model_keys}
        model_kwargs["use_cache"] = False
        if self.aux_loss_enabled:
            model_kwargs["output_router_logits"] = True
        completion_mask = inputs["completion_mask"]
        shift_completion_mask = completion_mask[..., 1:]
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        # Same policy forward as trl: the fused LM head returns per-token log-probs of `labels` (0 where masked).
        outputs = model(**model_kwargs, labels=labels, fused_lm_head=True)
        seq_len = shift_completion_mask.size(1)
        per_token_logps = outputs.log_probs[:, -seq_len:]
        chosen_logps, rejected_logps = per_token_logps.sum(dim=1).chunk(2, dim=0)  # batch is [chosen, rejected]

        if self.precompute_ref_logps:
            ref_chosen_logps, ref_rejected_logps = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]
        else:  # trl's own reference pass (handles PEFT adapter disabling / the "ref" adapter / ref_model)
            ref_model = self.ref_model if self.ref_model is not None else model  # as in trl's precompute pass
            ref_chosen_logps, ref_rejected_logps = self.compute_ref_log_probs(ref_model, inputs)

        losses, chosen_rewards, rejected_rewards = bounded_dpo_loss(
            chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, beta=self.beta, mixture=self.mixture
        )
        loss = 0.0
        for loss_type, loss_weight in zip(self.loss_types, self.loss_weights, strict=True):
            if loss_type == "sigmoid":
                per_sequence_loss = losses
            else:  # "sft": identical to trl 1.16's "sft" branch (mean NLL over chosen completion tokens)
                chosen_mask, _ = shift_completion_mask.chunk(2, dim=0)
                chosen_per_token_logps, _ = per_token_logps.chunk(2, dim=0)
                per_sequence_loss = -chosen_per_token_logps[chosen_mask.bool()].mean().expand(chosen_mask.size(0))
                self._metrics[mode]["sft_loss"].append(per_sequence_loss[0].detach().item())
            loss = loss + per_sequence_loss.mean() * loss_weight
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss

        # A subset of trl's metrics (rewards use the BDPO rejected log-ratio against pi_mix).
        gather = self.accelerator.gather
        self._metrics[mode]["rewards/chosen"].append(gather(chosen_rewards).mean().item())
        self._metrics[mode]["rewards/rejected"].append(gather(rejected_rewards).mean().item())
        self._metrics[mode]["rewards/accuracies"].append(gather((chosen_rewards > rejected_rewards).float()).mean().item())
        self._metrics[mode]["rewards/margins"].append(gather(chosen_rewards - rejected_rewards).mean().item())
        self._metrics[mode]["logps/chosen"].append(gather(chosen_logps.detach()).mean().item())
        self._metrics[mode]["logps/rejected"].append(gather(rejected_logps.detach()).mean().item())

        if return_outputs:
            with torch.no_grad():
                outputs = model(**model_kwargs)
        return (loss, outputs) if return_outputs else loss
