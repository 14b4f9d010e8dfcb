"""The PPO-clip policy loss, KL estimators and loss aggregations.

Shapes: `B` sequences (samples) by `T` response positions. `mask[B, T]` is 1 on the response
tokens that are trained and 0 on padding; every mean below is over masked tokens only.

Options, each of which changes the loss (tests check that every one does):

- asymmetric clipping: the ratio is clipped to `[1 - clip_low, 1 + clip_high]` (clip-higher);
- dual clip (`ratio_cap`): for negative advantages the loss is capped at `-ratio_cap * A`, so a
  sample whose ratio ran away cannot dominate the batch. MM-EUREKA's qwen recipe clamps the
  ratio at 3.0 before the PPO clip, which gives the same loss and gradient as this cap of 3.0
  (for A > 0 the upper clip already binds below 3); here it is an option, off by default;
- KL in the loss: `kl_coef * KL(policy || reference)` added per token (k1, k2 or k3);
- aggregation: `seq-mean-token-mean` (MM-EUREKA), `token-mean` (DAPO: long responses weigh
  more; in MM-EUREKA its flag is accepted and ignored, here it is a different loss), or
  `seq-mean-token-sum` (Dr. GRPO style, no length normalisation).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from eureka_trainer.registry import Registry

KL_LOG_RATIO_CLAMP = 20.0
"""k3 exponentiates the log-ratio; clamping it first keeps a wild token finite (exp(20) ~ 5e8)."""

K3_CLAMP = 10.0
"""The k3 estimate itself is clamped to [-10, 10], as verl (`low_var_kl`) and OpenRLHF do: a
token where the policy left the reference far behind would otherwise carry a KL of up to ~5e8
and a gradient of that size (the clamp makes its KL gradient 0 instead)."""

RATIO_LOG_CLAMP = 20.0
"""The policy/old log-ratio is clamped to +-20 before exp (verl does the same)."""

KLFn = Callable[[torch.Tensor], torch.Tensor]
AggregateFn = Callable[[torch.Tensor, torch.Tensor, "float | None"], torch.Tensor]

KL_ESTIMATORS: Registry[KLFn] = Registry("KL estimator")
AGGREGATIONS: Registry[AggregateFn] = Registry("loss aggregation")


@KL_ESTIMATORS.decorator("k1")
def _k1(log_ratio: torch.Tensor) -> torch.Tensor:
    """k1 = log r (unbiased, can be negative per token)."""
    return log_ratio


@KL_ESTIMATORS.decorator("k2")
def _k2(log_ratio: torch.Tensor) -> torch.Tensor:
    """k2 = (log r)^2 / 2."""
    return log_ratio.square() / 2


@KL_ESTIMATORS.decorator("k3")
def _k3(log_ratio: torch.Tensor) -> torch.Tensor:
    """k3 = exp(-log r) - 1 + log r (non-negative, unbiased for KL(policy || reference)),
    `[B, T] -> [B, T]`, clamped to `[-K3_CLAMP, K3_CLAMP]` (reached at log r < -2.3 or > 11)."""
    return _k3_unclamped(log_ratio).clamp(min=-K3_CLAMP, max=K3_CLAMP)


def _k3_unclamped(log_ratio: torch.Tensor) -> torch.Tensor:
    """k3 with only the log-ratio clamped (finite; the `policy/approx_kl` metric reports it)."""
    clamped = log_ratio.clamp(min=-KL_LOG_RATIO_CLAMP, max=KL_LOG_RATIO_CLAMP)
    return torch.expm1(-clamped) + clamped


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token KL estimate of the policy against the reference, `[B, T], [B, T] -> [B, T]`.

    With `log r = logprobs - ref_logprobs`: k1 = log r, k2 = (log r)^2 / 2,
    k3 = exp(-log r) - 1 + log r, clamped to +-10 (`K3_CLAMP`). Padding positions are not masked here; the caller masks.
    """
    return KL_ESTIMATORS.get(estimator)(logprobs - ref_logprobs)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked entries (0 when nothing is masked); any shape."""
    return torch.where(mask, values, 0.0).sum() / mask.sum().clamp(min=1)


def _has_tokens(mask: torch.Tensor) -> torch.Tensor:
    """Rows with at least one masked token, `[B, T] -> [B]` float."""
    return (mask.sum(dim=-1) > 0).to(torch.float32)


@AGGREGATIONS.decorator("seq-mean-token-mean")
def _seq_mean_token_mean(
    loss: torch.Tensor, mask: torch.Tensor, normalizer: float | None
) -> torch.Tensor:
    """Token mean per sequence, then mean over sequences that have tokens (or / `normalizer`)."""
    per_seq = torch.where(mask, loss, 0.0).sum(-1) / mask.sum(-1).clamp(min=1)
    denominator = _has_tokens(mask).sum().clamp(min=1) if normalizer is None else normalizer
    return per_seq.sum() / denominator


@AGGREGATIONS.decorator("token-mean")
def _token_mean(loss: torch.Tensor, mask: torch.Tensor, normalizer: float | None) -> torch.Tensor:
    """Mean over every masked token of the batch (or their sum / `normalizer`)."""
    denominator = mask.sum().clamp(min=1) if normalizer is None else normalizer
    return torch.where(mask, loss, 0.0).sum() / denominator


@AGGREGATIONS.decorator("seq-mean-token-sum")
def _seq_mean_token_sum(
    loss: torch.Tensor, mask: torch.Tensor, normalizer: float | None
) -> torch.Tensor:
    """Token sum per sequence, then mean over sequences that have tokens (or / `normalizer`)."""
    per_seq = torch.where(mask, loss, 0.0).sum(-1)
    denominator = _has_tokens(mask).sum().clamp(min=1) if normalizer is None else normalizer
    return per_seq.sum() / denominator


def aggregate_loss(
    loss: torch.Tensor, mask: torch.Tensor, aggregation: str, normalizer: float | None = None
) -> torch.Tensor:
    """Per-token losses `[B, T]` -> one scalar, by the aggregation registered as `aggregation`.

    `normalizer`: when one train batch is split into micro-batches, the batch-wide count the
    aggregation divides by (masked tokens for `token-mean`, sequences with tokens otherwise),
    so that summing the micro-batch losses gives exactly the full batch's loss. None: this
    batch's own count.
    """
    return AGGREGATIONS.get(aggregation)(loss, mask.bool(), normalizer)


def aggregation_names() -> list[str]:
    """Registered loss aggregations."""
    return AGGREGATIONS.names()


def kl_estimator_names() -> list[str]:
    """Registered KL estimators."""
    return KL_ESTIMATORS.names()


def clipped_surrogate(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
    ratio_cap: float | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO-clip loss and where the clip bound it, `[B, T] x2 -> ([B, T], [B, T] bool)`.

    loss = -min(r A, clip(r, 1 - clip_low, 1 + clip_high) A); with `ratio_cap` c, tokens with
    A < 0 take min(loss, -c A) (dual clip).
    """
    unclipped = -ratio * advantages
    clipped = -ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * advantages
    loss = torch.maximum(unclipped, clipped)
    was_clipped = clipped > unclipped
    if ratio_cap is not None:
        capped = torch.minimum(loss, -ratio_cap * advantages)
        dual = (advantages < 0) & (capped < loss)
        loss = torch.where(advantages < 0, capped, loss)
        was_clipped = was_clipped | dual
    return loss, was_clipped


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    ratio_cap: float | None = None,
    aggregation: str = "seq-mean-token-mean",
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k1",
    kl_in_loss: bool = False,
    entropy: torch.Tensor | None = None,
    normalizer: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The PPO-clip policy loss of one (micro-)batch and its metrics.

    logprobs: `[B, T]` log-probs of the sampled tokens under the current policy (with grad).
    old_logprobs: `[B, T]` under the policy that sampled them (no grad). advantages: `[B, T]`.
    mask: `[B, T]` 1 on trained response tokens. ref_logprobs: `[B, T]` under the frozen
    reference, or None. entropy: `[B, T]` per-token entropy, reported only. `kl_in_loss`: add
    `kl_coef * KL` per token (needs `ref_logprobs`). `normalizer`: see `aggregate_loss`.

    Returns the scalar loss and metrics (python floats, token means over the mask):
    `policy/loss`, `policy/clip_fraction` (tokens where a clip bound the loss),
    `policy/approx_kl` (k3 estimate of KL(old || current)), `policy/ratio_mean`,
    `policy/kl` (when `ref_logprobs` is given), `policy/entropy` (when `entropy` is given).
    """
    mask = mask.bool()
    # Padding positions may hold anything (even inf): select, never multiply, so that neither
    # the loss nor the gradient of a padding position can become NaN.
    log_ratio = torch.where(mask, logprobs - old_logprobs, 0.0)
    # exp of a runaway log-ratio is inf, and inf * (A = 0) is NaN: clamp first (the clip or the
    # cap bounds such a token's loss anyway; its gradient is 0 either way).
    log_ratio = log_ratio.clamp(min=-RATIO_LOG_CLAMP, max=RATIO_LOG_CLAMP)
    advantages = torch.where(mask, advantages, 0.0)
    ratio = torch.exp(log_ratio)
    token_loss, was_clipped = clipped_surrogate(
        ratio, advantages, clip_low=clip_low, clip_high=clip_high, ratio_cap=ratio_cap
    )
    kl: torch.Tensor | None = None
    if ref_logprobs is not None:
        kl = KL_ESTIMATORS.get(kl_estimator)(torch.where(mask, logprobs - ref_logprobs, 0.0))
    if kl_in_loss:
        if kl is None:
            raise ValueError("kl_in_loss needs ref_logprobs")
        token_loss = token_loss + kl_coef * kl
    loss = aggregate_loss(token_loss, mask, aggregation, normalizer)
    metrics = _metrics(loss, log_ratio, ratio, was_clipped, mask, kl, entropy)
    return loss, metrics


def _metrics(
    loss: torch.Tensor,
    log_ratio: torch.Tensor,
    ratio: torch.Tensor,
    was_clipped: torch.Tensor,
    mask: torch.Tensor,
    kl: torch.Tensor | None,
    entropy: torch.Tensor | None,
) -> dict[str, float]:
    """Detached scalar metrics of `policy_loss` (token means over `mask`)."""
    with torch.no_grad():
        metrics = {
            "policy/loss": float(loss.detach()),
            "policy/clip_fraction": float(_masked_mean(was_clipped.float(), mask)),
            # KL(old || current) on tokens sampled from the old policy: k3 of -log ratio.
            "policy/approx_kl": float(_masked_mean(_k3_unclamped(-log_ratio.detach()), mask)),
            "policy/ratio_mean": float(_masked_mean(ratio.detach(), mask)),
        }
        if kl is not None:
            metrics["policy/kl"] = float(_masked_mean(kl.detach(), mask))
        if entropy is not None:
            metrics["policy/entropy"] = float(_masked_mean(entropy.detach(), mask))
    return metrics
