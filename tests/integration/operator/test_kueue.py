"""Stopping a job Kueue has admitted. Kueue owns a queued RayJob's `suspend` (it unsuspends an
admitted job that anything else suspends), so the operator deactivates the job's Workload; the
test plays Kueue's part: it creates the Workload, admits the job, and checks what the operator
asks of Kueue."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.operator.conftest import NS, Cluster, OperatorRunner, small_rljob
from tests.integration.operator.emulator import WORKLOADS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
MERGE = "application/merge-patch+json"


def workload(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.emu.obj(WORKLOADS, NS, name) or {}


async def test_suspending_an_admitted_job_deactivates_its_workload(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    job = small_rljob("kq")
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "gpus"}
    await cluster.create_rljob(job)
    rayjob = await cluster.wait("RayJob", lambda: cluster.rayjob("kq"))
    uid = rayjob["metadata"]["uid"]
    rayjob_path = f"/apis/ray.io/v1/namespaces/{NS}/rayjobs/kq"
    # Kueue: suspend the new RayJob, make its Workload, admit it (unsuspend), KubeRay runs it.
    await cluster.request("patch", rayjob_path, {"spec": {"suspend": True}}, MERGE)
    for name, job_uid in (("rayjob-kq-1a2b3", uid), ("rayjob-other-9z9z9", "not-this-job")):
        await cluster.request(
            "post",
            f"/apis/kueue.x-k8s.io/v1beta1/namespaces/{NS}/workloads",
            {
                "apiVersion": "kueue.x-k8s.io/v1beta1",
                "kind": "Workload",
                "metadata": {"name": name, "labels": {"kueue.x-k8s.io/job-uid": job_uid}},
                "spec": {"active": True, "queueName": "gpus"},
            },
        )
    await cluster.request("patch", rayjob_path, {"spec": {"suspend": False}}, MERGE)
    await cluster.set_rayjob_status(
        "kq", {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}
    )
    await cluster.wait("Running", lambda: cluster.status("kq").get("phase") == "Running")

    await cluster.patch_rljob("kq", {"spec": {"runPolicy": {"suspend": True}}})
    await cluster.wait(
        "Workload deactivated",
        lambda: workload(cluster, "rayjob-kq-1a2b3")["spec"]["active"] is False,
    )
    assert workload(cluster, "rayjob-other-9z9z9")["spec"]["active"] is True  # not this job's
    assert cluster.rayjob("kq")["spec"]["suspend"] is True

    # Resume: the Workload is reactivated and requeued; the RayJob stays suspended until Kueue
    # admits it again (the operator must not unsuspend a queued job itself).
    await cluster.patch_rljob("kq", {"spec": {"runPolicy": {"suspend": False}}})
    await cluster.wait(
        "Workload reactivated",
        lambda: workload(cluster, "rayjob-kq-1a2b3")["spec"]["active"] is True,
    )
    assert cluster.rayjob("kq")["spec"]["suspend"] is True


async def test_a_job_without_a_queue_suspends_its_rayjob_directly(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(small_rljob("plain"))
    await cluster.wait("RayJob", lambda: cluster.rayjob("plain"))
    await cluster.patch_rljob("plain", {"spec": {"runPolicy": {"suspend": True}}})
    await cluster.wait("suspended", lambda: cluster.rayjob("plain")["spec"]["suspend"] is True)
    await cluster.patch_rljob("plain", {"spec": {"runPolicy": {"suspend": False}}})
    await cluster.wait("resumed", lambda: cluster.rayjob("plain")["spec"]["suspend"] is False)
    assert cluster.emu.objs(WORKLOADS, NS) == []
