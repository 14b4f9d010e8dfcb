"""`eureka run RLJOB --plan -o json` on the examples, as a user runs it (a subprocess: the plan
starts its own simulated Ray cluster, one raylet per pod, with fake GPUs and the operator's
pool resources), and the same for a tensor-parallel colocated layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "manifests" / "examples"


def plan(rljob: Path) -> dict[str, Any]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "trainer"), str(ROOT / "operator"), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(
        [sys.executable, "-m", "eureka_operator.cli", "run", str(rljob), "--plan", "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def gpus_of(rows: list[dict[str, Any]], role: str) -> list[tuple[str, str]]:
    return [(r["node"], g) for r in rows if r["role"] == role for g in r["gpus"]]


def test_colocated_example_has_one_learner_rank_and_one_engine_per_gpu() -> None:
    result = plan(EXAMPLES / "rljob-qwen.yaml")  # 1 pod x 8 GPUs, vLLM tp 1
    rows = result["actors"]
    learners = [r for r in rows if r["role"] == "learner"]
    engines = [r for r in rows if r["role"] == "engine"]
    assert [r["rank"] for r in learners] == list(range(8)) and len(engines) == 8
    every_gpu = {("workers-0", str(i)) for i in range(8)}
    # No GPU twice among the ranks (NCCL refuses it), nor among the engines; all 8 used.
    assert Counter(gpus_of(rows, "learner")) == Counter(every_gpu)
    assert Counter(gpus_of(rows, "engine")) == Counter(every_gpu)
    assert all(len(r["gpus"]) == 1 and r["gpuShare"] == 0.5 for r in rows)
    assert {r["poolResource"] for r in rows} == {"eureka_workers"}
    assert result["doubledGpus"] == []


def test_split_example_puts_each_pool_on_its_own_nodes() -> None:
    result = plan(EXAMPLES / "rljob.yaml")  # rollout: 1 pod x 8 GPUs; learner: 1 pod x 8
    rows = result["actors"]
    for role, pool in (("learner", "learner"), ("engine", "rollout")):
        mine = [r for r in rows if r["role"] == role]
        assert len(mine) == 8
        assert {r["node"] for r in mine} == {f"{pool}-0"}
        assert {r["poolResource"] for r in mine} == {f"eureka_{pool}"}
        assert sorted(gpus_of(rows, role)) == sorted((f"{pool}-0", str(i)) for i in range(8))
    assert result["doubledGpus"] == []


def test_tensor_parallel_engines_take_consecutive_gpus_of_their_ranks(tmp_path: Path) -> None:
    job = yaml.safe_load((EXAMPLES / "rljob-qwen.yaml").read_text(encoding="utf-8"))
    job["spec"]["rollout"]["tensorParallelSize"] = 2
    job["spec"]["resources"]["workers"].update({"replicas": 2, "gpus": 2, "cpu": "8"})
    job["spec"]["algorithm"]["trainBatchSize"] = 64
    path = tmp_path / "tp2.yaml"
    path.write_text(yaml.safe_dump(job), encoding="utf-8")
    rows = plan(path)["actors"]
    learners = {r["rank"]: r for r in rows if r["role"] == "learner"}
    engines = [r for r in rows if r["role"] == "engine"]
    assert sorted(learners) == [0, 1, 2, 3] and len(engines) == 2
    for index, engine in enumerate(engines):
        # Engine i spans the GPUs of ranks 2i and 2i+1: one pod, two GPUs.
        pair = [learners[2 * index], learners[2 * index + 1]]
        assert {r["node"] for r in pair} == {engine["node"]}
        assert sorted(engine["gpus"]) == sorted(g for r in pair for g in r["gpus"])
        assert engine["gpuShare"] == 0.0 and len(engine["bundles"]) == 2
    assert len({r["node"] for r in engines}) == 2
