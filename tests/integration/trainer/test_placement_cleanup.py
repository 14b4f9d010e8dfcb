"""An actor that fails to start releases the run's placement group: left behind, its reserved
CPUs (GPUs) make the next run in the same Ray wait forever for its own group."""

from __future__ import annotations

from pathlib import Path

import pytest

from eureka_trainer.driver.setup import learner_config
from eureka_trainer.driver.topology import Topology, plan_layout
from tests.integration.trainer.test_driver import _job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_failed_actor_start_removes_the_placement_group(tmp_path: Path, local_ray: None) -> None:
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    spec = _job().spec  # colocated: the actors live in a placement group
    layout = plan_layout(spec, cluster=False, local_cpus=2)
    missing = str(tmp_path / "no-such-model")
    config = learner_config(spec, missing, 0, 1, layout.learners)
    with pytest.raises(Exception, match="no-such-model"):
        Topology(spec, missing, config, layout)
    states = {v["state"] for v in ray.util.placement_group_table().values()}
    assert states <= {"REMOVED"}, states
    # The whole of this Ray's CPUs can be reserved again at once (a leak would block here).
    group = placement_group([{"CPU": 2}])
    try:
        ray.get(group.ready(), timeout=30)
    finally:
        remove_placement_group(group)
