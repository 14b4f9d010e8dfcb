"""Advantage estimators: rewards of prompt groups -> sequence- and token-level advantages.

Two pure steps:

1. `compute_advantages(estimator, rewards[P, n]) -> [P, n]`: the estimator's baseline (group
   mean, leave-one-out, group normalisation or none) on one scalar reward per sample.
2. `compute_token_advantages(estimator, rewards[P, n], response_mask[P*n, T], ...) -> [P*n, T]`:
   clamps the rewards, applies step 1, puts the result on each response's last token, adds the
   per-token KL reward when KL sits in the reward, takes returns with gamma 1 and whitens over
   every response token of the batch when the estimator asks for it (REINFORCE++ and
   REINFORCE-with-baseline, as OpenRLHF and MM-EUREKA do).

Samples are laid out prompt-major: row `p * n + i` of a `[P*n, T]` tensor is sample `i` of
prompt `p`, i.e. `rewards.reshape(-1)` order.

Where MM-EUREKA is fragile, this module is not: a group whose rewards are all equal gets an
advantage of exactly 0 (not `(r - mean) / 1e-9` of a rounding error, which can reach 1e2),
a group of one sample gets 0 instead of NaN, and padding positions are exactly 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from eureka_trainer.registry import Registry

GRPO_EPS = 1e-9
"""Added to the group's standard deviation (MM-EUREKA / OpenRLHF `group_norm`)."""
WHITEN_EPS = 1e-8
"""Added to the global standard deviation of token-level whitening."""

EstimatorFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EstimatorInfo:
    """One registered advantage estimator.

    `fn` maps clamped rewards `[P, n]` to sequence advantages `[P, n]`. `whiten`: the token
    advantages are whitened over the whole batch afterwards. `needs_group`: the estimator uses
    the prompt groups (its baseline comes from the other samples of the same prompt), so it
    needs `n >= 2` to learn anything.
    """

    name: str
    fn: EstimatorFn
    whiten: bool
    needs_group: bool


ESTIMATORS: Registry[EstimatorInfo] = Registry("advantage estimator")


def register_estimator(
    name: str, *, whiten: bool, needs_group: bool
) -> Callable[[EstimatorFn], EstimatorFn]:
    """Decorator registering `fn(rewards[P, n]) -> advantages[P, n]` as estimator `name`."""

    def register(fn: EstimatorFn) -> EstimatorFn:
        ESTIMATORS.add(name, EstimatorInfo(name, fn, whiten=whiten, needs_group=needs_group))
        return fn

    return register


def get_estimator(name: str) -> EstimatorInfo:
    """The estimator registered as `name` (KeyError listing the known names otherwise)."""
    return ESTIMATORS.get(name)


def estimator_names() -> list[str]:
    """Names of every registered estimator, sorted."""
    return ESTIMATORS.names()


def _centered(rewards: torch.Tensor) -> torch.Tensor:
    """`r - mean(r)` per group, `[P, n] -> [P, n]`, exactly 0 for groups of equal rewards.

    Why the exact zero: a float mean of equal values can differ from them in the last bit, and
    group normalisation would divide that rounding error by ~1e-9.
    """
    centered = rewards - rewards.mean(dim=-1, keepdim=True)
    flat = rewards.amax(dim=-1, keepdim=True) == rewards.amin(dim=-1, keepdim=True)
    return centered.masked_fill(flat, 0.0)


@register_estimator("grpo", whiten=False, needs_group=True)
def grpo(rewards: torch.Tensor) -> torch.Tensor:
    """GRPO (`group_norm`): `(r - mean) / (std + 1e-9)` with the unbiased std, `[P, n] -> [P, n]`.

    Equal rewards and groups of one sample give 0.
    """
    centered = _centered(rewards)
    if rewards.shape[-1] < 2:
        return centered  # one sample: no spread to normalise by; centered is all 0.
    std = rewards.std(dim=-1, keepdim=True, unbiased=True)
    return centered / (std + GRPO_EPS)


@register_estimator("rloo", whiten=False, needs_group=True)
def rloo(rewards: torch.Tensor) -> torch.Tensor:
    """RLOO: `r_i - (sum_j r_j - r_i) / (n - 1)`, `[P, n] -> [P, n]`.

    Computed as the identical `n / (n - 1) * (r_i - mean)`, so equal rewards give exactly 0;
    a group of one sample has no leave-one-out baseline and gives 0.
    """
    n = rewards.shape[-1]
    if n < 2:
        return torch.zeros_like(rewards)
    return _centered(rewards) * (n / (n - 1))


@register_estimator("reinforce_baseline", whiten=True, needs_group=True)
def reinforce_baseline(rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE with the group mean as baseline: `r - mean`, `[P, n] -> [P, n]` (then whitened)."""
    return _centered(rewards)


@register_estimator("dr_grpo", whiten=False, needs_group=True)
def dr_grpo(rewards: torch.Tensor) -> torch.Tensor:
    """Dr. GRPO: `r - mean` without the std division, `[P, n] -> [P, n]`."""
    return _centered(rewards)


@register_estimator("reinforce", whiten=True, needs_group=False)
def reinforce(rewards: torch.Tensor) -> torch.Tensor:
    """REINFORCE++: the raw reward, `[P, n] -> [P, n]` (KL in the reward, then whitened)."""
    return rewards.clone()


def compute_advantages(estimator: str, rewards: torch.Tensor) -> torch.Tensor:
    """Sequence-level advantages of the estimator named `estimator`.

    rewards: `[P, n]` (P prompts, n samples each), float. Returns `[P, n]`, same dtype.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [prompts, samples], got shape {tuple(rewards.shape)}")
    return get_estimator(estimator).fn(rewards)


def last_token_mask(response_mask: torch.Tensor) -> torch.Tensor:
    """One-hot of each row's last response token, `[B, T] -> [B, T]` bool.

    A row without response tokens is all False.
    """
    mask = response_mask.bool()
    positions = torch.arange(mask.shape[-1], device=mask.device).expand_as(mask)
    last = torch.where(mask, positions, -1).amax(dim=-1, keepdim=True)
    return (positions == last) & mask


def masked_whiten(
    values: torch.Tensor, mask: torch.Tensor, eps: float = WHITEN_EPS
) -> torch.Tensor:
    """`(v - mean) / (std + eps)` over the positions where `mask` is set, 0 elsewhere; `[B, T]`.

    The std is the unbiased one over every masked token of the batch (one token: std 0).
    """
    mask = mask.bool()
    count = mask.sum()
    if count < 1:
        return torch.zeros_like(values)
    mean = torch.where(mask, values, 0.0).sum() / count
    var = torch.where(mask, values - mean, 0.0).square().sum() / (count - 1).clamp(min=1)
    return torch.where(mask, (values - mean) / (var.sqrt() + eps), 0.0)


def returns_to_go(token_rewards: torch.Tensor) -> torch.Tensor:
    """Returns with gamma 1: the reverse cumulative sum along time, `[B, T] -> [B, T]`."""
    return token_rewards.flip(-1).cumsum(-1).flip(-1)


def compute_token_advantages(
    estimator: str,
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    kl: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    reward_clip: float = 10.0,
) -> torch.Tensor:
    """Token-level advantages for the policy loss.

    rewards: `[P, n]` scalar reward per sample. response_mask: `[P*n, T]` (1 on response tokens
    that are trained, 0 on padding), prompt-major rows. kl: `[P*n, T]` per-token KL of the policy
    against the reference (pass it only when KL sits in the reward; with KL in the loss pass
    None or `kl_coef=0`). Returns `[P*n, T]` in the rewards' dtype, exactly 0 where the mask is 0.

    Steps: clamp rewards to `[-reward_clip, reward_clip]`; the estimator's sequence advantage;
    that value on each row's last response token; `-kl_coef * kl` on every response token;
    returns with gamma 1; global whitening over response tokens when the estimator whitens.
    A row without response tokens gets all zeros.
    """
    if rewards.dim() != 2 or response_mask.shape[0] != rewards.numel():
        raise ValueError(
            f"rewards [P, n] and response_mask [P*n, T] disagree: {tuple(rewards.shape)} vs "
            f"{tuple(response_mask.shape)}"
        )
    info = get_estimator(estimator)
    clamped = rewards.clamp(min=-reward_clip, max=reward_clip)
    seq_adv = info.fn(clamped).reshape(-1, 1)
    mask = response_mask.bool()
    token_rewards = torch.where(last_token_mask(mask), seq_adv, 0.0)
    if kl is not None and kl_coef != 0.0:
        if kl.shape != response_mask.shape:
            shapes = f"{tuple(kl.shape)} vs {tuple(response_mask.shape)}"
            raise ValueError(f"kl must have response_mask's shape: {shapes}")
        kl_reward = torch.where(mask, -kl_coef * kl.to(rewards.dtype), 0.0)
        token_rewards = token_rewards + kl_reward
    advantages = torch.where(mask, returns_to_go(token_rewards), 0.0)
    if info.whiten:
        advantages = masked_whiten(advantages, mask)
    return advantages
