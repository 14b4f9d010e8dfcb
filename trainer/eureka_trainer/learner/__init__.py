"""Learner backends, by `learner.backend` name: each implements `backends.Learner`.

`torch` (plain PyTorch AdamW, one process) and `deepspeed` (ZeRO 0-3; on a CPU with gloo and
torch Adam). A learner class is built as `cls(LearnerConfig)`.
"""

from __future__ import annotations

from typing import Any

from eureka_trainer.registry import Registry, load_class

LEARNER_BACKENDS: Registry[str] = Registry("learner backend")
LEARNER_BACKENDS.add("torch", "eureka_trainer.learner.torch_learner:TorchLearner")
LEARNER_BACKENDS.add("deepspeed", "eureka_trainer.learner.deepspeed_learner:DeepSpeedLearner")


def build_learner(backend: str, config: Any) -> Any:
    """The learner registered under `backend`."""
    return load_class(LEARNER_BACKENDS.get(backend))(config)
