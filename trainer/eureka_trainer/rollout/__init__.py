"""Rollout backends, by `rollout.backend` name: each implements `backends.RolloutEngine`.

Registered by dotted path and imported only when chosen (vLLM exists only in the GPU image).
An engine class is built as `cls(model_path, family, tokenizer, dtype=..., rollout=RolloutSpec)`;
one whose class sets `shares_module = True` also takes `module=` (a learner's model to sample
from instead of loading its own copy).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from eureka_trainer.backends import GenerationRequest
from eureka_trainer.registry import Registry, load_class

ROLLOUT_BACKENDS: Registry[str] = Registry("rollout backend")
ROLLOUT_BACKENDS.add("hf", "eureka_trainer.rollout.hf:HFRolloutEngine")
ROLLOUT_BACKENDS.add("vllm", "eureka_trainer.rollout.vllm_engine:VLLMRolloutEngine")

REQUEST_FIELDS: Registry[frozenset[str]] = Registry("rollout backend")
"""The `GenerationRequest` fields each backend reads (`hf`: the processor's tensors; `vllm`:
the PIL images, which its own processor expands). The rest is not sent to its actors: at
MM-EUREKA's image sizes a step's pixel tensors are gigabytes a vLLM engine never reads."""
REQUEST_FIELDS.add("hf", frozenset({"prompt_ids", "mm_inputs"}))
REQUEST_FIELDS.add("vllm", frozenset({"prompt_ids", "images"}))

_DROPPABLE = {"mm_inputs": dict, "images": list, "text": str}
"""Request fields that can be left out, with the empty value that replaces them."""


def for_backend(request: GenerationRequest, backend: str) -> GenerationRequest:
    """`request` with only what `backend` reads (the original is unchanged: the learner's
    samples take their multimodal inputs from it)."""
    reads = REQUEST_FIELDS.get(backend)
    empty = {name: kind() for name, kind in _DROPPABLE.items() if name not in reads}
    return replace(request, **empty) if empty else request


def build_rollout_engine(
    backend: str,
    model_path: str,
    family: str,
    tokenizer: Any,
    *,
    dtype: str,
    rollout: Any,
    module: Any = None,
    pixels: tuple[int, int] | None = None,
    trust_remote_code: bool = False,
) -> Any:
    """The engine registered under `backend`: on `module` when given and the engine can share
    it (then the caller's weights are the engine's), else loaded from `model_path`
    (`trust_remote_code`: the RLJob's `model.trustRemoteCode`)."""
    cls = load_class(ROLLOUT_BACKENDS.get(backend))
    kwargs: dict[str, Any] = {"dtype": dtype, "rollout": rollout}
    if trust_remote_code:  # only then: an engine class need not know the option to be built
        kwargs["trust_remote_code"] = True
    if pixels is not None and getattr(cls, "takes_pixels", False):
        kwargs["pixels"] = pixels
    if module is not None and getattr(cls, "shares_module", False):
        return cls(model_path, family, tokenizer, module=module, **kwargs)
    return cls(model_path, family, tokenizer, **kwargs)
