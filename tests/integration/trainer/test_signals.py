"""A killed run does not stay Running: `eureka run` in a real subprocess receives SIGTERM or
SIGINT (Ctrl-C) mid-run and ends with status Failed, reason Interrupted, a message naming the
step and the command that resumes it, no traceback, and exit status 128 + signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.trainer.conftest import run_dir_with_assets

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]


def _write_job(path: Path) -> Path:
    job = {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": "killed"},
        "spec": {
            "model": {
                "name": "eureka-demo/tiny-qwen2-vl",
                "family": "qwen2_vl",
                "dtype": "float32",
            },
            "data": {"trainFiles": ["eureka-demo://shapes"], "maxPromptLength": 64},
            "rewards": {"workers": 1},
            "algorithm": {"samplesPerPrompt": 2, "rolloutBatchSize": 2, "trainBatchSize": 4},
            "rollout": {"backend": "hf", "maxNewTokens": 4},
            "learner": {"backend": "torch", "gradientCheckpointing": False},
            "resources": {"workers": {"gpus": 0}},
            "checkpoint": {"intervalSteps": 1, "storage": {"path": "checkpoints"}},
            "logging": {"tensorboard": {"enabled": False}},
        },
    }
    job["spec"]["algorithm"]["maxSteps"] = 1000  # never reached: the signal ends it
    path.write_text(yaml.safe_dump(job))
    return path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_run_as_interrupted(
    tmp_path: Path, demo_assets: Path, signum: signal.Signals
) -> None:
    run = run_dir_with_assets(tmp_path / "run", demo_assets)
    job = _write_job(tmp_path / "job.yaml")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "trainer"), str(ROOT / "operator")]),
        "RAY_AUTH_MODE": "disabled",
    }
    command = [sys.executable, "-m", "eureka_operator.cli", "run", str(job), "--output", str(run)]
    command += ["--no-progress"]
    proc = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 200
        metrics = run / "metrics.jsonl"
        while not (metrics.exists() and metrics.read_text().strip()):  # a step is done
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no step finished in time"
            time.sleep(0.5)
        proc.send_signal(signum)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, output
    status = json.loads((run / "status.json").read_text())
    assert status["phase"] == "Failed", status
    (condition,) = status["conditions"]
    assert condition["reason"] == "Interrupted"
    message = condition["message"]
    assert message.startswith(f"interrupted by {signum.name} at step ")
    assert f"resume with: eureka run {job} --output {run}" in message
    assert status["progress"]["heartbeatTime"]
    assert "Traceback" not in output, output[-3000:]
