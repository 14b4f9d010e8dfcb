"""Pure pieces of the trainer: bucketing, batch plumbing, lr schedule, plots, layouts."""

from __future__ import annotations

import math

import pytest
import torch

from eureka_trainer.backends import Completion, GenerationRequest, bucketize
from eureka_trainer.config import RLJobSpec
from eureka_trainer.driver.batch import (
    Group,
    attach_scores,
    response_mask,
    response_metrics,
    sample_records,
    train_samples,
)
from eureka_trainer.driver.setup import learner_config, total_steps
from eureka_trainer.driver.topology import _split, plan_layout
from eureka_trainer.learner.torch_learner import lr_factor
from eureka_trainer.local import text_plot


def test_bucketize_groups_in_order_and_bounds_size() -> None:
    named = [(f"p{i}", torch.zeros(256)) for i in range(5)]  # 1 KiB each
    named.insert(2, ("big", torch.zeros(4096)))  # 16 KiB: a bucket of its own
    buckets = bucketize(named, 2048)
    assert [b.names for b in buckets] == [["p0", "p1"], ["big"], ["p2", "p3"], ["p4"]]
    assert all(b.nbytes <= 2048 for b in buckets if "big" not in b.names)


def _group(lengths: list[int], answer: str = "2") -> Group:
    completions = [
        Completion(
            token_ids=list(range(n)),
            logprobs=[-0.5] * n,
            text=f"t{n}",
            finish_reason="length" if n == 4 else "stop",
        )
        for n in lengths
    ]
    return Group("id", "How many?", answer, GenerationRequest(prompt_ids=[1, 2]), completions)


def test_scores_flow_back_onto_groups_and_samples() -> None:
    groups = [_group([1, 2]), _group([3, 4])]
    attach_scores(
        groups,
        [0.0, 1.5, 0.5, 1.0],
        {"accuracy": [0, 1, 0, 1], "format": [0, 1, 1, 0]},
        [True, True, False, False],
    )
    assert groups[0].accuracy == [0, 1] and groups[1].total == [0.5, 1.0]
    assert groups[0].valid and not groups[1].valid
    mask = response_mask(groups)
    assert mask.shape == (4, 4) and mask.sum() == 10
    adv = torch.arange(16, dtype=torch.float32).reshape(4, 4)
    samples = train_samples(groups, adv)
    assert samples[1].advantages == [4.0, 5.0] and samples[1].old_logprobs == [-0.5, -0.5]
    assert samples[3].prompt_ids == [1, 2] and samples[3].response_ids == [0, 1, 2, 3]
    records = sample_records(groups, step=7, limit=1)
    assert len(records) == 1 and records[0].rewards == {"accuracy": 0, "format": 0, "total": 0.0}
    metrics = response_metrics(groups)
    assert metrics["response_length/mean"] == 2.5 and metrics["response_length/clip_ratio"] == 0.25


def test_lr_schedules() -> None:
    assert lr_factor(0, 100, 0.1, "constant", 0.1) == pytest.approx(0.1)  # warm-up
    assert lr_factor(50, 100, 0.0, "constant", 0.1) == 1.0
    assert lr_factor(100, 100, 0.0, "cosine_with_min_lr", 0.1) == pytest.approx(0.1)
    assert lr_factor(50, 100, 0.0, "linear", 0.0) == pytest.approx(0.5)
    assert lr_factor(50, 100, 0.0, "cosine", 0.0) == pytest.approx(0.5)


def test_split_is_contiguous_and_balanced() -> None:
    assert _split(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]


def _spec(**algorithm: object) -> RLJobSpec:
    return RLJobSpec.model_validate(
        {
            "model": {"name": "m"},
            "data": {"trainFiles": ["x.jsonl"]},
            "rollout": {"backend": "hf"},
            "algorithm": {
                "rolloutBatchSize": 4,
                "samplesPerPrompt": 4,
                "trainBatchSize": 8,
                **algorithm,
            },
        }
    )


def test_steps_and_learner_settings_from_the_spec() -> None:
    spec = _spec(epochs=2, updateEpochs=3)
    assert total_steps(spec, 10) == 2 * math.ceil(10 / 4)
    assert total_steps(_spec(maxSteps=5), 1000) == 5
    config = learner_config(spec, "m", 0, steps=6, world=2)
    assert config.total_optimizer_steps == 6 * (16 // 8) * 3
    assert config.train_batch_size == 4 and config.update_epochs == 3


def test_layout_local_and_cluster() -> None:
    spec = RLJobSpec.model_validate(
        {
            "model": {"name": "m"},
            "data": {"trainFiles": ["x.jsonl"]},
            "algorithm": {"trainBatchSize": 64},
            "resources": {"placement": "colocated", "workers": {"replicas": 2, "gpus": 4}},
        }
    )
    local = plan_layout(spec, cluster=False, local_cpus=2)
    assert (local.engines, local.learners, local.engine_gpus) == (1, 1, 0.0)
    assert local.threads == 2  # phases run one after another: each actor may use every core
    cluster = plan_layout(spec, cluster=True, local_cpus=2)
    assert (cluster.engines, cluster.learners) == (8, 8)
    assert cluster.engine_gpus + cluster.learner_gpus == 1.0  # both share each GPU


def test_hybrid_actors_only_for_colocated_hf_with_one_engine_per_rank() -> None:
    def layout(cluster: bool = False, **resources: object) -> object:
        spec = RLJobSpec.model_validate(
            {
                "model": {"name": "m"},
                "data": {"trainFiles": ["x.jsonl"]},
                "rollout": {"backend": resources.pop("backend", "hf")},
                "resources": resources or {"workers": {"gpus": 0}},
            }
        )
        return plan_layout(spec, cluster=cluster, local_cpus=2)

    assert layout().hybrid  # the local demo: one process, one model
    assert layout(cluster=True, workers={"replicas": 2, "gpus": 4}).hybrid
    assert not layout(backend="vllm", workers={"gpus": 1}).hybrid  # vLLM keeps its actors
    split = {"placement": "split", "rollout": {"gpus": 0}, "learner": {"gpus": 0}}
    assert not layout(**split).hybrid


def test_text_plot_draws_every_column() -> None:
    plot = text_plot([0.0, 0.5, 1.0], width=10, height=3, label="acc")
    lines = plot.splitlines()
    assert lines[0] == "acc"
    assert lines[1].endswith("  *") and lines[3].endswith("*  ")
