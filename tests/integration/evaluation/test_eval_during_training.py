"""Evaluation during training, and the acceptance check of issue 7.

A two-step run of the demo's tiny Qwen2-VL (built from a config with a short format warm-up, so
it answers `<think>count</think><answer>N</answer>` and gets some counts right) evaluates greedily on
a held-out synthetic shapes split after each step. Then
`eureka eval --model RUN_DIR` evaluates the final checkpoint on the same split, on the CPU: its
greedy responses, and so its accuracy, must be exactly those measured during training.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eureka_operator.cli import main
from eureka_trainer.demo.assets import ShapesConfig, write_shapes
from eureka_trainer.demo.resolve import build_demo_model

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
EVAL_RECORDS = 32


def _job(eval_file: Path) -> dict:
    return {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": "eval-during-training"},
        "spec": {
            "model": {
                "name": "eureka-demo/tiny-qwen2-vl",
                "family": "qwen2_vl",
                "dtype": "float32",
            },
            "data": {
                "trainFiles": ["eureka-demo://shapes"],
                "evalFiles": [str(eval_file)],
                "maxPromptLength": 64,
                "minPixels": 3136,
                "maxPixels": 3136,
            },
            "rewards": {"mode": "instruct", "workers": 1},
            "algorithm": {
                "estimator": "grpo",
                "samplesPerPrompt": 2,
                "rolloutBatchSize": 4,
                "trainBatchSize": 8,
                "maxSteps": 2,
                "learningRate": 1.0e-3,
                "lrSchedule": "constant",
                "warmupRatio": 0.0,
                "seed": 0,
            },
            "rollout": {"backend": "hf", "temperature": 1.0, "maxNewTokens": 8},
            "learner": {"backend": "torch", "microBatchSize": 8, "gradientCheckpointing": False},
            "resources": {
                "placement": "colocated",
                "workers": {"replicas": 1, "gpus": 0, "cpu": "2", "memory": "4Gi"},
            },
            "checkpoint": {"intervalSteps": 1, "keepLast": 1, "storage": {"path": "checkpoints"}},
            "evaluation": {
                "intervalSteps": 1,
                "template": "reasoning_instruct",
                "temperature": 0.0,
                "maxNewTokens": 8,
            },
        },
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval-training")
    eval_file = write_shapes(root / "held-out", ShapesConfig(records=EVAL_RECORDS, seed=4321))
    run = root / "run"
    # where `eureka run` looks for the demo model
    build_demo_model(run / "demo-assets" / "tiny-qwen2-vl", 0, warmup_steps=60)
    job = root / "job.yaml"
    job.write_text(yaml.safe_dump(_job(eval_file)), encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eureka_operator.cli",
            "run",
            str(job),
            "--output",
            str(run),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return run


def test_eval_metrics_are_reported_every_interval(run_dir: Path) -> None:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "eval/accuracy" in r] == [1, 2]
    assert all(r["eval/records"] == EVAL_RECORDS for r in rows)
    status = json.loads((run_dir / "status.json").read_text())
    assert "eval/accuracy" in status["metrics"] and status["curves"]["eval/accuracy"]["steps"] == [
        1,
        2,
    ]
    final = json.loads((run_dir / "eval" / "step-00000002" / "summary.json").read_text())
    assert final["step"] == 2 and final["records"] == EVAL_RECORDS and final["temperature"] == 0.0


def test_final_checkpoint_offline_matches_training_time_greedy_eval(
    run_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "offline"
    # No --data: a run directory's data.evalFiles is the default eval set.
    assert main(["eval", "--model", str(run_dir), "--output", str(out)]) == 0
    offline = json.loads((out / "summary.json").read_text())
    assert offline["checkpoint_step"] == 2 and offline["backend"] == "hf"
    assert offline["temperature"] == 0.0 and offline["max_new_tokens"] == 8  # the run's evaluation
    trained = [
        json.loads(line)
        for line in (run_dir / "eval" / "step-00000002" / "samples.jsonl").read_text().splitlines()
    ]
    again = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [(r["id"], r["responses"]) for r in again] == [
        (r["id"], r["responses"]) for r in trained
    ]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert offline["accuracy"] == pytest.approx(rows[-1]["eval/accuracy"])
    assert 0 < offline["accuracy"] < 1  # some right, some wrong: the comparison is not vacuous
