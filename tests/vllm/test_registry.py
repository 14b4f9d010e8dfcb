"""The driver's path to the backend: `rollout.backend: vllm` in an RLJob builds this engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import GenerationRequest, RolloutEngine, SamplingConfig
from tests.vllm.conftest import require_vllm


@pytest.mark.timeout(300)
def test_the_registry_builds_the_engine_from_a_rollout_spec(text_model: tuple[Path, Any]) -> None:
    require_vllm()
    from transformers import AutoTokenizer

    from eureka_trainer.config.spec import RolloutSpec
    from eureka_trainer.rollout import build_rollout_engine
    from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine

    folder, _ = text_model
    spec = RolloutSpec(backend="vllm", gpu_memory_utilization=0.5, sleep_mode=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    engine = build_rollout_engine(
        "vllm", str(folder), "text", tokenizer, dtype="float32", rollout=spec
    )
    try:
        assert isinstance(engine, VLLMRolloutEngine) and isinstance(engine, RolloutEngine)
        assert engine.llm.llm_engine.vllm_config.cache_config.gpu_memory_utilization == 0.5
        prompt = tokenizer("How many shapes?")["input_ids"]
        out = engine.generate([GenerationRequest(prompt)], SamplingConfig(n=2, max_new_tokens=4))
        assert [len(c.token_ids) for c in out[0]] == [4, 4]
    finally:
        if isinstance(engine, VLLMRolloutEngine):
            engine.shutdown()
