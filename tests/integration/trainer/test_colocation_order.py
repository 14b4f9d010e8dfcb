"""The colocated memory order (`driver.colocation`) as the real `Topology` drives real actors on
local Ray: engines start and sleep before any learner exists, learners hand their memory back
before an engine wakes, and get it back before they train. Each actor appends what it does to
one file (the calls are blocking, so the file's order is the order they ran in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import SamplingConfig, TrainSample
from eureka_trainer.driver import workers
from tests.integration.trainer.conftest import image_request, topology_parts
from tests.integration.trainer.test_driver import _job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


class RecordingRollout(workers.RolloutWorker):
    log = ""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        _note(self.log, "engine built")

    def sleep(self) -> None:
        _note(self.log, "engine sleep")
        super().sleep()

    def wake_up(self) -> None:
        _note(self.log, "engine wake")
        super().wake_up()

    def load_weights(self, buckets: Any) -> tuple[int, int]:
        _note(self.log, "engine load")
        return super().load_weights(buckets)


class RecordingLearner(workers.LearnerWorker):
    log = ""

    def __init__(self, *args: Any) -> None:
        _note(self.log, "learner built")
        super().__init__(*args)

    def update(self, samples: Any) -> dict[str, float]:
        _note(self.log, "learner update")
        return super().update(samples)

    def release_memory(self, offload_optimizer: bool) -> dict[str, float]:
        _note(self.log, f"learner release offload={offload_optimizer}")
        return super().release_memory(offload_optimizer)

    def restore_memory(self) -> None:
        _note(self.log, "learner restore")
        super().restore_memory()


def _note(path: str, event: str) -> None:
    with open(path, "a") as f:
        f.write(event + "\n")


def test_engines_sleep_first_and_learners_release_before_every_wake(
    tmp_path: Path, demo_assets: Path, local_ray: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray.cloudpickle

    from eureka_trainer.driver.topology import Layout, Topology

    ray.cloudpickle.register_pickle_by_value(__import__(__name__, fromlist=["_"]))
    log = tmp_path / "events.txt"
    RecordingRollout.log = RecordingLearner.log = str(log)
    monkeypatch.setattr(workers, "RolloutWorker", RecordingRollout)
    monkeypatch.setattr(workers, "LearnerWorker", RecordingLearner)
    spec = _job(**{"rollout.sleepMode": True, "learner.offload": "optimizer"}).spec
    model, processor, config = topology_parts(spec, demo_assets)
    # Colocated, not hybrid: what a vLLM run gets (the `hf` engine stands in for vLLM here).
    layout = Layout(1, 1, 0.0, 0.0, cpus_per_actor=0.5, threads=1, hybrid=False)
    topology = Topology(spec, model, config, layout)
    try:
        request = image_request(processor)
        mm = request.mm_inputs
        sampling = SamplingConfig(n=2, max_new_tokens=4, seed=0)
        group = topology.generate([request], sampling)[0]
        samples = [
            TrainSample(request.prompt_ids, c.token_ids, [1.0] * len(c.token_ids), c.logprobs, mm)
            for c in group
        ]
        topology.update(samples)
        topology.sync()
        topology.generate([request], sampling)
    finally:
        topology.shutdown()
    assert log.read_text().splitlines() == [
        "engine built",
        "engine sleep",  # before any learner allocates
        "learner built",
        "learner release offload=True",  # before the engine wakes
        "engine wake",
        "engine sleep",
        "learner restore",  # optimizer state back before training
        "learner update",
        "learner release offload=True",  # before the sync wakes the engine's weights
        "engine load",
        "engine wake",  # then its KV cache
    ]
