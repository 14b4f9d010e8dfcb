"""Rule-based rewards: format, accuracy (math-verify with hard timeouts), repetition.

Components return unweighted floats; `BatchScorer` weights and sums them per the RLJob's
`spec.rewards`. Imports no Ray, vLLM, DeepSpeed or math-verify: math-verify (sympy) runs only in
worker processes.
"""

from eureka_trainer.rewards.accuracy import AccuracyResult, accuracy_details, accuracy_reward
from eureka_trainer.rewards.format import format_reward
from eureka_trainer.rewards.registry import (
    REGISTRY,
    BoundReward,
    RewardComponent,
    RewardConfigError,
    bind,
    resolve,
)
from eureka_trainer.rewards.repetition import repetition_penalty
from eureka_trainer.rewards.scorer import BatchScorer, ScoreBatch

__all__ = [
    "REGISTRY",
    "AccuracyResult",
    "BatchScorer",
    "BoundReward",
    "RewardComponent",
    "RewardConfigError",
    "ScoreBatch",
    "accuracy_details",
    "accuracy_reward",
    "bind",
    "format_reward",
    "repetition_penalty",
    "resolve",
]
