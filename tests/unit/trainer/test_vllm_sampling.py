"""What the `vllm` engine asks of vLLM per request, held to the rules of vLLM 0.32's GPU model
runner (no vLLM needed: the checks run in the default venv)."""

from __future__ import annotations

import math
import sys
import types
from typing import Any

import pytest

from eureka_trainer.backends import SamplingConfig
from eureka_trainer.rollout.vllm_engine import (
    MAX_BIASED_IDS,
    VisionMaskTooLarge,
    VLLMRolloutEngine,
    processor_kwargs,
    sampling_kwargs,
    vision_mask,
)

QWEN_VOCAB = 151936  # Qwen2-VL-7B / Qwen2.5-VL's `vocab_size`
QWEN_VISION_IDS = [151652, 151653, 151655, 151656]  # vision start/end, image pad, video pad


def gpu_runner_refusal(params: dict[str, Any]) -> str | None:
    """Why vLLM 0.32's GPU model runner would refuse these SamplingParams, or None.

    The rules of `LogitBiasState.add_request` (vllm/v1/worker/gpu/sample/logit_bias.py): at
    most 1024 `allowed_token_ids` and 1024 `logit_bias` entries per request."""
    allowed = params.get("allowed_token_ids") or []
    if len(allowed) > 1024:
        return f"Too many allowed token IDs: {len(allowed)}"
    bias = params.get("logit_bias") or {}
    if len(bias) > 1024:
        return f"Too many logit bias tokens: {len(bias)}"
    return None


def test_the_vision_mask_is_a_minus_infinite_bias_on_the_vision_ids_only() -> None:
    mask = vision_mask(QWEN_VISION_IDS)
    assert mask is not None and sorted(mask) == QWEN_VISION_IDS
    assert all(math.isinf(v) and v < 0 for v in mask.values())
    assert vision_mask([]) is None


def test_request_params_pass_the_gpu_runner_with_the_real_qwen_vocabulary() -> None:
    """The former mask (`allowed_token_ids` = the other 151932 ids) fails this test."""
    params = sampling_kwargs(SamplingConfig(n=4, max_new_tokens=8), 0, vision_mask(QWEN_VISION_IDS))
    assert not params.get("allowed_token_ids")
    assert gpu_runner_refusal(params) is None
    everything_else = [i for i in range(QWEN_VOCAB) if i not in QWEN_VISION_IDS]
    assert gpu_runner_refusal({"allowed_token_ids": everything_else}) is not None  # the rule bites


def test_more_vision_ids_than_vllm_takes_fail_clearly() -> None:
    with pytest.raises(VisionMaskTooLarge, match="1025 vision token ids"):
        vision_mask(range(MAX_BIASED_IDS + 1))


def test_the_engine_sends_the_mask_as_logit_bias(monkeypatch: pytest.MonkeyPatch) -> None:
    """`VLLMRolloutEngine._params` itself (vLLM's `SamplingParams` records its arguments here)."""
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=dict))
    engine = object.__new__(VLLMRolloutEngine)
    engine.mask = vision_mask(QWEN_VISION_IDS)
    params = engine._params(SamplingConfig(n=2, max_new_tokens=4, seed=3), 1)
    assert "allowed_token_ids" not in params
    assert params["logit_bias"] == engine.mask and gpu_runner_refusal(params) is None
    assert params["logprobs"] == 0 and params["n"] == 2


def test_vllm_resizes_images_within_the_specs_pixel_bounds() -> None:
    assert processor_kwargs("qwen2_vl", (3136, 501760)) == {
        "size": {"shortest_edge": 3136, "longest_edge": 501760}
    }
    assert processor_kwargs("qwen2_5_vl", (1, 2))["size"]["longest_edge"] == 2
    assert processor_kwargs("text", (1, 2)) == {}
    assert processor_kwargs("qwen2_vl", None) == {}
