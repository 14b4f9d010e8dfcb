"""RayJob + pod state -> one RLJob phase and conditions; the one helper that writes them.

`derive(...)` is pure: KubeRay's `jobDeploymentStatus` and `jobStatus`, the Ray cluster's state and
the problems seen on the job's pods become a phase (Pending, Initializing, Running, Succeeded,
Failed, Suspended) and conditions whose messages say what to do. `StatusWriter.write(...)` patches
only the operator's own status fields (the trainer owns progress, metrics, curves and samples) and
posts an Event on every phase transition and every new problem.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eureka_trainer.config import GROUP, RLJobStatus

Obj = dict[str, Any]

OPERATOR_FIELDS = (
    "phase",
    "conditions",
    "observedGeneration",
    "rayJobName",
    "dashboardUrl",
    "startTime",
    "completionTime",
)
"""The status fields the operator writes; every other status field belongs to the trainer."""

KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
# Condition types owned by the spec reconciler; status syncs from RayJob events keep them as is.
SPEC_CONDITIONS = ("InvalidSpec", "SpecChangeRefused", "RayJobRecreated")
PROBLEM_CONDITIONS = (
    "PodsUnschedulable",
    "ImagePullFailed",
    "CrashLooping",
    "PodConfigError",
    "OOMKilled",
    "PodEvicted",
    "VolumeMountFailed",
)


@dataclass(frozen=True)
class PodProblem:
    """One thing keeping a pod of the job from running, worded for the user."""

    condition: str
    reason: str
    message: str


@dataclass(frozen=True)
class CondUpdate:
    """A condition's new status, reason and message (`lastTransitionTime` is managed here)."""

    status: str
    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    """What the operator concluded about a job."""

    phase: str
    reason: str
    message: str
    conditions: dict[str, CondUpdate | None] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- pods ---------------------------------------------------------------------------------------

_IMAGE_PULL = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
_CRASH = frozenset({"CrashLoopBackOff"})
# The kubelet cannot build the container: a missing Secret / ConfigMap (or key) referenced by
# env, envFrom or a volume (kubelet's CreateContainerConfigError), or a runtime refusal.
_CONFIG = frozenset({"CreateContainerConfigError", "CreateContainerError"})


def pod_problems(pod: Mapping[str, Any]) -> list[PodProblem]:
    """Problems of one pod: unschedulable, image pull failures, crash loops, a missing Secret or
    ConfigMap, a container killed for memory, an eviction."""
    name = (pod.get("metadata") or {}).get("name", "?")
    status = pod.get("status") or {}
    problems: list[PodProblem] = []
    if status.get("phase") == "Failed" and status.get("reason") == "Evicted":
        problems.append(
            PodProblem(
                "PodEvicted",
                "Evicted",
                f"pod {name} was evicted: {status.get('message', 'no message')} Node pressure "
                "(memory, disk) or a higher-priority job; spec.resources.priorityClassName and "
                "realistic memory requests protect a job.",
            )
        )
    for cond in status.get("conditions") or []:
        scheduled = (cond.get("type"), cond.get("status"), cond.get("reason"))
        if scheduled == ("PodScheduled", "False", "Unschedulable"):
            problems.append(_unschedulable(name, str(cond.get("message", ""))))
    statuses = list(status.get("initContainerStatuses") or []) + list(
        status.get("containerStatuses") or []
    )
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason", "")
        if reason in _IMAGE_PULL:
            problems.append(_image_pull(name, cs, reason, str(waiting.get("message", ""))))
        elif reason in _CRASH:
            problems.append(_crash_loop(name, cs))
        elif reason in _CONFIG:
            problems.append(_config_error(name, cs, reason, str(waiting.get("message", ""))))
        if _oom_killed(cs):
            problems.append(_oom(name, cs, pod))
    return problems


def _oom_killed(cs: Mapping[str, Any]) -> bool:
    for state in ("state", "lastState"):
        if ((cs.get(state) or {}).get("terminated") or {}).get("reason") == "OOMKilled":
            return True
    return False


def _config_error(pod: str, cs: Mapping[str, Any], reason: str, detail: str) -> PodProblem:
    return PodProblem(
        "PodConfigError",
        reason,
        f"container {cs.get('name', '?')} of pod {pod} cannot start ({reason}: {detail}). Create "
        "the Secret or ConfigMap it names in the job's namespace (spec.model.hubTokenSecret, "
        "spec.logging.wandb.apiKeySecret, spec.resources.env / envFrom / volumes).",
    )


def _oom(pod: str, cs: Mapping[str, Any], body: Mapping[str, Any]) -> PodProblem:
    pool = ((body.get("metadata") or {}).get("labels") or {}).get(f"{GROUP}/pool", "?")
    return PodProblem(
        "OOMKilled",
        "OOMKilled",
        f"container {cs.get('name', '?')} of pod {pod} was killed for exceeding its memory "
        f"limit. Raise spec.resources.{pool}.memory (the {pool} pool), or lower the memory the "
        "job needs (learner.offload, rollout.gpuMemoryUtilization, micro batch size).",
    )


def _unschedulable(pod: str, detail: str) -> PodProblem:
    if "nvidia.com/gpu" in detail:
        return PodProblem(
            "PodsUnschedulable",
            "InsufficientGPU",
            f"pod {pod} cannot be scheduled: {detail} Free GPUs in the pool, lower "
            "spec.resources.<pool>.gpus or replicas, or check the pool's nodeSelector/tolerations.",
        )
    return PodProblem(
        "PodsUnschedulable",
        "Unschedulable",
        f"pod {pod} cannot be scheduled: {detail} Check the pool's cpu/memory, nodeSelector "
        "and tolerations in spec.resources.",
    )


def _image_pull(pod: str, cs: Mapping[str, Any], reason: str, detail: str) -> PodProblem:
    image = cs.get("image", "?")
    return PodProblem(
        "ImagePullFailed",
        reason,
        f"pod {pod} cannot pull image {image} ({reason}: {detail}). Check spec.resources.image "
        "and spec.resources.imagePullSecrets.",
    )


def _crash_loop(pod: str, cs: Mapping[str, Any]) -> PodProblem:
    last = ((cs.get("lastState") or {}).get("terminated")) or {}
    exit_code = last.get("exitCode", "?")
    why = last.get("message") or last.get("reason") or "no message"
    return PodProblem(
        "CrashLooping",
        "CrashLoopBackOff",
        f"container {cs.get('name', '?')} of pod {pod} keeps crashing (exit code {exit_code}: "
        f"{why}). See `kubectl logs {pod} --previous`.",
    )


# --- RayJob -> phase ----------------------------------------------------------------------------

# KubeRay's jobDeploymentStatus -> phase, for the states that need no look at jobStatus.
DEPLOYMENT_PHASES: dict[str, str] = {
    "": "Pending",
    "New": "Pending",
    "Initializing": "Initializing",
    "Waiting": "Initializing",
    "Retrying": "Initializing",
    "Suspending": "Suspended",
    "Suspended": "Suspended",
    "Failed": "Failed",
    "ValidationFailed": "Failed",
}
# While the deployment is Running, the Ray job's own status refines the phase.
RUNNING_JOB_PHASES: dict[str, str] = {"PENDING": "Initializing", "RUNNING": "Running"}

_FAILURE_HINTS: dict[str, str] = {
    "DeadlineExceeded": "the job ran past spec.runPolicy.activeDeadlineSeconds.",
    "PreRunningDeadlineExceeded": "the job did not start running within "
    "spec.runPolicy.preRunningDeadlineSeconds (GPUs not scheduled?).",
    "ValidationFailed": "KubeRay refused the RayJob; this is a bug in Eureka, please report it.",
    "AppFailed": "the trainer exited with an error; see the head pod's logs.",
    "SubmissionFailed": "the job could not be submitted to the Ray cluster.",
}


def rayjob_phase(rayjob: Mapping[str, Any]) -> str:
    """The RLJob phase a RayJob's status implies."""
    st = rayjob.get("status") or {}
    deployment = str(st.get("jobDeploymentStatus") or "")
    job_status = str(st.get("jobStatus") or "")
    if deployment == "Complete":
        return "Succeeded" if job_status == "SUCCEEDED" else "Failed"
    if deployment == "Running":
        return RUNNING_JOB_PHASES.get(job_status, "Running")
    if deployment in DEPLOYMENT_PHASES:
        return DEPLOYMENT_PHASES[deployment]
    # An unknown (newer) KubeRay state: say so rather than guess.
    return "Initializing"


def derive(
    rayjob: Mapping[str, Any] | None,
    problems: Sequence[PodProblem] = (),
    *,
    spec_suspended: bool = False,
) -> Observed:
    """Phase, reason, message and problem conditions from the RayJob and its pods."""
    if rayjob is None:
        phase = "Suspended" if spec_suspended else "Pending"
        return Observed(phase, "RayJobMissing", "waiting for the RayJob to be created")
    st = rayjob.get("status") or {}
    phase = rayjob_phase(rayjob)
    reason, message = _explain(phase, rayjob)
    if phase == "Suspended" and not spec_suspended:
        # Suspended by someone else, typically Kueue holding the job until its queue admits it.
        queue = ((rayjob.get("metadata") or {}).get("labels") or {}).get(KUEUE_QUEUE)
        where = f"queue {queue}" if queue else "its queue (or another controller)"
        phase, reason = "Pending", "Queued"
        message = f"the RayJob is held suspended by {where}; it starts when admitted."
    fields: dict[str, Any] = {"rayJobName": (rayjob.get("metadata") or {}).get("name")}
    if st.get("dashboardURL"):
        fields["dashboardUrl"] = f"http://{st['dashboardURL']}"
    if st.get("startTime"):
        fields["startTime"] = st["startTime"]
    if phase in TERMINAL_PHASES and st.get("endTime"):
        fields["completionTime"] = st["endTime"]
    conds: dict[str, CondUpdate | None] = {c: None for c in PROBLEM_CONDITIONS}
    if phase not in TERMINAL_PHASES and phase != "Suspended":
        for kind in PROBLEM_CONDITIONS:
            found = [p for p in problems if p.condition == kind]
            if found:
                more = f" (and {len(found) - 1} more pods)" if len(found) > 1 else ""
                conds[kind] = CondUpdate("True", found[0].reason, found[0].message + more)
    return Observed(phase, reason, message, conds, fields)


def _explain(phase: str, rayjob: Mapping[str, Any]) -> tuple[str, str]:
    st = rayjob.get("status") or {}
    name = (rayjob.get("metadata") or {}).get("name", "?")
    cluster = st.get("rayClusterName") or "(not yet created)"
    if phase == "Pending":
        return (
            "RayJobCreated",
            f"RayJob {name} created; waiting for KubeRay to start the Ray cluster.",
        )
    if phase == "Initializing":
        cs = st.get("rayClusterStatus") or {}
        ready, want = cs.get("readyWorkerReplicas", 0), cs.get("desiredWorkerReplicas", "?")
        state = f", cluster state {cs['state']}" if cs.get("state") else ""
        detail = f" {cs['reason']}" if cs.get("reason") else ""
        return (
            "RayClusterStarting",
            f"Ray cluster {cluster} is starting ({ready}/{want} workers ready{state}).{detail}",
        )
    if phase == "Running":
        return "Running", f"training runs on Ray cluster {cluster}."
    if phase == "Succeeded":
        return "Completed", "training finished."
    if phase == "Suspended":
        return "Suspended", (
            "the Ray cluster is released; set spec.runPolicy.suspend to false to resume "
            "(training continues from the newest checkpoint)."
        )
    reason = str(st.get("reason") or "RayJobFailed")
    detail = str(st.get("message") or "")
    hint = _FAILURE_HINTS.get(reason, "see `kubectl describe rayjob " + name + "`.")
    return reason, f"{detail} {hint}".strip()


# --- conditions ---------------------------------------------------------------------------------


def ready_condition(phase: str, reason: str, message: str) -> CondUpdate:
    return CondUpdate("True" if phase == "Running" else "False", reason, message)


def merge_conditions(
    previous: Sequence[Mapping[str, Any]], updates: Mapping[str, CondUpdate | None], now: str
) -> list[Obj]:
    """Apply updates by type (None removes); keep lastTransitionTime when status is unchanged."""
    result: dict[str, Obj] = {str(c.get("type")): dict(c) for c in previous if c.get("type")}
    for kind, update in updates.items():
        if update is None:
            result.pop(kind, None)
            continue
        old = result.get(kind)
        changed = old is None or old.get("status") != update.status
        result[kind] = {
            "type": kind,
            "status": update.status,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": now if changed or old is None else old.get("lastTransitionTime"),
        }
    return sorted(result.values(), key=lambda c: str(c["type"]))


# --- the one writer -----------------------------------------------------------------------------

Emit = Callable[[str, str, str], None]
"""(event type, reason, message) -> posts an Event on the RLJob."""
PatchStatus = Callable[[Obj], Awaitable[None]]
"""Merge-patches the RLJob's status subresource with {"status": {...}}."""


def operator_view(status: Mapping[str, Any] | None) -> Obj:
    """The operator's own fields of a status (the part `write` compares and replaces)."""
    status = status or {}
    return {k: status[k] for k in OPERATOR_FIELDS if k in status}


def build_status(
    previous: Mapping[str, Any] | None,
    *,
    phase: str,
    conditions: Mapping[str, CondUpdate | None],
    fields: Mapping[str, Any] | None = None,
    now: str | None = None,
) -> Obj:
    """The operator's status fields after applying phase, condition updates and fields."""
    now = now or now_rfc3339()
    prev = operator_view(previous)
    merged = merge_conditions(prev.get("conditions") or [], conditions, now)
    new: Obj = {**prev, **{k: v for k, v in (fields or {}).items() if v is not None}}
    new["phase"] = phase
    new["conditions"] = merged
    # Validate against the status model: a wrong field here would be pruned by the API server.
    model = RLJobStatus.model_validate({k: v for k, v in new.items() if k in OPERATOR_FIELDS})
    dumped = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return {k: dumped[k] for k in OPERATOR_FIELDS if k in dumped}


async def write_status(
    previous: Mapping[str, Any] | None,
    new: Obj,
    *,
    patch: PatchStatus,
    emit: Emit,
) -> bool:
    """Patch `new` (operator fields only) when it differs; Events for transitions. True if written."""
    prev = operator_view(previous)
    if _comparable(prev) == _comparable(new):
        return False
    await patch({"status": new})
    old_phase, phase = prev.get("phase"), new["phase"]
    ready = _condition(new, "Ready")
    if old_phase != phase:
        kind = "Warning" if phase == "Failed" else "Normal"
        reason = ready.get("reason") or phase
        emit(kind, reason, f"{old_phase or 'New'} -> {phase}: {ready.get('message', '')}".strip())
    for cond in new.get("conditions", []):
        was = _condition(prev, cond["type"])
        if cond["type"] != "Ready" and cond["status"] == "True" and was.get("status") != "True":
            emit("Warning", cond.get("reason") or cond["type"], cond.get("message", ""))
    return True


def _condition(status: Mapping[str, Any], kind: str) -> Obj:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def _comparable(status: Mapping[str, Any]) -> Obj:
    # lastTransitionTime alone never justifies a write.
    out = dict(status)
    out["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in status.get("conditions") or []
    ]
    return out


__all__ = [
    "OPERATOR_FIELDS",
    "CondUpdate",
    "Observed",
    "PodProblem",
    "build_status",
    "derive",
    "merge_conditions",
    "pod_problems",
    "rayjob_phase",
    "write_status",
]
