"""A RayJob deleted while the operator's watch was broken sends no DELETED event; the periodic
audit (handlers/audit.py) notices it and the job takes the path of a deleted RayJob."""

from __future__ import annotations

import kmock
import pytest

from eureka_operator.handlers import audit
from tests.integration.operator.conftest import NS, Cluster, OperatorRunner, small_rljob
from tests.integration.operator.emulator import RAYJOBS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def fast_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "AUDIT_S", 0.5)  # read when the operator registers its handlers


def vanish(cluster: Cluster, name: str) -> None:
    """Delete the RayJob in the store without a watch event, as a gap in the stream would."""
    cluster.emu.objects[(kmock.resource(RAYJOBS), NS, name)].delete()


async def test_a_rayjob_gone_during_a_watch_gap_is_recreated(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(small_rljob("gap", runPolicy={"backoffLimit": 1}))
    old = await cluster.wait("RayJob", lambda: cluster.rayjob("gap"))
    await cluster.set_rayjob_status(
        "gap", {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
    )
    await cluster.wait("Running", lambda: cluster.status("gap").get("phase") == "Running")
    vanish(cluster, "gap")
    new = await cluster.wait(
        "recreated",
        lambda: (
            (r := cluster.rayjob("gap")) and r["metadata"]["uid"] != old["metadata"]["uid"] and r
        ),
    )
    assert new["metadata"]["ownerReferences"][0]["uid"] == cluster.rljob("gap")["metadata"]["uid"]
    cond = await cluster.wait("condition", lambda: cluster.condition("gap", "RayJobRecreated"))
    assert cond["status"] == "True" and cond["reason"] == "RayJobDeleted"


async def test_without_retries_left_the_job_fails_saying_why(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(small_rljob("gone"))
    await cluster.wait("RayJob", lambda: cluster.rayjob("gone"))
    await cluster.set_rayjob_status(
        "gone", {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
    )
    await cluster.wait("Running", lambda: cluster.status("gone").get("phase") == "Running")
    vanish(cluster, "gone")
    await cluster.wait("Failed", lambda: cluster.status("gone").get("phase") == "Failed")
    assert cluster.condition("gone", "Ready")["reason"] == "RayJobDeleted"
    assert cluster.rayjob("gone") is None
