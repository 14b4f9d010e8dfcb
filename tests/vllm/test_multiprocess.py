"""The GPU default: vLLM's engine core in its own process, so every `collective_rpc` argument
crosses a serializer. The `bytes` weight transport must survive that (tensors would not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import GenerationRequest, SamplingConfig, bucketize
from tests.vllm.conftest import ENGINE_KWARGS, require_vllm
from tests.vllm.reference import learner_logprobs, max_abs_diff, with_weights
from tests.vllm.tiny_models import perturbed_state


@pytest.mark.timeout(400)
def test_weights_reach_an_engine_core_in_another_process(
    text_model: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_vllm()
    from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    folder, model = text_model
    engine = VLLMRolloutEngine(
        str(folder), "text", None, dtype="float32", engine_kwargs=ENGINE_KWARGS
    )
    try:
        assert type(engine.llm.llm_engine.engine_core).__name__ == "SyncMPClient"
        assert engine.transport == "bytes"
        prompt = engine.tokenizer("How many shapes are in the image?")["input_ids"]
        sampling = SamplingConfig(n=2, max_new_tokens=8, temperature=0.9, seed=3)
        state = perturbed_state(model, seed=21)
        engine.load_weights(bucketize(state, 1 << 16))
        completions = engine.generate([GenerationRequest(prompt_ids=prompt)], sampling)[0]
        ref = learner_logprobs(with_weights(model, state), prompt, completions, temperature=0.9)
        assert max_abs_diff([c.logprobs for c in completions], ref) < 1e-4
    finally:
        engine.shutdown()
