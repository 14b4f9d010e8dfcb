"""The RL core as pure torch functions: advantage estimators, the policy loss, the online filter.

Imports torch and the standard library only (no Ray, vLLM or DeepSpeed). Every string option
(estimator, KL estimator, loss aggregation) is resolved through a registry.

Shapes: `P` prompts, `n` samples per prompt, `B = P * n` sequences (prompt-major), `T` response
positions.

- `compute_advantages(estimator, rewards[P, n]) -> [P, n]`
- `compute_token_advantages(estimator, rewards[P, n], response_mask[B, T], *, kl=None,
  kl_coef=0.0, reward_clip=10.0) -> [B, T]`
- `kl_penalty(logprobs[B, T], ref_logprobs[B, T], estimator) -> [B, T]`
- `policy_loss(logprobs, old_logprobs, advantages, mask, *, clip_low, clip_high, ratio_cap,
  aggregation, ref_logprobs, kl_coef, kl_estimator, kl_in_loss, entropy, normalizer)
  -> (loss, metrics)`
- `OnlineFilter(spec, batch_groups)`: `add(groups, accuracy[G, n], step)`, `ready`, `missing`,
  `take()`, `metrics()`, `state_dict()`, `load_state_dict()`.
"""

from eureka_trainer.algos.advantages import (
    ESTIMATORS,
    EstimatorInfo,
    compute_advantages,
    compute_token_advantages,
    estimator_names,
    get_estimator,
    last_token_mask,
    masked_whiten,
    register_estimator,
    returns_to_go,
)
from eureka_trainer.algos.filter import FilterSettings, OnlineFilter, group_means
from eureka_trainer.algos.loss import (
    AGGREGATIONS,
    KL_ESTIMATORS,
    aggregate_loss,
    aggregation_names,
    clipped_surrogate,
    kl_estimator_names,
    kl_penalty,
    policy_loss,
)
from eureka_trainer.registry import Registry, UnknownNameError

__all__ = [
    "AGGREGATIONS",
    "ESTIMATORS",
    "KL_ESTIMATORS",
    "EstimatorInfo",
    "FilterSettings",
    "OnlineFilter",
    "Registry",
    "UnknownNameError",
    "aggregate_loss",
    "aggregation_names",
    "clipped_surrogate",
    "compute_advantages",
    "compute_token_advantages",
    "estimator_names",
    "get_estimator",
    "group_means",
    "kl_estimator_names",
    "kl_penalty",
    "last_token_mask",
    "masked_whiten",
    "policy_loss",
    "register_estimator",
    "returns_to_go",
]
