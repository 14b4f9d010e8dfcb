"""The colocated memory sequence (`driver.colocation`) on one GPU, with peak memory logged:
the learner hands its memory back before vLLM wakes, and (where vLLM imports) vLLM starts and
sleeps first, wakes its weights for a CUDA IPC sync from the learner, then its KV cache."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from eureka_trainer.backends import SamplingConfig
from tests.gpu.conftest import require
from tests.gpu.models import learner_config, shapes_request, synthetic_samples, train_samples

pytestmark = pytest.mark.timeout(480)
GIB = float(1 << 30)


def used_gib() -> float:
    """GPU memory in use by every process (vLLM's engine core is another process)."""
    import torch

    free, total = torch.cuda.mem_get_info()
    return round((total - free) / GIB, 3)


def test_the_learner_releases_its_optimizer_state_and_cache(
    qwen_vocab_model: tuple[Path, Any], figures: dict[str, Any]
) -> None:
    import torch

    from eureka_trainer.driver.colocation import release, restore
    from eureka_trainer.learner.torch_learner import TorchLearner

    folder, processor = qwen_vocab_model
    learner = TorchLearner(learner_config(folder, processor, dtype="float32", offload="optimizer"))
    samples = synthetic_samples(processor, learner)
    learner.update(samples)
    torch.cuda.synchronize()
    trained = torch.cuda.memory_allocated()
    figures_here = release(learner, offload_optimizer=True)
    released = torch.cuda.memory_allocated()
    moved = figures_here["memory/offloaded_gib"] * GIB
    assert moved > 0 and trained - released >= 0.9 * moved
    assert torch.cuda.memory_reserved() - released < 64 << 20  # the cache went back too
    restore(learner)
    assert torch.cuda.memory_allocated() >= released + 0.9 * moved
    learner.update(samples)  # trains on with the state it had
    figures["colocated_learner"] = {
        "allocated_after_update_gib": round(trained / GIB, 3),
        "allocated_after_release_gib": round(released / GIB, 3),
        "offloaded_gib": round(moved / GIB, 3),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GIB, 3),
    }


def test_vllm_sleeps_first_and_wakes_for_an_ipc_sync_then_its_kv_cache(
    qwen_vocab_model: tuple[Path, Any], figures: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    require("vllm")
    from eureka_trainer.driver.colocation import release
    from eureka_trainer.learner.torch_learner import TorchLearner
    from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine
    from eureka_trainer.sync.cuda_ipc import IpcExporter

    # vLLM's engine core in its own process, as in a run: the IPC handles really cross over.
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    folder, processor = qwen_vocab_model
    steps: dict[str, float] = {"start": used_gib()}
    rollout = SimpleNamespace(sleep_mode=True, gpu_memory_utilization=0.3, enforce_eager=True)
    engine = VLLMRolloutEngine(
        str(folder),
        "qwen2_vl",
        processor.tokenizer,
        dtype="float32",
        rollout=rollout,
        pixels=(56 * 56, 56 * 56),
        engine_kwargs={
            "max_model_len": 1024,
            "seed": 0,
            "limit_mm_per_prompt": {"image": 1, "video": 0},
        },
    )
    try:
        assert engine.sleep_mode, "sleep mode should be available on CUDA"
        steps["vllm_started"] = used_gib()
        engine.sleep()
        steps["vllm_asleep"] = used_gib()
        assert steps["vllm_asleep"] < steps["vllm_started"] - 0.5 * (
            steps["vllm_started"] - steps["start"]
        )

        learner = TorchLearner(
            learner_config(folder, processor, dtype="float32", offload="optimizer")
        )
        requests = [shapes_request(processor, c, seed=c) for c in (1, 2, 3)]
        learner.update(synthetic_samples(processor, learner))
        steps["learner_trained"] = used_gib()
        with torch.no_grad():  # weights far from vLLM's: a stale engine cannot pass the check
            for param in learner.model.parameters():
                param.add_(torch.randn_like(param) * 0.05)
        release(learner, offload_optimizer=True)
        steps["learner_released"] = used_gib()

        exporter = IpcExporter()
        buckets = exporter.export(learner.state_items(), 64 << 20)
        engine.load_weights(buckets)  # wakes vLLM's weights only, loads over IPC
        steps["vllm_weights_loaded"] = used_gib()
        exporter.release()
        torch.cuda.empty_cache()
        engine.wake_up()  # then the KV cache
        steps["vllm_awake"] = used_gib()

        groups = engine.generate(requests, SamplingConfig(n=2, max_new_tokens=16, seed=2))
        recomputed = learner.logprobs(train_samples(requests, groups))
        flat = [c.logprobs for g in groups for c in g]
        worst = max(
            abs(a - b)
            for o, t in zip(recomputed, flat, strict=True)
            for a, b in zip(o, t, strict=True)
        )
        assert worst < 1e-2, f"vLLM samples from other weights than the learner's ({worst})"
    finally:
        engine.shutdown()
    figures["colocated_vllm_sequence_used_gib"] = steps
    figures["colocated_learner_process_peak_gib"] = round(
        torch.cuda.max_memory_allocated() / GIB, 3
    )
