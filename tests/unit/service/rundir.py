"""Run directories in the format `eureka run` writes, for the service tests."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

RLJOB = """\
apiVersion: eureka.dev/v1alpha1
kind: RLJob
metadata:
  name: {name}
spec:
  model:
    name: tiny-vlm
    family: qwen2_vl
    dtype: float32
  data:
    trainFiles: [data/train.jsonl]
"""

REFLECTIVE = "Let me compute 2 + 2. Wait, let me verify: 2 + 2 = 4. \\boxed{4}"
PLAIN = "2 + 2 = 4. \\boxed{4}"


def metrics_row(step: int, learning: float = 1.0) -> dict[str, Any]:
    """One line of metrics.jsonl: every metric the trainer logs, smooth in the step.

    `learning` scales how fast accuracy rises (runs that differ, for comparisons)."""
    acc = 0.2 + 0.6 * (1 - math.exp(-step * learning / 20))
    return {
        "step": step,
        "reward/total": acc + 0.9,
        "reward/accuracy": acc,
        "reward/format": 0.9,
        "reward/repetition": -0.01,
        "response_length/mean": 120 + step,
        "filter/pass_rate": 0.7,
        "policy/kl": 0.001 * step,
        "policy/entropy": 1.5 - 0.005 * step,
        "policy/clip_fraction": 0.02,
        "time/generate": 1.2,
        "time/score": 0.1,
        "time/update": 0.8,
        "time/sync": 0.05,
        "time/step": 2.5,
        "lr": 1e-6,
        "policy/grad_norm": 0.5 + 0.01 * step,
    }


def write_run(
    root: Path,
    name: str = "demo",
    steps: int = 30,
    samples_per_step: int = 2,
    phase: str = "Succeeded",
    partial_tail: bool = False,
    image: str | None = None,
    learning: float = 1.0,
) -> Path:
    """A finished (or running) run directory with `steps` steps of metrics and samples."""
    run = root / name
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run / "rljob.yaml").write_text(RLJOB.format(name=name))
    with (run / "metrics.jsonl").open("w") as out:
        for step in range(1, steps + 1):
            out.write(json.dumps(metrics_row(step, learning)) + "\n")
        if partial_tail:
            out.write(f'{{"step": {steps + 1}, "reward/total": 0.')
    with (run / "samples.jsonl").open("w") as out:
        for step in range(1, steps + 1):
            for i in range(samples_per_step):
                response = REFLECTIVE if (step > steps // 2 and i == 0) else PLAIN
                record = {
                    "step": step,
                    "prompt": f"What is 2 + 2? (step {step}, sample {i})",
                    "response": response,
                    "answer": "4",
                    "rewards": {"accuracy": 1.0, "format": 1.0, "total": 2.0},
                }
                if image is not None:
                    record["image"] = image
                out.write(json.dumps(record) + "\n")
    status = {
        "phase": phase,
        "progress": {"step": steps, "totalSteps": steps, "epoch": 0, "samplesSeen": steps * 8},
        "startTime": "2026-11-24T05:00:00Z",
        "completionTime": "2026-11-24T05:09:00Z" if phase == "Succeeded" else None,
        "metrics": {k: v for k, v in metrics_row(steps, learning).items() if k != "step"},
    }
    if phase == "Failed":
        status["conditions"] = [
            {
                "type": "Failed",
                "status": "True",
                "reason": "TrainerError",
                "message": "CUDA out of memory <script>alert(1)</script>",
                "lastTransitionTime": "2026-11-24T05:09:00Z",
            }
        ]
    (run / "status.json").write_text(json.dumps(status))
    return run
