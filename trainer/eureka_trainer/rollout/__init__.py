"""Rollout backends, by `rollout.backend` name: each implements `backends.RolloutEngine`.

Registered by dotted path and imported only when chosen (vLLM exists only in the GPU image).
An engine class is built as `cls(model_path, family, tokenizer, dtype=..., rollout=RolloutSpec)`.
"""

from __future__ import annotations

import importlib
from typing import Any

from eureka_trainer.algos.registry import Registry

ROLLOUT_BACKENDS: Registry[str] = Registry("rollout backend")
ROLLOUT_BACKENDS.add("hf", "eureka_trainer.rollout.hf:HFRolloutEngine")
ROLLOUT_BACKENDS.add("vllm", "eureka_trainer.rollout.vllm_engine:VLLMRolloutEngine")


def load_class(dotted: str) -> Any:
    """`package.module:Name` -> the object."""
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def build_rollout_engine(
    backend: str, model_path: str, family: str, tokenizer: Any, *, dtype: str, rollout: Any
) -> Any:
    """The engine registered under `backend`, loaded from `model_path`."""
    cls = load_class(ROLLOUT_BACKENDS.get(backend))
    return cls(model_path, family, tokenizer, dtype=dtype, rollout=rollout)
