"""What a spec change may do to a job that has a RayJob."""

from __future__ import annotations

from typing import Any

from eureka_operator.updates import changed_paths, plan_update, refusal_message


def test_changed_paths_are_dotted_yaml_paths() -> None:
    old = {"a": {"b": 1, "c": [1]}, "d": 1}
    new = {"a": {"b": 2, "c": [1, 2]}, "e": 1}
    assert changed_paths(old, new) == ["a.b", "a.c", "d", "e"]
    assert changed_paths(old, old) == []


SPEC = {
    "algorithm": {"learningRate": 1e-6},
    "runPolicy": {"suspend": False, "ttlSecondsAfterFinished": 10},
}
DESIRED = {
    "spec": {
        "entrypoint": "e",
        "rayClusterSpec": {"x": 2},
        "ttlSecondsAfterFinished": 20,
        "suspend": False,
    }
}


def rj(deployment: str, suspend: bool = False) -> dict[str, Any]:
    return {
        "spec": {
            "entrypoint": "e",
            "rayClusterSpec": {"x": 1},
            "ttlSecondsAfterFinished": 10,
            "suspend": suspend,
            "activeDeadlineSeconds": 5,
        },
        "status": {"jobDeploymentStatus": deployment},
    }


def test_run_policy_changes_apply_live() -> None:
    wanted = {**SPEC, "runPolicy": {"suspend": False, "ttlSecondsAfterFinished": 20}}
    plan = plan_update(SPEC, wanted, rj("Running"), DESIRED)
    assert not plan.refused and plan.applied_spec == wanted
    ops = {op["path"]: op for op in plan.rayjob_patch}
    assert ops["/spec/ttlSecondsAfterFinished"]["value"] == 20
    assert ops["/spec/activeDeadlineSeconds"]["op"] == "remove"  # unset in the spec now
    assert "/spec/suspend" not in ops and "/spec/rayClusterSpec" not in ops


def test_suspend_is_only_touched_when_toggled() -> None:
    wanted = {**SPEC, "runPolicy": {"suspend": True, "ttlSecondsAfterFinished": 10}}
    plan = plan_update(SPEC, wanted, rj("Running"), DESIRED)
    assert {"op": "add", "path": "/spec/suspend", "value": True} in plan.rayjob_patch


def test_other_changes_are_refused_while_running_and_applied_while_suspended() -> None:
    wanted = {**SPEC, "algorithm": {"learningRate": 3e-6}}
    refused = plan_update(SPEC, wanted, rj("Running"), DESIRED)
    assert refused.refused == ["spec.algorithm.learningRate"] and refused.reason == "JobRunning"
    assert refused.applied_spec == SPEC
    assert "spec.algorithm.learningRate" in refusal_message(refused)
    applied = plan_update(SPEC, wanted, rj("Suspended", suspend=True), DESIRED)
    assert not applied.refused and applied.applied_spec == wanted
    assert {"op": "add", "path": "/spec/rayClusterSpec", "value": {"x": 2}} in applied.rayjob_patch
    finished = plan_update(SPEC, wanted, rj("Complete"), DESIRED)
    assert finished.reason == "JobFinished" and "re-apply" in refusal_message(finished)


def test_a_queued_job_is_resumed_by_kueue_not_by_the_operator() -> None:
    queued = {**DESIRED, "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "gpus"}}}
    suspended = {**SPEC, "runPolicy": {"suspend": True, "ttlSecondsAfterFinished": 10}}
    stop = plan_update(SPEC, suspended, rj("Running"), queued)
    assert {"op": "add", "path": "/spec/suspend", "value": True} in stop.rayjob_patch
    resume = plan_update(suspended, SPEC, rj("Suspended", suspend=True), queued)
    assert not [op for op in resume.rayjob_patch if op["path"] == "/spec/suspend"]
    plain = plan_update(suspended, SPEC, rj("Suspended", suspend=True), DESIRED)
    assert {"op": "add", "path": "/spec/suspend", "value": False} in plain.rayjob_patch
