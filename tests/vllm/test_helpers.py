"""The pure parts of the `vllm` backend (no vLLM needed: these run in any venv with torch)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from eureka_trainer.backends import Completion, GenerationRequest, SamplingConfig, WeightBucket
from eureka_trainer.rollout.vllm_engine import (
    ImageExpansionMismatch,
    bucket_payload,
    check_expansion,
    collapse_runs,
    exact_logprobs,
    fill_greedy,
    incomplete_layers,
    layer_key,
    prompt_input,
    request_seed,
    to_completion,
    unwrap_images,
)

PACKED = {"qkv_proj": ["q_proj", "k_proj", "v_proj"], "gate_up_proj": ["gate_proj", "up_proj"]}
LAYER = "model.layers.0"
CHECKPOINT = [
    f"{LAYER}.self_attn.{p}.{k}" for p in ("q_proj", "k_proj", "v_proj") for k in ("weight", "bias")
] + [f"{LAYER}.self_attn.o_proj.weight", f"{LAYER}.input_layernorm.weight"]


def test_request_seeds_are_distinct_reproducible_and_fit_the_cpu_generator() -> None:
    n = 8
    seeds = {(s, i): request_seed(s, i, n) for s in range(50) for i in range(64)}
    streams = {base + j for base in seeds.values() for j in range(n)}
    assert len(streams) == len(seeds) * n  # no two samples share a noise stream
    assert all(s >= 0 and s + n <= 2**31 for s in seeds.values())
    assert request_seed(3, 1, n) == request_seed(3, 1, n)


def test_exact_logprobs_only_without_nucleus() -> None:
    assert exact_logprobs(SamplingConfig(n=1, max_new_tokens=1, top_p=1.0))
    assert not exact_logprobs(SamplingConfig(n=1, max_new_tokens=1, top_p=0.9))


def test_layer_key_maps_fused_members_to_their_vllm_layer() -> None:
    assert layer_key(f"{LAYER}.self_attn.k_proj.bias", PACKED) == f"{LAYER}.self_attn.qkv_proj"
    assert layer_key(f"{LAYER}.mlp.up_proj.weight", PACKED) == f"{LAYER}.mlp.gate_up_proj"
    assert layer_key(f"{LAYER}.self_attn.o_proj.weight", PACKED) == f"{LAYER}.self_attn.o_proj"
    assert layer_key("lm_head.weight", PACKED) == "lm_head"


def test_incomplete_layers_names_what_a_split_update_misses() -> None:
    given = [f"{LAYER}.self_attn.q_proj.weight", f"{LAYER}.self_attn.q_proj.bias"]
    missing = incomplete_layers(given, CHECKPOINT, PACKED)
    assert list(missing) == [f"{LAYER}.self_attn.qkv_proj"]
    assert missing[f"{LAYER}.self_attn.qkv_proj"] == [
        f"{LAYER}.self_attn.k_proj.bias",
        f"{LAYER}.self_attn.k_proj.weight",
        f"{LAYER}.self_attn.v_proj.bias",
        f"{LAYER}.self_attn.v_proj.weight",
    ]
    whole = [n for n in CHECKPOINT if "_proj" in n and "o_proj" not in n]
    assert incomplete_layers([*whole, "lm_head.weight"], CHECKPOINT, PACKED) == {}


def test_bucket_payload_round_trips_and_unties_shared_tensors() -> None:
    import torch
    from safetensors.torch import load

    table = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    bucket = WeightBucket(["embed.weight", "lm_head.weight", "x"], [table, table, table[:, 1]])
    loaded = load(bucket_payload(bucket))
    assert set(loaded) == {"embed.weight", "lm_head.weight", "x"}
    assert torch.equal(loaded["lm_head.weight"], table)
    assert torch.equal(loaded["x"], table[:, 1])


def test_prompt_input_collapses_expanded_image_placeholders() -> None:
    image_pad, start, end = 5, 3, 4
    ids = [1, start, image_pad, image_pad, image_pad, image_pad, end, 9]
    req = GenerationRequest(prompt_ids=ids, images=["img"])
    assert prompt_input(req, image_pad) == {
        "prompt_token_ids": [1, start, image_pad, end, 9],
        "multi_modal_data": {"image": ["img"]},
    }
    assert prompt_input(GenerationRequest(prompt_ids=[5, 5]), image_pad) == {
        "prompt_token_ids": [5, 5]
    }
    assert collapse_runs([5, 5, 4, 3, 5, 5, 4], 5) == [5, 4, 3, 5, 4]
    assert collapse_runs([5, 5], None) == [5, 5]


def test_prompt_input_drops_the_wrap_vllm_writes_itself() -> None:
    """InternVL: vLLM replaces one `<IMG_CONTEXT>` with `<img>` + context x N + `</img>`
    (vllm/model_executor/models/interns1.py), so the driver's wrap goes too; a `<img>` typed
    in the text, away from an image, stays."""
    ctx, img, end = 7, 3, 4
    ids = [1, img, ctx, ctx, ctx, end, 9, img, 2]
    req = GenerationRequest(prompt_ids=ids, images=["img"])
    assert prompt_input(req, ctx, (img, end))["prompt_token_ids"] == [1, ctx, 9, img, 2]
    assert unwrap_images([img, ctx, end], None, (img, end)) == [img, ctx, end]


def test_check_expansion_names_the_request() -> None:
    check_expansion(0, [1, 5, 5], [1, 5, 5])
    with pytest.raises(ImageExpansionMismatch, match=r"request 2: .* to 4 tokens, .* to 3"):
        check_expansion(2, [1, 5, 5], [1, 5, 5, 5])


def _output(tokens: list[int], reason: str, lps: list[float] | None = None) -> SimpleNamespace:
    steps = [{t: SimpleNamespace(logprob=lp)} for t, lp in zip(tokens, lps or [], strict=False)]
    return SimpleNamespace(token_ids=tokens, finish_reason=reason, logprobs=steps or None)


def test_to_completion_keeps_eos_in_tokens_and_out_of_text() -> None:
    def decode(ids: list[int]) -> str:
        return ",".join(map(str, ids))

    done = to_completion(_output([7, 8, 2], "stop", [-0.1, -0.2, -0.3]), decode)
    assert done == Completion([7, 8, 2], [-0.1, -0.2, -0.3], "7,8", "stop")
    cut = to_completion(_output([7, 8], "length", [-0.1, -0.2]), decode)
    assert (cut.text, cut.finish_reason) == ("7,8", "length")
    with pytest.raises(RuntimeError, match="no per-token logprobs"):
        to_completion(_output([7], "length"), decode)


def test_fill_greedy_repeats_the_single_sample_as_copies() -> None:
    one = Completion([1], [-0.5], "a")
    filled = fill_greedy([one], 3)
    assert filled == [one, one, one] and filled[1] is not one
