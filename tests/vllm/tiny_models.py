"""Tiny Qwen2 (text) and Qwen2-VL models built from configs, with the locally trained tokenizer
of `eureka_trainer.data.tiny`, saved to a folder vLLM can load (no downloads).

Sizes respect the vLLM CPU build: attention head size 32 (its kernels take 32, 64, 80, ...).
Embeddings are tied, like small Qwen models, because a tied LM head is a weight-sync trap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HIDDEN = 128
TEXT_LAYERS = {
    "hidden_size": HIDDEN,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
}


def _token_ids(tokenizer: Any) -> dict[str, int]:
    ids = tokenizer.convert_tokens_to_ids
    return {
        "bos_token_id": ids("<|im_start|>"),
        "eos_token_id": ids("<|im_end|>"),
        "pad_token_id": ids("<|endoftext|>"),
    }


def build_text_model(folder: Path, seed: int = 0) -> Any:
    """A 0.2M-parameter Qwen2ForCausalLM + tokenizer saved in `folder`; the model (eval mode)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from eureka_trainer.data.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tokenizer), tie_word_embeddings=True, **TEXT_LAYERS, **_token_ids(tokenizer)
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


def build_vl_model(folder: Path, seed: int = 0) -> tuple[Any, Any]:
    """The demo's tiny Qwen2VLForConditionalGeneration (vision head size 32 for vLLM's CPU
    kernels) + processor saved in `folder`; (model in eval mode, processor)."""
    from eureka_trainer.data.tiny import build_tiny_processor
    from eureka_trainer.demo.assets import build_model

    processor = build_tiny_processor()
    model = build_model(processor.tokenizer, seed, vision_heads=2, max_positions=1024).eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor


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
