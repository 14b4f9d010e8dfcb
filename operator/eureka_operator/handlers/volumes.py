"""Volume problems of a job's pods, seen only in Events: `FailedMount`, `FailedAttachVolume`
(`Multi-Attach error`: a ReadWriteOnce claim already attached to another node).

The kubelet and the attach-detach controller report these as Events on the pod; the pod itself
only stays `ContainerCreating`, so the pod watch cannot see them. The operator watches Events
about pods, keeps the newest volume problem of each of a job's pods until that pod's containers
start, and adds them to the job's status (condition `VolumeMountFailed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from eureka_operator.builder import JOB_LABEL
from eureka_operator.handlers.common import (
    OWNED,
    PODS,
    Key,
    Obj,
    first,
    handler,
    state_of,
    sync_from_indexes,
)
from eureka_operator.status import PodProblem

EVENTS = ("", "v1", "events")
VOLUME_REASONS = frozenset({"FailedMount", "FailedAttachVolume"})


def volume_problem(pod: str, reason: str, message: str) -> PodProblem:
    """The condition a volume Event on pod `pod` means, worded with what to do."""
    if "Multi-Attach" in message:
        hint = (
            "A ReadWriteOnce volume is attached to another node: the checkpoint volume "
            "(checkpoint.storage.claimName) is mounted by every pod and needs a ReadWriteMany "
            "claim; so does any volume in resources.volumes that pods on several nodes mount."
        )
    else:
        hint = (
            "Check the claims and sources in resources.volumes and checkpoint.storage "
            "(does the PVC exist and is it bound? does the Secret/ConfigMap exist?)."
        )
    return PodProblem("VolumeMountFailed", reason, f"pod {pod}: {message.strip()} {hint}")


async def pod_job_idx(
    namespace: str, name: str, labels: kopf.Labels, body: kopf.Body, memo: Any, **_: Any
) -> dict[Key, str]:
    """(namespace, pod name) -> its RLJob; a pod whose containers started has no volume problem."""
    job = labels[JOB_LABEL]
    statuses = (body.get("status") or {}).get("containerStatuses") or []
    if any("running" in (cs.get("state") or {}) for cs in statuses):
        state = getattr(memo, "eureka", None)
        if state is not None:
            state.volume_problems.get((namespace, job), {}).pop(name, None)
    return {(namespace, name): job}


def about_a_volume(body: kopf.Body, **_: Any) -> bool:
    """kopf `when=`: only volume Events about pods (every other Event costs one comparison)."""
    involved: Mapping[str, Any] = body.get("involvedObject") or {}
    return body.get("reason") in VOLUME_REASONS and involved.get("kind") == "Pod"


async def on_volume_event(
    body: kopf.Body,
    memo: Any,
    pod_job_idx: kopf.Index[Key, str],
    rayjob_idx: kopf.Index[Key, Obj],
    pod_idx: kopf.Index[Key, list[PodProblem]],
    **_: Any,
) -> None:
    involved = body.get("involvedObject") or {}
    namespace, pod = str(involved.get("namespace")), str(involved.get("name"))
    job = first(pod_job_idx.get((namespace, pod)))
    if job is None:
        return  # not a pod of an RLJob
    state = state_of(memo)
    key = (namespace, str(job))
    problem = volume_problem(pod, str(body.get("reason")), str(body.get("message") or ""))
    state.volume_problems.setdefault(key, {})[pod] = problem
    async with state.lanes.deferred():
        await sync_from_indexes(state, key, rayjob_idx, pod_idx)


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.index(PODS, labels=OWNED, registry=registry)(handler(pod_job_idx))
    kopf.on.event(*EVENTS, when=about_a_volume, registry=registry)(handler(on_volume_event))
