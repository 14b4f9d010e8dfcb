"""The operator (real kopf) against the API emulator: create, status, invalid spec, suspend, delete."""

from __future__ import annotations

import jsonschema
import pytest

from tests.integration.operator.conftest import (
    NS,
    Cluster,
    OperatorRunner,
    load_example,
    small_rljob,
)
from tests.integration.operator.emulator import crd_schema, kuberay_crd

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def test_create_makes_a_valid_rayjob_and_children(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(
        load_example("rljob.yaml") | {"metadata": {"name": "mm", "namespace": NS}}
    )
    rayjob = await cluster.wait("RayJob", lambda: cluster.rayjob("mm"))
    # KubeRay's own CRD schema (the emulator also enforces it on create: see the next test).
    kuberay = crd_schema(kuberay_crd("ray.io_rayjobs.yaml"), "v1")
    jsonschema.Draft4Validator(kuberay).validate({k: v for k, v in rayjob.items() if k != "status"})
    uid = cluster.rljob("mm")["metadata"]["uid"]
    assert rayjob["metadata"]["ownerReferences"][0]["uid"] == uid
    groups = {g["groupName"]: g for g in rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]}
    assert set(groups) == {"rollout", "learner"}
    limits = groups["rollout"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "8"
    # The RayJob comes first (what the user waits for); the other children right after it.
    support = (
        "v1/configmaps",
        "v1/serviceaccounts",
        "rbac.authorization.k8s.io/v1/roles",
        "rbac.authorization.k8s.io/v1/rolebindings",
    )
    await cluster.wait("children", lambda: all(cluster.emu.objs(r, NS) for r in support))
    for resource in support:
        (child,) = cluster.emu.objs(resource, NS)
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid
    await cluster.wait("Pending status", lambda: cluster.status("mm").get("phase") == "Pending")
    status = cluster.status("mm")
    assert status["rayJobName"] == "mm"
    assert status["observedGeneration"] == 1


async def test_the_emulator_refuses_objects_its_crd_schema_refuses(cluster: Cluster) -> None:
    path = f"/apis/ray.io/v1/namespaces/{NS}/rayjobs"
    bad = {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": "x"},
        "spec": {"rayClusterSpec": {"workerGroupSpecs": [{"groupName": "w"}]}},
    }
    async with cluster.emu.request("post", path, json=bad) as resp:
        assert resp.status == 422
        message = (await resp.json())["message"]
    assert message.startswith("RayJob is invalid: spec.rayClusterSpec") and "required" in message


async def test_rayjob_status_drives_phase_conditions_and_events(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(small_rljob("walk"))
    await cluster.wait("RayJob", lambda: cluster.rayjob("walk"))
    # The trainer writes its own fields; the operator must never clobber them.
    path = f"/apis/eureka.dev/v1alpha1/namespaces/{NS}/rljobs/walk/status"
    await cluster.request(
        "patch",
        path,
        {"status": {"progress": {"step": 7}, "metrics": {"reward": 0.5}}},
        "application/merge-patch+json",
    )
    steps = [
        ({"jobDeploymentStatus": "Initializing", "rayClusterName": "walk-abc"}, "Initializing"),
        ({"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, "Running"),
        (
            {
                "jobDeploymentStatus": "Complete",
                "jobStatus": "SUCCEEDED",
                "endTime": "2026-01-01T00:00:00Z",
            },
            "Succeeded",
        ),
    ]
    for rayjob_status, phase in steps:
        await cluster.set_rayjob_status("walk", rayjob_status)
        await cluster.wait(phase, lambda p=phase: cluster.status("walk").get("phase") == p)
    status = cluster.status("walk")
    assert status["progress"]["step"] == 7 and status["metrics"] == {"reward": 0.5}
    assert status["completionTime"] == "2026-01-01T00:00:00Z"
    assert cluster.condition("walk", "Ready")["status"] == "False"
    reasons = await cluster.wait(
        "transition events",
        lambda: (r := [e["reason"] for e in cluster.events("walk")]) and "Completed" in r and r,
    )
    assert {"RayClusterStarting", "Running", "Completed"} <= set(reasons)


async def test_failure_and_pod_problems_become_actionable_conditions(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(small_rljob("gpu"))
    await cluster.wait("RayJob", lambda: cluster.rayjob("gpu"))
    await cluster.set_rayjob_status("gpu", {"jobDeploymentStatus": "Initializing"})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "gpu-worker-x",
            "namespace": NS,
            "labels": {"eureka.dev/rljob": "gpu"},
        },
        "spec": {"containers": [{"name": "ray-worker", "image": "img"}]},
    }
    await cluster.request("post", f"/api/v1/namespaces/{NS}/pods", pod)
    unschedulable = {
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            }
        ]
    }
    await cluster.request(
        "patch",
        f"/api/v1/namespaces/{NS}/pods/gpu-worker-x/status",
        {"status": unschedulable},
        "application/merge-patch+json",
    )
    cond = await cluster.wait(
        "PodsUnschedulable", lambda: cluster.condition("gpu", "PodsUnschedulable")
    )
    assert cond["reason"] == "InsufficientGPU" and "gpus" in cond["message"]
    await cluster.wait(
        "warning event",
        lambda: any(e["reason"] == "InsufficientGPU" for e in cluster.events("gpu")),
    )
    await cluster.set_rayjob_status(
        "gpu",
        {
            "jobDeploymentStatus": "Failed",
            "reason": "DeadlineExceeded",
            "message": "deadline passed",
        },
    )
    await cluster.wait("Failed", lambda: cluster.status("gpu").get("phase") == "Failed")
    ready = cluster.condition("gpu", "Ready")
    assert ready["reason"] == "DeadlineExceeded" and "activeDeadlineSeconds" in ready["message"]
    assert not cluster.condition("gpu", "PodsUnschedulable")  # a finished job has no pod problems
    assert any(
        e["type"] == "Warning" and e["reason"] == "DeadlineExceeded" for e in cluster.events("gpu")
    )


async def test_invalid_spec_fails_with_field_paths_and_no_rayjob(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    bad = small_rljob("bad", algorithm={"estimator": "grpo", "samplesPerPrompt": 1})
    bad["spec"]["rollout"] = {"backend": "vllm"}  # vllm on a pool without GPUs
    await cluster.create_rljob(bad)
    await cluster.wait("Failed", lambda: cluster.status("bad").get("phase") == "Failed")
    cond = cluster.condition("bad", "InvalidSpec")
    assert cond["status"] == "True"
    assert "spec.algorithm.samplesPerPrompt" in cond["message"]
    await cluster.wait(
        "InvalidSpec event",
        lambda: any(e["reason"] == "InvalidSpec" for e in cluster.events("bad")),
    )
    assert cluster.rayjob("bad") is None
    # Fixing the spec starts the job.
    await cluster.patch_rljob("bad", {"spec": small_rljob("bad")["spec"]})
    await cluster.wait("RayJob after fix", lambda: cluster.rayjob("bad"))
    await cluster.wait("Pending", lambda: cluster.status("bad").get("phase") == "Pending")
    assert not cluster.condition("bad", "InvalidSpec")
    assert cluster.status("bad")["observedGeneration"] == 2


async def test_suspend_resume_and_refused_update(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(small_rljob("s"))
    await cluster.wait("RayJob", lambda: cluster.rayjob("s"))
    await cluster.set_rayjob_status("s", {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"})
    await cluster.wait("Running", lambda: cluster.status("s").get("phase") == "Running")
    # A learning-rate change while running is refused, and the user is told how to apply it.
    algorithm = small_rljob("s")["spec"]["algorithm"] | {"learningRate": 1e-6}
    await cluster.patch_rljob("s", {"spec": {"algorithm": algorithm}})
    cond = await cluster.wait("refusal", lambda: cluster.condition("s", "SpecChangeRefused"))
    assert "spec.algorithm.learningRate" in cond["message"] and "suspend" in cond["message"]
    cm = cluster.emu.obj("v1/configmaps", NS, "s-rljob")
    assert "learningRate: 1.0e-06" not in cm["data"]["rljob.yaml"]
    # Suspend: the RayJob is suspended, and while suspended the pending change applies.
    await cluster.patch_rljob("s", {"spec": {"runPolicy": {"suspend": True}}})
    await cluster.wait(
        "RayJob suspended", lambda: cluster.rayjob("s")["spec"].get("suspend") is True
    )
    await cluster.set_rayjob_status("s", {"jobDeploymentStatus": "Suspended"})
    await cluster.wait("Suspended", lambda: cluster.status("s").get("phase") == "Suspended")
    await cluster.patch_rljob("s", {"spec": {"rollout": {"backend": "hf", "temperature": 0.7}}})
    await cluster.wait("change applied", lambda: not cluster.condition("s", "SpecChangeRefused"))
    cm = cluster.emu.obj("v1/configmaps", NS, "s-rljob")
    assert (
        "learningRate: 1.0e-06" in cm["data"]["rljob.yaml"]
        and "temperature: 0.7" in cm["data"]["rljob.yaml"]
    )
    # Resume.
    await cluster.patch_rljob("s", {"spec": {"runPolicy": {"suspend": False}}})
    await cluster.wait(
        "RayJob resumed", lambda: cluster.rayjob("s")["spec"].get("suspend") is False
    )


async def test_kueue_owned_suspend_is_left_alone(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    job = small_rljob("q")
    job["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "gpus"}
    await cluster.create_rljob(job)
    rayjob = await cluster.wait("RayJob", lambda: cluster.rayjob("q"))
    assert rayjob["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpus"
    # Kueue suspends the RayJob until it admits it; an unrelated runPolicy change must not unsuspend it.
    path = f"/apis/ray.io/v1/namespaces/{NS}/rayjobs/q"
    await cluster.request(
        "patch", path, {"spec": {"suspend": True}}, "application/merge-patch+json"
    )
    await cluster.patch_rljob("q", {"spec": {"runPolicy": {"ttlSecondsAfterFinished": 60}}})
    await cluster.wait(
        "ttl applied", lambda: cluster.rayjob("q")["spec"]["ttlSecondsAfterFinished"] == 60
    )
    assert cluster.rayjob("q")["spec"]["suspend"] is True
    assert "managedBy" not in cluster.rayjob("q")["spec"]


async def test_delete_cascades_without_finalizers(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(small_rljob("d"))
    await cluster.wait("RayJob", lambda: cluster.rayjob("d"))
    assert not cluster.rljob("d")["metadata"].get("finalizers")
    await cluster.delete(f"/apis/eureka.dev/v1alpha1/namespaces/{NS}/rljobs/d")
    await cluster.wait(
        "children gone",
        lambda: not cluster.emu.objs("v1/configmaps", NS) and cluster.rayjob("d") is None,
    )
    assert cluster.rljob("d") is None


async def test_rayjob_deleted_behind_our_back(cluster: Cluster, operator: OperatorRunner) -> None:
    retry = small_rljob("retry", runPolicy={"backoffLimit": 1})
    await cluster.create_rljob(retry)
    first = await cluster.wait("RayJob", lambda: cluster.rayjob("retry"))
    await cluster.delete(f"/apis/ray.io/v1/namespaces/{NS}/rayjobs/retry")
    second = await cluster.wait(
        "recreated",
        lambda: (
            (r := cluster.rayjob("retry"))
            and r["metadata"]["uid"] != first["metadata"]["uid"]
            and r
        ),
    )
    assert second["spec"]["entrypoint"] == first["spec"]["entrypoint"]
    cond = await cluster.wait(
        "RayJobRecreated", lambda: cluster.condition("retry", "RayJobRecreated")
    )
    assert cond["status"] == "True" and "retry 1 of" in cond["message"]
    # No retries left: the job fails and says why.
    await cluster.delete(f"/apis/ray.io/v1/namespaces/{NS}/rayjobs/retry")
    await cluster.wait("Failed", lambda: cluster.status("retry").get("phase") == "Failed")
    assert "backoffLimit" in cluster.condition("retry", "Ready")["message"]
    assert cluster.rayjob("retry") is None


async def test_a_failed_reconcile_is_retried(cluster: Cluster, operator: OperatorRunner) -> None:
    # A ConfigMap of the same name owned by another RLJob (one still being deleted): the
    # reconcile refuses to adopt it, fails, and is retried until the ConfigMap is gone.
    stale = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "late-rljob",
            "namespace": NS,
            "ownerReferences": [
                {
                    "apiVersion": "eureka.dev/v1alpha1",
                    "kind": "RLJob",
                    "name": "late",
                    "uid": "gone",
                }
            ],
        },
        "data": {},
    }
    await cluster.request("post", f"/api/v1/namespaces/{NS}/configmaps", stale)
    await cluster.create_rljob(small_rljob("late"))
    await cluster.wait("RayJob", lambda: cluster.rayjob("late"))
    await cluster.wait(
        "a failed attempt",
        lambda: (
            sum(
                r.method == "POST" and r.resource is not None and r.resource.plural == "configmaps"
                for r in cluster.emu
            )
            >= 2
        ),
    )
    assert cluster.status("late").get("observedGeneration") is None  # nothing written yet
    await cluster.delete(f"/api/v1/namespaces/{NS}/configmaps/late-rljob")
    uid = cluster.rljob("late")["metadata"]["uid"]
    configmap = await cluster.wait(
        "retried", lambda: cluster.emu.obj("v1/configmaps", NS, "late-rljob"), timeout=20
    )
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == uid
    await cluster.wait(
        "status", lambda: cluster.status("late").get("observedGeneration") == 1, timeout=20
    )
    assert cluster.status("late")["phase"] == "Pending"
