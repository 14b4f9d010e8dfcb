"""The `hf` rollout engine on a GPU: it samples on the GPU, never a vision token, and its
log-probs are the learner's (bf16 on both sides). Throughput goes to the figures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import SamplingConfig
from tests.gpu.models import learner_config, shapes_request, train_samples

pytestmark = pytest.mark.timeout(300)


def test_hf_rollout_samples_on_the_gpu_with_the_learners_logprobs(
    qwen_vocab_model: tuple[Path, Any], figures: dict[str, Any]
) -> None:
    import torch

    from eureka_trainer.learner.torch_learner import TorchLearner
    from eureka_trainer.rollout.hf import HFRolloutEngine

    folder, processor = qwen_vocab_model
    engine = HFRolloutEngine(str(folder), "qwen2_vl", processor.tokenizer, dtype="bfloat16")
    assert next(engine.model.parameters()).device.type == "cuda", "the hf engine stayed on the CPU"
    requests = [shapes_request(processor, count, seed=count) for count in range(1, 9)]
    sampling = SamplingConfig(n=8, max_new_tokens=64, temperature=1.0, seed=1)
    engine.generate(requests[:1], SamplingConfig(n=1, max_new_tokens=4))  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    groups = engine.generate(requests, sampling)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens = sum(len(c.token_ids) for g in groups for c in g)
    assert all(len(g) == 8 for g in groups) and tokens > 0
    assert not set(engine.suppressed) & {t for g in groups for c in g for t in c.token_ids}
    learner = TorchLearner(learner_config(folder, processor))
    recomputed = learner.logprobs(train_samples(requests, groups))
    flat = [c.logprobs for g in groups for c in g]
    worst = max(
        (
            abs(a - b)
            for ours, theirs in zip(recomputed, flat, strict=True)
            for a, b in zip(ours, theirs, strict=True)
        ),
        default=0.0,
    )
    assert worst < 0.1, f"engine and learner log-probs differ by {worst} (bf16)"
    figures["hf_rollout_bf16"] = {
        "tokens_per_s": round(tokens / seconds, 1),
        "max_logprob_diff_vs_learner": round(worst, 4),
    }
