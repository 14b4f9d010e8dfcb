"""The tiny Qwen2 (text) and Qwen2-VL models of `eureka tiny-model`
(`eureka_trainer.models.tiny`), saved to a folder vLLM can load (no downloads), and a helper
to perturb their weights.

Sizes respect the vLLM CPU build (attention head size 32); embeddings are tied, like small Qwen
models, because a tied LM head is a weight-sync trap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_text_model(folder: Path, seed: int = 0) -> Any:
    """A 0.35M-parameter Qwen2ForCausalLM + tokenizer saved in `folder`; the model (eval mode)."""
    from eureka_trainer.models.tiny import build_tiny_model

    return build_tiny_model("text", folder, seed=seed).model


def build_vl_model(folder: Path, seed: int = 0) -> tuple[Any, Any]:
    """A tiny Qwen2VLForConditionalGeneration + processor saved in `folder`; (model in eval
    mode, processor)."""
    from eureka_trainer.models.tiny import build_tiny_model

    tiny = build_tiny_model("qwen2_vl", folder, seed=seed)
    return tiny.model, tiny.processor


def perturbed_state(model: Any, seed: int, scale: float = 0.5) -> dict[str, Any]:
    """A copy of the model's `state_dict()` with every tensor moved by seeded noise; tied
    tensors (one storage, two names) stay tied."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}
    by_storage: dict[int, Any] = {}
    for name, tensor in model.state_dict().items():
        key = tensor.untyped_storage().data_ptr()
        if key not in by_storage:
            noise = torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype) * scale
            by_storage[key] = (tensor + noise * tensor.std().clamp(min=1e-3)).contiguous()
        state[name] = by_storage[key]
    return state
