"""Learner ranks on a GPU (world size 1, bf16): the torch learner and DeepSpeed ZeRO-3, on a tiny
Qwen2-VL with Qwen's real vocabulary. Throughput and peak memory go to the figures."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from tests.gpu.conftest import require
from tests.gpu.models import learner_config, synthetic_samples

pytestmark = pytest.mark.timeout(300)


def run_updates(learner: Any, samples: list[Any], steps: int = 3) -> tuple[dict[str, float], float]:
    """`steps` updates; the last metrics and trained tokens per second (after one warm-up)."""
    import torch

    learner.update(samples)  # warm-up (allocator, kernels)
    torch.cuda.synchronize()
    tokens = sum(len(s.prompt_ids) + len(s.response_ids) for s in samples) * steps
    start = time.perf_counter()
    for _ in range(steps):
        metrics = learner.update(samples)
    torch.cuda.synchronize()
    return metrics, tokens / (time.perf_counter() - start)


def check_trained_on_the_gpu(
    learner: Any, before: dict[str, Any], metrics: dict[str, float]
) -> None:
    import torch

    params = dict(learner.model.named_parameters())
    assert all(p.device.type == "cuda" for p in params.values()), "parameters left on the CPU"
    assert math.isfinite(metrics["policy/loss"]) and math.isfinite(metrics["policy/grad_norm"])
    changed = [n for n, t in learner.state_items() if not torch.equal(t.detach().cpu(), before[n])]
    assert changed, "no weight changed"


def test_torch_learner_trains_in_bf16_on_the_gpu(
    qwen_vocab_model: tuple[Path, Any], figures: dict[str, Any]
) -> None:
    import torch

    from eureka_trainer.learner.torch_learner import TorchLearner

    folder, processor = qwen_vocab_model
    torch.cuda.reset_peak_memory_stats()
    learner = TorchLearner(learner_config(folder, processor))
    assert next(learner.model.parameters()).dtype == torch.bfloat16
    before = {n: t.detach().cpu().clone() for n, t in learner.state_items()}
    samples = synthetic_samples(processor, learner)
    metrics, rate = run_updates(learner, samples)
    check_trained_on_the_gpu(learner, before, metrics)
    figures["learner_torch_bf16"] = {
        "tokens_per_s": round(rate, 1),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
    }


def test_deepspeed_zero3_trains_in_bf16_on_the_gpu(
    qwen_vocab_model: tuple[Path, Any], figures: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import torch

    require("deepspeed")
    from eureka_trainer.learner.deepspeed_learner import DeepSpeedLearner

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for key, value in {
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }.items():
        monkeypatch.setenv(key, value)
    folder, processor = qwen_vocab_model
    torch.cuda.reset_peak_memory_stats()
    learner = DeepSpeedLearner(learner_config(folder, processor, zero_stage=3, offload="none"))
    before = {n: t.detach().cpu().clone() for n, t in learner.state_items()}
    assert next(iter(before.values())).dtype == torch.bfloat16
    samples = synthetic_samples(processor, learner)
    metrics, rate = run_updates(learner, samples)
    assert math.isfinite(metrics["policy/loss"])
    changed = [n for n, t in learner.state_items() if not torch.equal(t.detach().cpu(), before[n])]
    assert changed, "no weight changed"
    figures["learner_deepspeed_zero3_bf16"] = {
        "tokens_per_s": round(rate, 1),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
    }
