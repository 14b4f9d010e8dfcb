"""Owned RayJobs and their pods -> the parent RLJob's status; a RayJob deleted behind our back."""

from __future__ import annotations

from typing import Any

import kopf

from eureka_operator import metrics
from eureka_operator.builder import JOB_LABEL, rayjob_name
from eureka_operator.handlers.common import (
    OWNED,
    PODS,
    RAYJOBS,
    Key,
    Obj,
    State,
    handler,
    job_problems,
    state_of,
    sync_from_indexes,
    sync_status,
    unless_reconciling,
)
from eureka_operator.status import TERMINAL_PHASES, CondUpdate, PodProblem, pod_problems

RECREATIONS = "eureka.dev/rayjob-recreations"


async def rayjob_idx(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Key, Obj]:
    """(namespace, RLJob name) -> the owned RayJob's name, owners, spec and status."""
    meta = body.get("metadata", {})
    entry = {
        "metadata": {
            "name": meta.get("name"),
            "uid": meta.get("uid"),
            "ownerReferences": meta.get("ownerReferences", []),
        },
        "spec": dict(body.get("spec", {})),
        "status": dict(body.get("status", {})),
    }
    return {(namespace, labels[JOB_LABEL]): entry}


async def pod_idx(
    namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[Key, list[PodProblem]] | None:
    """(namespace, RLJob name) -> the problems of each of its pods (pods without any: absent)."""
    problems = pod_problems(body)
    return {(namespace, labels[JOB_LABEL]): problems} if problems else None


async def on_rayjob_event(
    type: str | None,
    namespace: str,
    labels: kopf.Labels,
    memo: Any,
    rayjob_idx: kopf.Index[Key, Obj],
    pod_idx: kopf.Index[Key, list[PodProblem]],
    **_: Any,
) -> None:
    key = (namespace, labels[JOB_LABEL])
    state = state_of(memo)
    # Deferred: a burst of new RayJobs (an event each) must not delay the next RayJob's creation.
    with metrics.timed("rayjob"):
        async with state.lanes.deferred():
            # Read after the wait: the indexes hold the newest objects by now.
            if type == "DELETED":
                await rayjob_gone(state, key, state.rljobs.get(key), rayjob_idx, pod_idx)
                return
            await sync_from_indexes(state, key, rayjob_idx, pod_idx)


async def on_pod_event(
    namespace: str,
    labels: kopf.Labels,
    memo: Any,
    rayjob_idx: kopf.Index[Key, Obj],
    pod_idx: kopf.Index[Key, list[PodProblem]],
    **_: Any,
) -> None:
    key = (namespace, labels[JOB_LABEL])
    state = state_of(memo)
    with metrics.timed("pod"):
        async with state.lanes.deferred():
            await sync_from_indexes(state, key, rayjob_idx, pod_idx)


async def rayjob_gone(
    state: State,
    key: Key,
    rljob: Obj | None,
    rayjobs: kopf.Index[Key, Obj],
    pods: kopf.Index[Key, list[PodProblem]],
) -> None:
    """Recreate the RayJob (runPolicy.backoffLimit allows) or fail the job, saying why."""
    if rljob is None or rljob.get("deleting"):
        return  # the RLJob is going away: this is garbage collection at work
    phase = (state.written.get(key) or rljob.get("status") or {}).get("phase")
    if phase in TERMINAL_PHASES:
        return  # finished jobs keep their final status; nothing to run again
    namespace, name = key
    # The count of recreations so far, read afresh: the RLJob event carrying the previous
    # recreation's annotation may not have arrived yet (a RayJob deleted twice in a row).
    body = await state.kube.get("RLJob", namespace, name)
    if body is None:
        return
    used = int(((body.get("metadata") or {}).get("annotations") or {}).get(RECREATIONS, "0") or 0)
    limit = int(rljob.get("backoffLimit") or 0)
    if used < limit:
        annotations = {"metadata": {"annotations": {RECREATIONS: str(used + 1)}}}
        await state.kube.patch("RLJob", namespace, name, annotations)
        from eureka_operator.handlers.rljob import ensure_children  # cycle: rljob imports this

        message = (
            f"the RayJob {rayjob_name(name)} was deleted while the job was {phase or 'starting'}; "
            f"recreated it (retry {used + 1} of spec.runPolicy.backoffLimit={limit})."
        )
        recreated = {"RayJobRecreated": CondUpdate("True", "RayJobDeleted", message)}
        await ensure_children(state, body, rljob, rayjobs, pods, recreated)
        return
    message = (
        f"the RayJob {rayjob_name(name)} was deleted while the job was {phase or 'starting'}. Raise "
        "spec.runPolicy.backoffLimit to have it recreated, or delete and re-apply the RLJob."
    )
    deleted = {"RayJobRecreated": CondUpdate("False", "RayJobDeleted", message)}
    await sync_status(
        state, key, rljob=rljob, rayjob=None, problems=job_problems(pods, key), conditions=deleted
    )


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.index(RAYJOBS, labels=OWNED, registry=registry)(handler(rayjob_idx))
    kopf.index(PODS, labels=OWNED, registry=registry)(handler(pod_idx))
    for resource, fn in ((RAYJOBS, on_rayjob_event), (PODS, on_pod_event)):
        kopf.on.event(resource, labels=OWNED, when=handler(unless_reconciling), registry=registry)(
            handler(fn)
        )
