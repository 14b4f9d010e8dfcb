"""RayJob + pods -> phase and conditions; the one status writer."""

from __future__ import annotations

from typing import Any

import pytest

from eureka_operator import metrics
from eureka_operator.status import (
    OPERATOR_FIELDS,
    CondUpdate,
    build_status,
    derive,
    merge_conditions,
    pod_problems,
    rayjob_phase,
    write_status,
)


def rayjob(deployment: str = "", job: str = "", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "rj"},
        "status": {"jobDeploymentStatus": deployment, "jobStatus": job, **status},
    }


@pytest.mark.parametrize(
    ("deployment", "job", "phase"),
    [
        ("", "", "Pending"),
        ("New", "", "Pending"),
        ("Initializing", "", "Initializing"),
        ("Waiting", "", "Initializing"),
        ("Running", "PENDING", "Initializing"),
        ("Running", "RUNNING", "Running"),
        ("Complete", "SUCCEEDED", "Succeeded"),
        ("Complete", "FAILED", "Failed"),
        ("Complete", "STOPPED", "Failed"),
        ("Failed", "", "Failed"),
        ("ValidationFailed", "", "Failed"),
        ("Suspending", "", "Suspended"),
        ("Suspended", "", "Suspended"),
        ("Retrying", "", "Initializing"),
    ],
)
def test_rayjob_states_map_to_one_phase(deployment: str, job: str, phase: str) -> None:
    assert rayjob_phase(rayjob(deployment, job)) == phase


def test_a_rayjob_suspended_by_its_queue_is_pending_not_suspended() -> None:
    held = rayjob("Suspended") | {
        "metadata": {"name": "rj", "labels": {"kueue.x-k8s.io/queue-name": "gpus"}}
    }
    observed = derive(held, spec_suspended=False)
    assert (observed.phase, observed.reason) == ("Pending", "Queued") and "gpus" in observed.message
    assert derive(held, spec_suspended=True).phase == "Suspended"


def test_ray_cluster_state_is_reported_while_starting() -> None:
    cluster = {
        "readyWorkerReplicas": 1,
        "desiredWorkerReplicas": 2,
        "state": "pending",
        "reason": "quota",
    }
    observed = derive(rayjob("Initializing", rayClusterName="c1", rayClusterStatus=cluster))
    assert observed.reason == "RayClusterStarting"
    assert (
        "c1" in observed.message
        and "1/2 workers" in observed.message
        and "quota" in observed.message
    )


def test_failures_tell_the_user_what_to_do() -> None:
    observed = derive(rayjob("Failed", reason="DeadlineExceeded", message="too slow"))
    assert observed.phase == "Failed" and observed.reason == "DeadlineExceeded"
    assert "too slow" in observed.message and "activeDeadlineSeconds" in observed.message
    assert (
        derive(None).phase == "Pending" and derive(None, spec_suspended=True).phase == "Suspended"
    )


def pod(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "status": status}


def test_pod_problems_are_recognised() -> None:
    gpu = pod(
        {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/4 nodes: 4 Insufficient nvidia.com/gpu.",
                }
            ]
        }
    )
    pull = pod(
        {
            "containerStatuses": [
                {
                    "name": "c",
                    "image": "img:1",
                    "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}},
                }
            ]
        }
    )
    crash = pod(
        {
            "containerStatuses": [
                {
                    "name": "c",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                }
            ]
        }
    )
    assert [(p.condition, p.reason) for p in pod_problems(gpu)] == [
        ("PodsUnschedulable", "InsufficientGPU")
    ]
    assert (
        "imagePullSecrets" in pod_problems(pull)[0].message
        and "img:1" in pod_problems(pull)[0].message
    )
    assert "137" in pod_problems(crash)[0].message and "OOMKilled" in pod_problems(crash)[0].message
    assert [p.condition for p in pod_problems(crash)] == ["CrashLooping", "OOMKilled"]
    assert pod_problems(pod({"phase": "Running"})) == []
    observed = derive(rayjob("Initializing"), pod_problems(gpu) + pod_problems(pull))
    assert observed.conditions["PodsUnschedulable"] is not None
    assert observed.conditions["ImagePullFailed"] is not None
    assert observed.conditions["CrashLooping"] is None
    assert (
        derive(rayjob("Complete", "SUCCEEDED"), pod_problems(gpu)).conditions["PodsUnschedulable"]
        is None
    )


def test_conditions_keep_their_transition_time_until_status_changes() -> None:
    first = merge_conditions([], {"Ready": CondUpdate("False", "A", "a")}, "t1")
    same = merge_conditions(first, {"Ready": CondUpdate("False", "B", "b")}, "t2")
    flipped = merge_conditions(same, {"Ready": CondUpdate("True", "C", "c")}, "t3")
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["reason"] == "B"
    assert flipped[0]["lastTransitionTime"] == "t3"
    assert merge_conditions(flipped, {"Ready": None}, "t4") == []


async def test_writer_patches_only_operator_fields_and_emits_on_transitions() -> None:
    previous = {
        "phase": "Pending",
        "progress": {"step": 9},
        "curves": {"reward": {"steps": [1], "values": [0.1]}},
    }
    patches: list[dict[str, Any]] = []
    events: list[tuple[str, str, str]] = []

    async def patch(body: dict[str, Any]) -> None:
        patches.append(body)

    def emit(kind: str, reason: str, message: str) -> None:
        events.append((kind, reason, message))

    new = build_status(
        previous,
        phase="Running",
        conditions={"Ready": CondUpdate("True", "Running", "go")},
        fields={"observedGeneration": 2},
        now="t",
    )
    assert await write_status(previous, new, patch=patch, emit=emit)
    (body,) = patches
    assert set(body["status"]) <= set(OPERATOR_FIELDS)
    assert body["status"]["phase"] == "Running" and body["status"]["observedGeneration"] == 2
    assert events == [("Normal", "Running", "Pending -> Running: go")]
    # Same content again (only the time differs): no write, no event.
    again = build_status(
        new, phase="Running", conditions={"Ready": CondUpdate("True", "Running", "go")}, now="t2"
    )
    assert not await write_status(new, again, patch=patch, emit=emit)
    assert len(patches) == 1 and len(events) == 1
    # A new problem condition is a Warning event.
    worse = build_status(
        new,
        phase="Running",
        conditions={"CrashLooping": CondUpdate("True", "CrashLoopBackOff", "x")},
    )
    await write_status(new, worse, patch=patch, emit=emit)
    assert events[-1] == ("Warning", "CrashLoopBackOff", "x")


def test_build_status_refuses_fields_the_status_model_does_not_have() -> None:
    with pytest.raises(ValueError, match="phase"):
        build_status({}, phase="Exploded", conditions={})


def test_jobs_by_phase_gauge() -> None:
    # Relative to what is there: operators run in this process by other tests count their jobs.
    def value(phase: str) -> float:
        return metrics.REGISTRY.get_sample_value("eureka_rljobs", {"phase": phase}) or 0.0

    running, failed = value("Running"), value("Failed")
    metrics.set_phase("ns-gauge", "a", "Running")
    metrics.set_phase("ns-gauge", "b", "Running")
    metrics.set_phase("ns-gauge", "b", "Failed")
    metrics.set_phase("ns-gauge", "c", "Running")
    metrics.set_phase("ns-gauge", "c", None)
    assert value("Running") == running + 1
    assert value("Failed") == failed + 1
    metrics.set_phase("ns-gauge", "a", None)
    metrics.set_phase("ns-gauge", "b", None)


def test_a_missing_secret_an_oom_kill_and_an_eviction_are_problems() -> None:
    secret = pod(
        {
            "containerStatuses": [
                {
                    "name": "ray-worker",
                    "state": {
                        "waiting": {
                            "reason": "CreateContainerConfigError",
                            "message": 'secret "hf-token" not found',
                        }
                    },
                }
            ]
        }
    )
    oom = {
        "metadata": {"name": "w", "labels": {"eureka.dev/pool": "learner"}},
        "status": {
            "containerStatuses": [
                {"name": "ray-worker", "state": {"terminated": {"reason": "OOMKilled"}}}
            ]
        },
    }
    evicted = pod(
        {"phase": "Failed", "reason": "Evicted", "message": "The node was low on memory."}
    )
    (missing,) = pod_problems(secret)
    assert missing.condition == "PodConfigError" and 'secret "hf-token"' in missing.message
    assert "hubTokenSecret" in missing.message
    (killed,) = pod_problems(oom)
    assert killed.condition == "OOMKilled" and "spec.resources.learner.memory" in killed.message
    (gone,) = pod_problems(evicted)
    assert gone.condition == "PodEvicted" and "low on memory" in gone.message
    observed = derive(rayjob("Initializing"), [missing, killed, gone])
    for kind in ("PodConfigError", "OOMKilled", "PodEvicted"):
        cond = observed.conditions[kind]
        assert cond is not None and cond.status == "True"
