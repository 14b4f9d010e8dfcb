"""The RLJob API: pydantic models (the single source of truth) and the YAML loader.

Imports nothing heavy, so the operator and the CLI can use it without torch or Ray.
"""

from eureka_trainer.config.loader import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    VERSION,
    Problem,
    RLJob,
    RLJobError,
    load_rljob,
    load_rljobs,
    parse_rljobs,
    validate_rljob,
)
from eureka_trainer.config.resources import PoolSpec, ResourcesSpec
from eureka_trainer.config.spec import (
    AlgorithmSpec,
    CheckpointSpec,
    DataSpec,
    EvaluationSpec,
    LearnerSpec,
    LoggingSpec,
    ModelSpec,
    RewardSpec,
    RewardsSpec,
    RLJobSpec,
    RolloutSpec,
    RunPolicy,
)
from eureka_trainer.config.status import Condition, Curve, Progress, RLJobStatus, Sample

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAMES",
    "VERSION",
    "AlgorithmSpec",
    "CheckpointSpec",
    "Condition",
    "Curve",
    "DataSpec",
    "EvaluationSpec",
    "LearnerSpec",
    "LoggingSpec",
    "ModelSpec",
    "PoolSpec",
    "Problem",
    "Progress",
    "RLJob",
    "RLJobError",
    "RLJobSpec",
    "RLJobStatus",
    "ResourcesSpec",
    "RewardSpec",
    "RewardsSpec",
    "RolloutSpec",
    "RunPolicy",
    "Sample",
    "load_rljob",
    "load_rljobs",
    "parse_rljobs",
    "validate_rljob",
]
