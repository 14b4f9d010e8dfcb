"""The RLJob models: MM-EUREKA's defaults and the cross-field checks, each naming its field."""

from __future__ import annotations

import pytest

from eureka_trainer.config import RLJobError, RLJobSpec, validate_rljob


def job(**spec: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": {"name": "m"},
        "data": {"trainFiles": ["train.jsonl"]},
        "rollout": {"backend": "hf"},
    }
    base.update(spec)
    return {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": "j"},
        "spec": base,
    }


def paths(data: dict[str, object]) -> list[str]:
    with pytest.raises(RLJobError) as err:
        validate_rljob(data)
    return [p.path for p in err.value.problems]


def test_defaults_reproduce_mm_eureka_8b() -> None:
    spec = validate_rljob(job()).spec
    algo = spec.algorithm
    assert algo.estimator == "rloo"
    assert algo.learning_rate == 3e-7
    assert (algo.rollout_batch_size, algo.samples_per_prompt, algo.train_batch_size) == (128, 8, 64)
    assert (
        algo.adam_betas == (0.9, 0.95) and algo.warmup_ratio == 0.03 and algo.max_grad_norm == 1.0
    )
    assert algo.kl.coef == 0.0 and algo.clip.low == algo.clip.high == 0.2
    assert algo.loss_aggregation == "seq-mean-token-mean"
    assert not algo.filter.enabled and (algo.filter.lower, algo.filter.upper) == (0.0, 1.0)
    assert spec.rollout.temperature == 1.0 and spec.rollout.max_new_tokens == 4096
    assert spec.rollout.gpu_memory_utilization == 0.7
    assert spec.data.max_prompt_length == 2048
    assert (spec.data.min_pixels, spec.data.max_pixels) == (4 * 28 * 28, 640 * 28 * 28)
    assert spec.learner.gradient_checkpointing and spec.learner.offload == "optimizer"
    assert spec.checkpoint.interval_steps == 50
    weights = {c.name: c.weight for c in spec.rewards.components}
    assert weights == {"accuracy": 1.0, "format": 0.5}


def test_boxed_mode_gives_format_weight_one() -> None:
    spec = RLJobSpec.model_validate(
        job(rewards={"mode": "boxed", "components": [{"name": "accuracy"}, {"name": "format"}]})[
            "spec"
        ]
    )
    assert {c.name: c.weight for c in spec.rewards.components} == {"accuracy": 1.0, "format": 1.0}


def test_camel_case_round_trip() -> None:
    spec = validate_rljob(
        job(algorithm={"samplesPerPrompt": 4, "rolloutBatchSize": 16, "trainBatchSize": 16})
    ).spec
    dumped = spec.to_yaml_dict()
    assert dumped["algorithm"]["samplesPerPrompt"] == 4  # type: ignore[index]
    assert RLJobSpec.model_validate(dumped) == spec


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"algorithm": {"filter": {"lower": 0.9, "upper": 0.1}}}, "spec.algorithm.filter.lower"),
        (
            {"algorithm": {"estimator": "grpo", "samplesPerPrompt": 1}},
            "spec.algorithm.samplesPerPrompt",
        ),
        ({"algorithm": {"trainBatchSize": 100}}, "spec.algorithm.trainBatchSize"),
        ({"learner": {"microBatchSize": 3}}, "spec.learner.microBatchSize"),
        ({"rollout": {"backend": "vllm"}}, "spec.rollout.backend"),
        (
            {
                "rollout": {"backend": "vllm", "tensorParallelSize": 3},
                "resources": {"workers": {"gpus": 8}},
            },
            "spec.rollout.tensorParallelSize",
        ),
        ({"resources": {"placement": "split"}}, "spec.resources.placement"),
        (
            {"resources": {"workers": {"gpus": 1}, "rollout": {"gpus": 1}}},
            "spec.resources.placement",
        ),
        ({"logging": {"wandb": {"enabled": True}}}, "spec.logging.wandb.apiKeySecret"),
        (
            {"rewards": {"components": [{"name": "format"}, {"name": "format"}]}},
            "spec.rewards.components",
        ),
        ({"data": {"trainFiles": []}}, "spec.data.trainFiles"),
        ({"data": {"trainFiles": ["a"], "minPixels": 10, "maxPixels": 5}}, "spec.data.minPixels"),
        ({"rewards": {"components": [{"name": "Bad Name"}]}}, "spec.rewards.components.0.name"),
    ],
)
def test_cross_field_checks_name_the_field(spec: dict[str, object], path: str) -> None:
    assert paths(job(**spec)) == [path]


def test_learner_ranks_split_the_batch() -> None:
    data = job(
        rollout={"backend": "vllm"},
        algorithm={"trainBatchSize": 64},
        resources={
            "placement": "split",
            "rollout": {"gpus": 8},
            "learner": {"gpus": 8, "replicas": 2},
        },
        learner={"microBatchSize": 4},
    )
    spec = validate_rljob(data).spec
    assert spec.learner_world_size() == 16  # 64 / 16 ranks = 4 per rank: one micro batch each
    data["spec"]["learner"] = {"microBatchSize": 8}  # type: ignore[index]
    assert paths(data) == ["spec.learner.microBatchSize"]


def test_secrets_only_by_reference() -> None:
    assert paths(job(logging={"wandb": {"enabled": True, "apiKey": "xyz"}})) == [
        "spec.logging.wandb.apiKey"
    ]
