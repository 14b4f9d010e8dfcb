"""Operator restarts with jobs in flight: no duplicate children, status recomputed, nothing lost."""

from __future__ import annotations

import pytest

from tests.integration.operator.conftest import NS, Cluster, OperatorRunner, small_rljob

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
N = 20


def creations(cluster: Cluster, plural: str) -> int:
    return sum(
        1
        for r in cluster.emu
        if r.method == "POST" and r.resource is not None and r.resource.plural == plural
    )


async def test_restart_with_20_jobs_in_flight(cluster: Cluster) -> None:
    names = [f"job-{i:02d}" for i in range(N)]
    operator = OperatorRunner()
    await operator.start()
    for name in names:
        await cluster.create_rljob(small_rljob(name))
    await cluster.wait("all RayJobs", lambda: all(cluster.rayjob(n) for n in names), timeout=60)
    for name in names[:10]:
        await cluster.set_rayjob_status(
            name, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
        )
    await cluster.wait(
        "10 running",
        lambda: all(cluster.status(n).get("phase") == "Running" for n in names[:10]),
        60,
    )
    await cluster.wait(
        "10 pending",
        lambda: all(cluster.status(n).get("phase") == "Pending" for n in names[10:]),
        60,
    )
    for name in names:  # the trainer's own fields
        path = f"/apis/eureka.dev/v1alpha1/namespaces/{NS}/rljobs/{name}/status"
        await cluster.request(
            "patch", path, {"status": {"progress": {"step": 3}}}, "application/merge-patch+json"
        )
    uids = {n: cluster.rayjob(n)["metadata"]["uid"] for n in names}
    running_events = {
        n: sum(e["reason"] == "Running" for e in cluster.events(n)) for n in names[:10]
    }
    await operator.stop()

    # While the operator is down, KubeRay moves on.
    for name in names[:5]:
        await cluster.set_rayjob_status(
            name, {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}
        )
    for name in names[10:15]:
        await cluster.set_rayjob_status(name, {"jobDeploymentStatus": "Initializing"})

    await operator.start()
    try:
        expect = {n: "Succeeded" for n in names[:5]}
        expect |= {n: "Running" for n in names[5:10]}
        expect |= {n: "Initializing" for n in names[10:15]}
        expect |= {n: "Pending" for n in names[15:]}
        await cluster.wait(
            "recomputed phases",
            lambda: all(cluster.status(n).get("phase") == p for n, p in expect.items()),
            timeout=60,
        )
        # The restarted operator reconciled every job again (create-or-get: a POST answered
        # 409 per child) and must not have created anything.
        await cluster.wait("second pass done", lambda: creations(cluster, "rolebindings") == 2 * N)
    finally:
        await operator.stop()
    assert creations(cluster, "rayjobs") == N
    assert len(cluster.emu.objs("ray.io/v1/rayjobs", NS)) == N
    assert len(cluster.emu.objs("v1/configmaps", NS)) == N
    assert {n: cluster.rayjob(n)["metadata"]["uid"] for n in names} == uids
    for name in names:
        assert cluster.status(name)["progress"]["step"] == 3, name
        assert cluster.status(name)["observedGeneration"] == 1
    # Jobs that kept running got no second "Running" event from the restarted operator.
    for name in names[5:10]:
        assert sum(e["reason"] == "Running" for e in cluster.events(name)) == running_events[name]


async def test_rayjob_deleted_while_the_operator_was_down(cluster: Cluster) -> None:
    operator = OperatorRunner()
    await operator.start()
    await cluster.create_rljob(small_rljob("gone-0"))
    await cluster.create_rljob(small_rljob("gone-1", runPolicy={"backoffLimit": 1}))
    for name in ("gone-0", "gone-1"):
        await cluster.wait("RayJob", lambda n=name: cluster.rayjob(n))
        await cluster.set_rayjob_status(
            name, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
        )
        await cluster.wait("Running", lambda n=name: cluster.status(n).get("phase") == "Running")
    old_uid = cluster.rayjob("gone-1")["metadata"]["uid"]
    await operator.stop()
    for name in ("gone-0", "gone-1"):
        await cluster.delete(f"/apis/ray.io/v1/namespaces/{NS}/rayjobs/{name}")
    await operator.start()
    try:
        await cluster.wait(
            "gone-0 failed", lambda: cluster.status("gone-0").get("phase") == "Failed"
        )
        assert cluster.condition("gone-0", "Ready")["reason"] == "RayJobDeleted"
        assert cluster.rayjob("gone-0") is None
        new = await cluster.wait("gone-1 recreated", lambda: cluster.rayjob("gone-1"))
        assert new["metadata"]["uid"] != old_uid
        cond = await cluster.wait(
            "condition", lambda: cluster.condition("gone-1", "RayJobRecreated")
        )
        assert cond["status"] == "True"
    finally:
        await operator.stop()
