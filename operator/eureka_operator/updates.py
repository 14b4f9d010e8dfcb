"""What a spec change may do to a job that already has a RayJob. Pure functions.

Policy (documented in docs/operator.md):
- `spec.runPolicy.*` always applies: deadlines, TTL and retries are patched into the RayJob;
  toggling `suspend` suspends or resumes the RayJob (and only a toggle touches the RayJob's
  `suspend`, so Kueue, which also drives that field, is never overridden).
- Every other change applies only while the RayJob is suspended or not yet started: KubeRay builds
  the next Ray cluster from the new spec and the trainer resumes from its newest checkpoint.
- Otherwise the change is refused: the running job keeps its spec, and the RLJob gets the
  condition `SpecChangeRefused` (and a Warning Event) naming the fields and the way out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

RUN_POLICY = "runPolicy"
RUN_POLICY_KEYS = (
    "shutdownAfterJobFinishes",
    "ttlSecondsAfterFinished",
    "backoffLimit",
    "activeDeadlineSeconds",
    "preRunningDeadlineSeconds",
)
CLUSTER_KEYS = ("entrypoint", "submitterPodTemplate", "rayClusterSpec")
NOT_STARTED = frozenset({"", "New"})
KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths (camelCase, as in the YAML) of every leaf that differs; lists compare whole."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        paths: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{prefix}.{key}" if prefix else str(key)
            paths += changed_paths(old.get(key), new.get(key), sub)
        return paths
    return [] if old == new else [prefix]


@dataclass(frozen=True)
class UpdatePlan:
    """The RayJob JSON patch to send, the spec the ConfigMap should hold, and what was refused."""

    rayjob_patch: list[Obj] = field(default_factory=list)
    applied_spec: Obj = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    reason: str = ""


def plan_update(
    applied: Obj, wanted: Obj, rayjob: Mapping[str, Any], desired_rayjob: Obj
) -> UpdatePlan:
    """How to move a job from the `applied` spec to the `wanted` spec.

    `rayjob` is the RayJob as it is, `desired_rayjob` as the builder makes it for `wanted`.
    """
    paths = changed_paths(applied, wanted)
    if not paths:
        return UpdatePlan(applied_spec=applied)
    current = rayjob.get("spec") or {}
    desired = desired_rayjob["spec"]
    ops = _replace_ops(current, desired, RUN_POLICY_KEYS)
    old_suspend = bool((applied.get(RUN_POLICY) or {}).get("suspend", False))
    new_suspend = bool((wanted.get(RUN_POLICY) or {}).get("suspend", False))
    queued = KUEUE_QUEUE in ((desired_rayjob.get("metadata") or {}).get("labels") or {})
    if old_suspend != new_suspend and (new_suspend or not queued):
        # A queued job is resumed by reactivating its Kueue Workload (handlers/kueue.py): Kueue
        # unsuspends the RayJob when it admits it again; unsuspending it here would jump the queue.
        ops.append({"op": "add", "path": "/spec/suspend", "value": new_suspend})
    others = [p for p in paths if not p.startswith(f"{RUN_POLICY}.")]
    if not others:
        return UpdatePlan(ops, wanted)
    deployment = str((rayjob.get("status") or {}).get("jobDeploymentStatus") or "")
    if current.get("suspend") is True or deployment in NOT_STARTED:
        return UpdatePlan(ops + _replace_ops(current, desired, CLUSTER_KEYS), wanted)
    reason = "JobFinished" if deployment in ("Complete", "Failed") else "JobRunning"
    keep = {**applied, RUN_POLICY: wanted.get(RUN_POLICY, {})}
    return UpdatePlan(ops, keep, [f"spec.{p}" for p in others], reason)


def refusal_message(plan: UpdatePlan) -> str:
    fields = ", ".join(plan.refused[:8]) + (" ..." if len(plan.refused) > 8 else "")
    if plan.reason == "JobFinished":
        return (
            f"not applied: {fields}. The job has finished; delete and re-apply the RLJob "
            "to train again with the new spec."
        )
    return (
        f"not applied while the job runs: {fields}. Suspend the job (spec.runPolicy.suspend: true) "
        "to apply them at the next start, or revert them; only spec.runPolicy changes apply live."
    )


def _replace_ops(
    current: Mapping[str, Any], desired: Mapping[str, Any], keys: tuple[str, ...]
) -> list[Obj]:
    ops: list[Obj] = []
    for key in keys:
        if key in desired and current.get(key) != desired[key]:
            ops.append({"op": "add", "path": f"/spec/{key}", "value": desired[key]})
        elif key not in desired and key in current:
            ops.append({"op": "remove", "path": f"/spec/{key}"})
    return ops
