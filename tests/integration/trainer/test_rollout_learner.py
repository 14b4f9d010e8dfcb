"""The `hf` rollout engine and the `torch` learner on the tiny Qwen2-VL, without Ray."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from eureka_trainer.backends import GenerationRequest, SamplingConfig, TrainSample
from eureka_trainer.demo.assets import draw_shapes
from eureka_trainer.demo.resolve import load_demo_processor
from eureka_trainer.demo.warmup import demo_messages
from eureka_trainer.learner.modeling import (
    ImageTokenMismatch,
    load_policy,
    pack,
    response_logprobs,
)
from eureka_trainer.learner.torch_learner import LearnerConfig, TorchLearner
from eureka_trainer.rollout.hf import HFRolloutEngine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def parts(demo_assets: Path) -> tuple[HFRolloutEngine, TorchLearner, list[GenerationRequest]]:
    model = str(demo_assets / "tiny-qwen2-vl")
    processor = load_demo_processor(model)
    engine = HFRolloutEngine(model, "qwen2_vl", processor.tokenizer)
    config = LearnerConfig(
        model_path=model,
        family="qwen2_vl",
        pad_id=processor.tokenizer.pad_token_id,
        total_optimizer_steps=4,
        learning_rate=1e-3,
        train_batch_size=8,
        micro_batch_size=4,
        frozen_prefixes=("visual.",),
    )
    learner = TorchLearner(config)
    text = processor.apply_chat_template(
        demo_messages(), add_generation_prompt=True, tokenize=False
    )
    rng = random.Random(0)
    requests = []
    for count in (1, 3):
        enc = processor(text=[text], images=[draw_shapes(count, rng)], return_tensors="pt")
        mm = {"pixel_values": enc["pixel_values"], "image_grid_thw": enc["image_grid_thw"]}
        requests.append(GenerationRequest(prompt_ids=enc["input_ids"][0].tolist(), mm_inputs=mm))
    return engine, learner, requests


def _samples(
    requests: list[GenerationRequest], groups: list, advantage: float
) -> list[TrainSample]:
    return [
        TrainSample(
            prompt_ids=req.prompt_ids,
            response_ids=c.token_ids,
            advantages=[advantage * (1 if j % 2 else -1)] * len(c.token_ids),
            old_logprobs=c.logprobs,
            mm_inputs=req.mm_inputs,
        )
        for req, group in zip(requests, groups, strict=True)
        for j, c in enumerate(group)
    ]


def test_generation_is_seeded_and_logprobs_match_the_learner(parts) -> None:
    engine, learner, requests = parts
    sampling = SamplingConfig(n=4, max_new_tokens=8, temperature=1.0, seed=7)
    first = engine.generate(requests, sampling)
    again = engine.generate(requests, sampling)
    assert [[c.token_ids for c in g] for g in first] == [[c.token_ids for c in g] for g in again]
    assert len(first) == 2 and all(len(g) == 4 for g in first)
    vision = set(engine.suppressed)
    for group in first:
        for c in group:
            assert len(c.logprobs) == len(c.token_ids) and not vision & set(c.token_ids)
    recomputed = learner.logprobs(_samples(requests, first, 0.0))
    flat = [c.logprobs for g in first for c in g]
    for ours, theirs in zip(recomputed, flat, strict=True):
        torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs), atol=1e-4, rtol=0)


def test_update_then_sync_makes_the_engine_sample_from_the_new_policy(parts) -> None:
    engine, learner, requests = parts
    sampling = SamplingConfig(n=4, max_new_tokens=8, seed=3)
    groups = engine.generate(requests, sampling)
    visual_before = {n: p.clone() for n, p in learner.model.named_parameters() if "visual" in n}
    metrics = learner.update(_samples(requests, groups, 1.0))
    assert {"policy/loss", "policy/grad_norm", "lr"} <= metrics.keys()
    for name, param in learner.model.named_parameters():
        if name in visual_before:  # frozen by prefix
            assert torch.equal(param, visual_before[name]), name
    buckets = learner.weight_buckets(64 << 10)
    assert len(buckets) > 1
    engine.load_weights(buckets)
    after = engine.generate(requests, sampling)
    recomputed = learner.logprobs(_samples(requests, after, 0.0))
    for ours, c in zip(recomputed, [c for g in after for c in g], strict=True):
        torch.testing.assert_close(torch.tensor(ours), torch.tensor(c.logprobs), atol=1e-4, rtol=0)


def test_image_token_mismatch_is_a_clear_error(parts) -> None:
    _, learner, requests = parts
    req = requests[0]
    image_pad = learner.model.config.image_token_id
    cut = [*[t for t in req.prompt_ids if t != image_pad][:-1], image_pad]  # 1 token, 4 features
    with pytest.raises(ImageTokenMismatch, match=r"1 <\|image_pad\|> tokens .* 4 image features"):
        pack([cut], [[1, 2]], [req.mm_inputs], 0, learner.model.config)


def test_unknown_frozen_prefix_is_refused(demo_assets: Path) -> None:
    config = LearnerConfig(
        model_path=str(demo_assets / "tiny-qwen2-vl"),
        family="qwen2_vl",
        pad_id=0,
        total_optimizer_steps=1,
        frozen_prefixes=("vision_tower.",),
    )
    with pytest.raises(ValueError, match=r"frozenPrefixes: 'vision_tower\.' matches no parameter"):
        TorchLearner(config)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_micro_batches_accumulate_to_the_full_batch_gradient(
    parts, demo_assets: Path, aggregation: str
) -> None:
    """Responses of unequal length: micro batches of 1 must give the full batch's gradient."""
    engine, _, requests = parts
    groups = engine.generate(requests, SamplingConfig(n=4, max_new_tokens=8, seed=5))
    samples = _samples(requests, groups, 1.0)
    lengths = {len(s.response_ids) for s in samples}
    samples[0].response_ids = samples[0].response_ids[:1]  # force unequal lengths
    samples[0].advantages, samples[0].old_logprobs = (
        samples[0].advantages[:1],
        samples[0].old_logprobs[:1],
    )
    assert len(lengths | {1}) > 1
    grads = []
    for micro in (8, 1):
        config = LearnerConfig(
            model_path=str(demo_assets / "tiny-qwen2-vl"),
            family="qwen2_vl",
            pad_id=0,
            total_optimizer_steps=1,
            train_batch_size=8,
            micro_batch_size=micro,
            aggregation=aggregation,
            max_grad_norm=1e9,
        )
        learner = TorchLearner(config)
        learner._train_mode(True)

        def capture(learner: TorchLearner = learner) -> float:  # instead of the optimizer step
            grads.append(
                torch.cat(
                    [p.grad.flatten() for p in learner.model.parameters() if p.grad is not None]
                )
            )
            return 0.0

        learner._step = capture  # type: ignore[method-assign]
        learner._optimizer_step(samples)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-4)


def _plain_model(path: str) -> Any:
    """The model as transformers loads it, without `shared_inputs`' wrappers."""
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="eager")
    return model.eval()


def test_repeated_images_and_prompts_are_computed_once_with_the_same_results(
    parts, demo_assets: Path
) -> None:
    """`shared_inputs`: same log-probs, gradients and greedy tokens as the plain model, with
    the vision tower seeing each distinct image once."""
    engine, _, requests = parts
    path = str(demo_assets / "tiny-qwen2-vl")
    shared, plain = load_policy(path, "qwen2_vl"), _plain_model(path)
    groups = engine.generate(requests, SamplingConfig(n=3, max_new_tokens=6, seed=11))
    samples = _samples(requests, groups, 1.0)  # 2 images, 3 copies each
    patch_rows: list[int] = []
    shared.model.visual.patch_embed.register_forward_hook(
        lambda _m, args, _out: patch_rows.append(args[0].shape[0])
    )
    results = []
    for model in (shared, plain):
        batch = pack(
            [s.prompt_ids for s in samples],
            [s.response_ids for s in samples],
            [s.mm_inputs for s in samples],
            0,
            model.config,
        )
        logp, _, mask = response_logprobs(model, batch, suppressed=[], temperature=1.0)
        (logp * mask).sum().backward()
        results.append((logp, {n: p.grad for n, p in model.named_parameters()}))
    assert patch_rows == [2 * 16]  # two distinct 56x56 images of 16 patches, not six
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-4)
    for name, grad in results[1][1].items():
        torch.testing.assert_close(results[0][1][name], grad, atol=1e-5, rtol=1e-4, msg=name)

    greedy = SamplingConfig(n=3, max_new_tokens=6, temperature=0.0)
    tokenizer = engine.tokenizer
    ours = HFRolloutEngine(path, "qwen2_vl", tokenizer, module=shared).generate(requests, greedy)
    theirs = HFRolloutEngine(path, "qwen2_vl", tokenizer, module=plain).generate(requests, greedy)
    assert [[c.token_ids for c in g] for g in ours] == [[c.token_ids for c in g] for g in theirs]


def _one_step_config(demo_assets: Path, *, micro_batch_size: int) -> LearnerConfig:
    """The demo model's learner for one optimiser step over a batch of 8 samples."""
    return LearnerConfig(
        model_path=str(demo_assets / "tiny-qwen2-vl"),
        family="qwen2_vl",
        pad_id=0,
        total_optimizer_steps=1,
        learning_rate=1e-3,
        train_batch_size=8,
        micro_batch_size=micro_batch_size,
    )


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_accumulates_micro_batches_like_the_torch_learner(
    parts, demo_assets: Path, one_rank_group: None, stage: int
) -> None:
    """One optimiser step over 4 micro batches: same weights as the torch learner (ZeRO-3 once
    learned from the last micro batch only, when the forward bypassed the engine)."""
    from eureka_trainer.learner.deepspeed_learner import DeepSpeedLearner

    engine, _, requests = parts
    groups = engine.generate(requests, SamplingConfig(n=4, max_new_tokens=8, seed=5))
    samples = _samples(requests, groups, 1.0)
    config = _one_step_config(demo_assets, micro_batch_size=2)
    reference = TorchLearner(config)
    expected = reference.update(samples)
    learner = DeepSpeedLearner(replace(config, zero_stage=stage))
    got = learner.update(samples)
    assert got["policy/grad_norm"] == pytest.approx(expected["policy/grad_norm"], rel=1e-4)
    want = dict(reference.state_items())
    for name, tensor in learner.state_items():
        torch.testing.assert_close(tensor, want[name], atol=1e-5, rtol=0, msg=name)


def test_the_learner_runs_each_prompt_once_when_it_can(parts, demo_assets: Path) -> None:
    """`learner.sharePrompts`: a micro batch with a group's responses takes the shared-prompt
    forward, and one optimiser step lands on the same weights as the row-by-row forward, with
    gradient checkpointing too; the switch turns it off."""
    from eureka_trainer.learner.modeling import PackedBatch
    from eureka_trainer.learner.shared_prompts import PromptBatch

    engine, _, requests = parts
    groups = engine.generate(requests, SamplingConfig(n=4, max_new_tokens=8, seed=5))
    samples = _samples(requests, groups, 1.0)
    config = _one_step_config(demo_assets, micro_batch_size=8)
    shared, rows = TorchLearner(config), TorchLearner(replace(config, share_prompts=False))
    assert isinstance(shared._pack(samples), PromptBatch)
    assert isinstance(rows._pack(samples), PackedBatch)
    checkpointed = TorchLearner(replace(config, gradient_checkpointing=True))
    assert isinstance(checkpointed._pack(samples), PromptBatch)
    b = rows.update(samples)
    want = dict(rows.state_items())
    for learner in (shared, checkpointed):
        a = learner.update(samples)
        assert a["policy/grad_norm"] == pytest.approx(b["policy/grad_norm"], rel=1e-4)
        for name, tensor in learner.state_items():
            torch.testing.assert_close(tensor, want[name], atol=1e-5, rtol=0, msg=name)
    assert checkpointed.model.is_gradient_checkpointing  # still on after the updates
