"""The learner's metrics are the train batch's, whatever the micro batch size: `policy/loss`
and `policy/clip_fraction` equal for micro batches of 1 and 128 on the same batch, and a
`policy/grad_norm` at DeepSpeed ZeRO-0 (which keeps none of its own in fp32)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from eureka_trainer.backends import GenerationRequest, SamplingConfig, TrainSample
from eureka_trainer.demo.assets import draw_shapes
from eureka_trainer.demo.resolve import load_demo_processor
from eureka_trainer.demo.warmup import demo_messages
from eureka_trainer.learner.torch_learner import LearnerConfig, TorchLearner
from eureka_trainer.rollout.hf import HFRolloutEngine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def batch(demo_assets: Path) -> tuple[LearnerConfig, list[TrainSample]]:
    """16 responses of unequal lengths, old log-probs shifted so that some tokens clip."""
    model = str(demo_assets / "tiny-qwen2-vl")
    processor = load_demo_processor(model)
    engine = HFRolloutEngine(model, "qwen2_vl", processor.tokenizer)
    text = processor.apply_chat_template(
        demo_messages(), add_generation_prompt=True, tokenize=False
    )
    rng = random.Random(0)
    requests = []
    for count in (1, 2, 3, 4):
        enc = processor(text=[text], images=[draw_shapes(count, rng)], return_tensors="pt")
        mm = {"pixel_values": enc["pixel_values"], "image_grid_thw": enc["image_grid_thw"]}
        requests.append(GenerationRequest(prompt_ids=enc["input_ids"][0].tolist(), mm_inputs=mm))
    groups = engine.generate(requests, SamplingConfig(n=4, max_new_tokens=12, seed=3))
    samples = []
    for i, (request, group) in enumerate(zip(requests, groups, strict=True)):
        for j, completion in enumerate(group):
            keep = 1 + (3 * i + j) % len(completion.token_ids)  # unequal lengths
            samples.append(
                TrainSample(
                    prompt_ids=request.prompt_ids,
                    response_ids=completion.token_ids[:keep],
                    advantages=[(-1.0) ** j * (1 + i)] * keep,
                    old_logprobs=[
                        lp + 0.3 * (-1.0) ** t for t, lp in enumerate(completion.logprobs[:keep])
                    ],
                    mm_inputs=request.mm_inputs,
                )
            )
    assert len({len(s.response_ids) for s in samples}) > 3
    config = LearnerConfig(
        model_path=model,
        family="qwen2_vl",
        pad_id=0,
        total_optimizer_steps=1,
        learning_rate=1e-3,
        train_batch_size=16,
        micro_batch_size=16,
    )
    return config, samples


@pytest.mark.parametrize("aggregation", ["seq-mean-token-mean", "token-mean"])
def test_metrics_do_not_depend_on_the_micro_batch_size(
    batch: tuple[LearnerConfig, list[TrainSample]], aggregation: str
) -> None:
    config, samples = batch
    results = [
        TorchLearner(replace(config, micro_batch_size=micro, aggregation=aggregation)).update(
            samples
        )
        for micro in (1, 128)
    ]
    one, whole = results
    for key in ("policy/loss", "policy/clip_fraction", "policy/approx_kl", "policy/ratio_mean"):
        assert one[key] == pytest.approx(whole[key], rel=1e-5, abs=1e-7), key
    assert 0 < whole["policy/clip_fraction"] < 1  # the batch does clip (the test has teeth)
    assert abs(whole["policy/loss"]) > 1e-3
    assert one["policy/grad_norm"] == pytest.approx(whole["policy/grad_norm"], rel=1e-4)


def test_deepspeed_zero0_reports_the_grad_norm(
    batch: tuple[LearnerConfig, list[TrainSample]], one_rank_group: None
) -> None:
    """DeepSpeed's fp32 ZeRO-0 path clips with `clip_grad_norm_` and keeps no norm
    (`engine.clip_fp32_gradients`): the learner measures it, equal to the torch learner's."""
    from eureka_trainer.learner.deepspeed_learner import DeepSpeedLearner

    config, samples = batch
    config = replace(config, micro_batch_size=4, max_grad_norm=1e9)
    expected = TorchLearner(config).update(samples)
    got = DeepSpeedLearner(replace(config, zero_stage=0)).update(samples)
    assert got["policy/grad_norm"] == pytest.approx(expected["policy/grad_norm"], rel=1e-4)
    assert got["policy/loss"] == pytest.approx(expected["policy/loss"], rel=1e-5)
