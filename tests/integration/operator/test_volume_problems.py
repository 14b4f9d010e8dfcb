"""Volume problems live in Events on the pod (the pod only says ContainerCreating): a
Multi-Attach or FailedMount Event becomes a condition on the RLJob, gone once the pod starts."""

from __future__ import annotations

import pytest

from tests.integration.operator.conftest import NS, Cluster, OperatorRunner, small_rljob

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
MULTI_ATTACH = (
    'Multi-Attach error for volume "pvc-7f3a" Volume is already used by pod(s) '
    "j-raycluster-x-head-abc"
)


def pod_event(pod: str, reason: str, message: str, kind: str = "Pod") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{pod}.", "namespace": NS},
        "involvedObject": {"kind": kind, "name": pod, "namespace": NS},
        "reason": reason,
        "message": message,
        "type": "Warning",
    }


async def test_a_multi_attach_stall_is_a_condition_until_the_pod_starts(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(small_rljob("vol"))
    await cluster.wait("RayJob", lambda: cluster.rayjob("vol"))
    await cluster.set_rayjob_status("vol", {"jobDeploymentStatus": "Initializing"})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "vol-worker-1",
            "namespace": NS,
            "labels": {"eureka.dev/rljob": "vol"},
        },
        "spec": {"containers": [{"name": "ray-worker", "image": "img"}]},
    }
    await cluster.request("post", f"/api/v1/namespaces/{NS}/pods", pod)
    # Events about other things are ignored: another pod, an RLJob, another reason.
    for event in (
        pod_event("someone-else", "FailedAttachVolume", MULTI_ATTACH),
        pod_event("vol-worker-1", "Scheduled", "assigned"),
    ):
        await cluster.request("post", f"/api/v1/namespaces/{NS}/events", event)
    await cluster.request(
        "post",
        f"/api/v1/namespaces/{NS}/events",
        pod_event("vol-worker-1", "FailedAttachVolume", MULTI_ATTACH),
    )
    cond = await cluster.wait(
        "VolumeMountFailed", lambda: cluster.condition("vol", "VolumeMountFailed")
    )
    assert cond["reason"] == "FailedAttachVolume" and "ReadWriteMany" in cond["message"]
    assert "vol-worker-1" in cond["message"] and "pvc-7f3a" in cond["message"]
    await cluster.wait(
        "a Warning Event on the RLJob",
        lambda: any(e["reason"] == "FailedAttachVolume" for e in cluster.events("vol")),
    )
    running = {"containerStatuses": [{"name": "ray-worker", "state": {"running": {}}}]}
    await cluster.request(
        "patch",
        f"/api/v1/namespaces/{NS}/pods/vol-worker-1/status",
        {"status": running},
        "application/merge-patch+json",
    )
    await cluster.wait("cleared", lambda: not cluster.condition("vol", "VolumeMountFailed"))
