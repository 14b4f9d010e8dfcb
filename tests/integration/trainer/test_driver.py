"""The driver end to end on local Ray: run directory, resume equivalence, DeepSpeed ZeRO-3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from eureka_trainer.config import validate_rljob
from eureka_trainer.local import train
from tests.integration.trainer.conftest import run_dir_with_assets

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _job(**overrides: Any) -> Any:
    spec: dict[str, Any] = {
        "model": {"name": "eureka-demo/tiny-qwen2-vl", "family": "qwen2_vl", "dtype": "float32"},
        "data": {
            "trainFiles": ["eureka-demo://shapes"],
            "maxPromptLength": 64,
            "minPixels": 3136,
            "maxPixels": 3136,
        },
        "rewards": {"workers": 1},
        "algorithm": {
            "estimator": "grpo",
            "samplesPerPrompt": 4,
            "rolloutBatchSize": 4,
            "trainBatchSize": 8,
            "maxSteps": 2,
            "learningRate": 1e-3,
            "lrSchedule": "constant",
            "seed": 0,
        },
        "rollout": {"backend": "hf", "maxNewTokens": 8},
        "learner": {"backend": "torch", "microBatchSize": 4, "gradientCheckpointing": False},
        "resources": {"workers": {"gpus": 0}},
        "checkpoint": {"intervalSteps": 3, "keepLast": 2, "storage": {"path": "checkpoints"}},
        "logging": {"samplesPerStep": 2, "tensorboard": {"enabled": False}},
    }
    for path, value in overrides.items():
        node = spec
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return validate_rljob(
        {
            "apiVersion": "eureka.dev/v1alpha1",
            "kind": "RLJob",
            "metadata": {"name": "t"},
            "spec": spec,
        }
    )


def _metrics(run: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    state = torch.load(
        run / "checkpoints" / f"step-{step:08d}" / "learner" / "learner.pt", weights_only=False
    )
    return state["model"]  # type: ignore[no-any-return]


REQUIRED = (
    "reward/total",
    "reward/accuracy",
    "reward/format",
    "response_length/mean",
    "filter/pass_rate",
    "time/generate",
    "time/score",
    "time/update",
    "time/sync",
    "time/step",
    "lr",
    "policy/loss",
)


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory, demo_assets: Path, local_ray: None) -> Path:
    """Six steps without interruption (checkpoints at 3 and 6)."""
    run = run_dir_with_assets(tmp_path_factory.mktemp("straight") / "run", demo_assets)
    assert train(_job(**{"algorithm.maxSteps": 6}), run) == 0
    return run


def test_run_writes_a_complete_run_directory(straight: Path) -> None:
    rows = _metrics(straight)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for key in REQUIRED:
        assert key in rows[-1], key
    # Colocated `hf` + torch: one hybrid actor whose engine samples from the learner's module.
    assert rows[-1]["sync/megabytes"] == 0 and rows[-1]["sync/buckets"] == 0
    lines = (straight / "samples.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    assert len(samples) == 12
    assert set(samples[0]) == {"step", "prompt", "response", "answer", "rewards", "image"}
    assert samples[0]["image"].startswith("data:image/jpeg;base64,")  # the dashboard shows it
    assert 0.0 <= rows[-1]["reflection/rate"] <= 1.0  # over every response of the step
    status = json.loads((straight / "status.json").read_text())
    assert status["phase"] == "Succeeded" and status["progress"]["step"] == 6
    assert status["progress"]["lastCheckpointStep"] == 6
    assert status["startTime"] and status["completionTime"]
    kept = sorted(p.name for p in (straight / "checkpoints").iterdir())
    assert kept == ["step-00000003", "step-00000006"]  # keepLast 2


def test_resume_gives_the_same_weights_and_metrics(
    straight: Path, tmp_path: Path, demo_assets: Path
) -> None:
    resumed = run_dir_with_assets(tmp_path / "resumed", demo_assets)
    # Stop after step 3 (its checkpoint is written); the actors are torn down, as in a kill.
    assert train(_job(**{"algorithm.maxSteps": 6}), resumed, stop_after=3) == 0
    assert json.loads((resumed / "status.json").read_text())["progress"]["step"] == 3
    assert train(_job(**{"algorithm.maxSteps": 6}), resumed) == 0
    a, b = _weights(straight, 6), _weights(resumed, 6)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)

    def strip(rows: list[dict[str, float]]) -> list[dict[str, float]]:
        # Wall-clock times and the reward pool's own counters (its answer cache starts empty
        # after a restart) may differ; every training metric must not.
        timing = ("time/", "reward/slowest_seconds", "reward/worker_jobs")
        return [{k: v for k, v in r.items() if not k.startswith(timing)} for r in rows]

    again, first = strip(_metrics(resumed)), strip(_metrics(straight))
    assert len(again) == len(first) == 6
    for row_again, row_first in zip(again, first, strict=True):
        assert row_again == pytest.approx(row_first, rel=1e-6, abs=1e-7)


def test_deepspeed_zero3_with_kl_filter_and_two_update_epochs(
    tmp_path: Path, demo_assets: Path, local_ray: None
) -> None:
    run = run_dir_with_assets(tmp_path / "ds", demo_assets)
    job = _job(
        **{
            "learner.backend": "deepspeed",
            "learner.zeroStage": 3,
            "algorithm.updateEpochs": 2,
            "algorithm.kl": {"coef": 0.05, "estimator": "k3", "placement": "loss"},
            "algorithm.filter": {"enabled": True, "lower": 0.0, "upper": 1.0},
            "model.frozenPrefixes": ["visual."],
        }
    )
    assert train(job, run) == 0
    rows = _metrics(run)
    assert [r["step"] for r in rows] == [1, 2]
    assert "policy/kl" in rows[-1]  # the reference model exists and the KL is in the loss
    assert rows[-1]["filter/pass_rate"] == 1.0
    # ZeRO-3 partitions the weights: the hybrid actor gathers and copies them into its engine.
    assert rows[-1]["sync/buckets"] >= 1 and rows[-1]["sync/megabytes"] > 0
    assert (run / "checkpoints" / "step-00000002" / "learner" / "engine").is_dir()


def test_split_placement_syncs_over_a_broadcast_group(
    tmp_path: Path, demo_assets: Path, local_ray: None
) -> None:
    """Separate rollout and learner actors; weights cross a gloo broadcast group."""
    run = run_dir_with_assets(tmp_path / "split", demo_assets)
    pools = {"placement": "split", "rollout": {"gpus": 0}, "learner": {"gpus": 0}}
    # One optimiser step per update, so every ratio is taken before the weights change.
    job = _job(**{"resources": pools, "algorithm.maxSteps": 3, "algorithm.trainBatchSize": 16})
    assert train(job, run) == 0
    rows = _metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[-1]["sync/buckets"] >= 1 and rows[-1]["sync/megabytes"] > 0
    # Steps 2 and 3 sampled from the synced weights: the learner's log-probs before its
    # update equal the engine's (a stale engine would give ratios away from 1).
    for row in rows[1:]:
        assert row["policy/ratio_mean"] == pytest.approx(1.0, abs=1e-4)
        assert abs(row["policy/approx_kl"]) < 1e-5
