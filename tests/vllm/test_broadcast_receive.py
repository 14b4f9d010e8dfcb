"""Split placement: vLLM's workers join the weight broadcast group themselves and receive
learner rank 0's buckets on their own device (gloo here, NCCL on GPUs), with the engine core
in its own process as on a GPU: nothing passes through the rollout actor or a serializer."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import GenerationRequest, SamplingConfig
from tests.vllm.conftest import ENGINE_KWARGS, require_vllm
from tests.vllm.reference import learner_logprobs, max_abs_diff, with_weights
from tests.vllm.tiny_models import perturbed_state


def free_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.timeout(400)
def test_workers_in_another_process_receive_the_broadcast(
    text_model: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_vllm()
    from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine
    from eureka_trainer.sync.broadcast import join_group, layouts_of, send_buckets

    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "1")
    folder, model = text_model
    engine = VLLMRolloutEngine(
        str(folder), "text", None, dtype="float32", engine_kwargs=ENGINE_KWARGS
    )
    try:
        assert type(engine.llm.llm_engine.engine_core).__name__ == "SyncMPClient"
        assert engine.broadcast_members() == 1
        state = perturbed_state(model, seed=31)
        named = list(state.items())
        bucket_bytes = 1 << 16  # several buckets per vLLM layer
        layouts = layouts_of(named, bucket_bytes)
        assert len(layouts) > 5
        address, sent = free_address(), {}

        def learner_rank0() -> None:  # the learner's side, as `LearnerWorker` runs it
            group = join_group(address, 0, 2)
            sent["result"] = send_buckets(group, named, bucket_bytes)

        sender = threading.Thread(target=learner_rank0)
        sender.start()
        engine.join_broadcast(address, 1, 2, layouts)
        loaded = engine.receive_weights()
        sender.join(timeout=120)
        assert loaded == sent["result"]  # (buckets, bytes) on both sides
        prompt = engine.tokenizer("How many shapes are in the image?")["input_ids"]
        sampling = SamplingConfig(n=2, max_new_tokens=8, temperature=0.9, seed=3)
        completions = engine.generate([GenerationRequest(prompt_ids=prompt)], sampling)[0]
        ref = learner_logprobs(with_weights(model, state), prompt, completions, temperature=0.9)
        assert max_abs_diff([c.logprobs for c in completions], ref) < 1e-4
        old = learner_logprobs(model, prompt, completions, temperature=0.9)
        assert max_abs_diff([c.logprobs for c in completions], old) > 1e-2
    finally:
        engine.shutdown()
