"""`Topology.generate(while_sampling=...)` runs the driver's work while the engines sample, as
the real `Topology` drives a rollout actor on local Ray: the actor's `generate` does not start
sampling until the callback has run, so a callback run only after the results (or never) fails
the call instead of passing by luck of timing. The trainer encodes the next prompts there
(`Trainer.generate`, `tests/unit/trainer/test_step_order.py`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import SamplingConfig
from eureka_trainer.driver import workers
from tests.integration.trainer.conftest import image_request, topology_parts
from tests.integration.trainer.test_driver import _job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


class WaitingRollout(workers.RolloutWorker):
    """Samples only once the driver's callback has left its marker file."""

    marker = ""

    def generate(self, requests: Any, sampling: Any) -> Any:
        deadline = time.monotonic() + 30
        while not Path(self.marker).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the driver's while_sampling did not run during the call")
            time.sleep(0.01)
        return super().generate(requests, sampling)


def test_the_callback_runs_after_the_requests_are_sent_and_before_the_results(
    tmp_path: Path, demo_assets: Path, local_ray: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray.cloudpickle

    from eureka_trainer.driver.topology import Layout, Topology

    ray.cloudpickle.register_pickle_by_value(__import__(__name__, fromlist=["_"]))
    marker = tmp_path / "sent"
    WaitingRollout.marker = str(marker)
    monkeypatch.setattr(workers, "RolloutWorker", WaitingRollout)
    spec = _job().spec
    model, processor, config = topology_parts(spec, demo_assets)
    # A rollout group and a learner group (the hybrid actor's class, subclassed in a test,
    # does not pickle by value: its methods' zero-argument `super` names the original).
    layout = Layout(1, 1, 0.0, 0.0, cpus_per_actor=0.5, threads=1, hybrid=False)
    request = image_request(processor)
    calls: list[str] = []

    def while_sampling() -> None:
        calls.append("while sampling")
        marker.touch()

    topology = Topology(spec, model, config, layout)
    try:
        groups = topology.generate(
            [request], SamplingConfig(n=2, max_new_tokens=4, seed=0), while_sampling=while_sampling
        )
    finally:
        topology.shutdown()
    assert calls == ["while sampling"]
    assert [len(g) for g in groups] == [2]
