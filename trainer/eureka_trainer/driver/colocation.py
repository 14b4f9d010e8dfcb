"""GPU memory of a colocated run: on each GPU, vLLM and a learner rank take turns.

The order (`Topology` drives it; each step is a blocking call on every actor):

1. start: the vLLM engines are built and put to sleep before any learner rank exists. vLLM
   sizes its KV cache from the memory it finds free when it starts (and vLLM 0.32 refuses to
   start when less than `gpu_memory_utilization` of the GPU is free), so a learner allocating
   at the same time would make that figure wrong or the start fail.
2. update: the engines sleep (level 1: weights to host memory, KV cache dropped); the learner
   brings its optimizer state back if it was moved out (`restore`), then trains.
3. before vLLM wakes (the weight sync, or the next generate): each learner rank returns its
   allocator's cached blocks to the driver (`torch.cuda.empty_cache`) and, when the spec asks
   for offload (`learner.offload` != none) and the learner keeps its optimizer state on the
   GPU (the torch learner; DeepSpeed's ZeRO-Offload keeps it on the host already), moves that
   state to host memory (`release`).
4. vLLM wakes as before: its weights (`wake_up(tags=["weights"])`, inside `load_weights`), the
   new weights loaded, then its KV cache (`wake_up()` before generating).

On a CPU the same calls run and release nothing; the memory figures are measured in tests/gpu.
"""

from __future__ import annotations

import gc
from typing import Any


def optimizer_of(learner: Any) -> Any:
    """The torch optimizer whose state lives on the learner's device, or None (DeepSpeed's
    optimizers manage their own placement: ZeRO-Offload keeps the state on the host)."""
    if hasattr(learner, "engine"):
        return None
    return getattr(learner, "optimizer", None)


def move_optimizer_state(optimizer: Any, device: Any) -> int:
    """Move every tensor of `optimizer.state` to `device`; bytes moved."""
    moved = 0
    for state in optimizer.state.values():
        for key, value in state.items():
            if hasattr(value, "to") and hasattr(value, "device") and value.device != device:
                state[key] = value.to(device, non_blocking=True)
                moved += value.numel() * value.element_size()
    return moved


def memory_figures() -> dict[str, float]:
    """This process' GPU memory now and at its peak since the last reset (GiB; none on a CPU)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    gib = float(1 << 30)
    return {
        "memory/allocated_gib": torch.cuda.memory_allocated() / gib,
        "memory/reserved_gib": torch.cuda.memory_reserved() / gib,
        "memory/peak_allocated_gib": torch.cuda.max_memory_allocated() / gib,
    }


def release(learner: Any, offload_optimizer: bool) -> dict[str, float]:
    """Step 3: hand the learner's GPU memory back before vLLM wakes; memory figures."""
    import torch

    moved = 0
    optimizer = optimizer_of(learner)
    if offload_optimizer and optimizer is not None:
        moved = move_optimizer_state(optimizer, torch.device("cpu"))
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    return {"memory/offloaded_gib": moved / float(1 << 30), **memory_figures()}


def restore(learner: Any) -> None:
    """Step 2: the optimizer state back on the device of the learner's model before it trains."""
    optimizer = optimizer_of(learner)
    model = getattr(learner, "model", None)
    if optimizer is not None and model is not None:
        move_optimizer_state(optimizer, next(model.parameters()).device)
