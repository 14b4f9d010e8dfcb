"""RLJob events: validate the spec, create or update the children, set the status."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from eureka_operator import metrics
from eureka_operator.builder import (
    SPEC_KEY,
    applied_spec,
    build_rayjob_for,
    build_support,
    dump_spec,
    spec_document,
)
from eureka_operator.handlers.common import (
    RLJOBS,
    Key,
    Obj,
    State,
    current_rayjob,
    first,
    handler,
    may_create,
    state_of,
    sync_latest,
)
from eureka_operator.handlers.kueue import is_queued, set_workloads_active
from eureka_operator.handlers.rayjob import rayjob_gone
from eureka_operator.kube import CreateRefused, NotFound
from eureka_operator.policy import enforce_policy
from eureka_operator.status import CondUpdate, PodProblem
from eureka_operator.updates import plan_update, refusal_message
from eureka_trainer.config import RLJob, RLJobError, validate_rljob

logger = logging.getLogger("eureka.operator")
RETRY_S = 5.0  # after a failed reconcile (an API error...), unless it asked for another delay


def rljob_entry(body: Mapping[str, Any]) -> Obj:
    """What the handlers need of an RLJob between its events (kept in `State.rljobs`)."""
    meta = body.get("metadata") or {}
    run_policy = (body.get("spec") or {}).get("runPolicy") or {}
    return {
        "uid": meta.get("uid"),
        "generation": meta.get("generation"),
        "annotations": dict(meta.get("annotations") or {}),
        "deleting": bool(meta.get("deletionTimestamp")),
        "suspend": bool(run_policy.get("suspend", False)),
        "backoffLimit": run_policy.get("backoffLimit", 0),
        "status": dict(body.get("status") or {}),
    }


async def on_rljob_event(
    type: str | None,
    body: kopf.Body,
    namespace: str,
    name: str,
    memo: Any,
    rayjob_idx: kopf.Index[Key, Obj],
    pod_idx: kopf.Index[Key, list[PodProblem]],
    **_: Any,
) -> None:
    """Every RLJob event: reconcile a spec this process has not reconciled yet.

    Level-triggered, like a controller-runtime reconciler: a new RLJob, a spec change (a new
    `generation`) and the first sight of every RLJob after a start all take the same path, and
    status or metadata changes (the trainer's progress, this operator's own writes) cost one
    comparison. kopf's change handlers would do the same work plus a diff-base annotation patch
    per change and its deep copies on every event; the children's names are deterministic and
    their creation is create-or-get, so the operator needs no memory of its own besides the
    ConfigMap (the applied spec) and the status.
    """
    key = (namespace, name)
    state = state_of(memo)
    if state.indexes is None:
        state.indexes = (rayjob_idx, pod_idx)  # live views, for the audit (handlers/audit.py)
    if type == "DELETED":  # children go with owner references; only local state to drop
        state.forget(key)
        metrics.set_phase(namespace, name, None)
        return
    entry = state.rljobs[key] = rljob_entry(body)
    if entry["deleting"] or state.reconciled.get(key) == entry["generation"]:
        return
    await reconcile(state, dict(body), rayjob_idx, pod_idx)


async def reconcile(
    state: State,
    body: Obj,
    rayjobs: kopf.Index[Key, Obj],
    pods: kopf.Index[Key, list[PodProblem]],
) -> None:
    """Reconcile one RLJob; on failure, again after a delay (from the newest RLJob)."""
    entry = rljob_entry(body)
    key = (str(body["metadata"]["namespace"]), str(body["metadata"]["name"]))
    first_sight = key not in state.reconciled
    async with state.reconcile_lock(key):  # events and retries of one job, one at a time
        try:
            with metrics.timed("rljob"):
                rayjob = current_rayjob(state, rayjobs, key)
                if first_sight and rayjob is None and _had_rayjob(_status(state, key, entry)):
                    # Deleted while no operator was watching: the policy of a live deletion.
                    async with state.lanes.deferred():
                        await rayjob_gone(state, key, entry, rayjobs, pods)
                else:
                    await ensure_children(state, body, entry, rayjobs, pods)
        except kopf.PermanentError as err:
            logger.error("RLJob %s/%s: %s; not retried", *key, err)
            return
        except Exception as err:  # any other failure is retried, as kopf retries handlers
            delay = err.delay if isinstance(err, kopf.TemporaryError) and err.delay else RETRY_S
            logger.warning("RLJob %s/%s: %s; retrying in %ss", *key, err, delay)
            state.retry_later(key, delay, lambda: _retry(state, key, rayjobs, pods))
            return
    if key in state.rljobs:  # not deleted meanwhile (State.forget)
        state.reconciled[key] = entry["generation"]


async def _retry(
    state: State,
    key: Key,
    rayjobs: kopf.Index[Key, Obj],
    pods: kopf.Index[Key, list[PodProblem]],
) -> None:
    body = await state.kube.get("RLJob", *key)
    if body is None or state.reconciled.get(key) == (body.get("metadata") or {}).get("generation"):
        return  # deleted, or an event reconciled this generation meanwhile
    await reconcile(state, body, rayjobs, pods)


def _status(state: State, key: Key, entry: Obj) -> Obj:
    """The job's status as last written by this process, else as the RLJob carries it."""
    return state.written.get(key) or entry["status"]


def _had_rayjob(status: Mapping[str, Any]) -> bool:
    """The status says a RayJob ran for this job and the job has not finished."""
    return bool(status.get("rayJobName")) and status.get("phase") not in ("Succeeded", "Failed")


async def ensure_children(
    state: State,
    body: Mapping[str, Any],
    entry: Obj,
    rayjobs: kopf.Index[Key, Obj],
    pods: kopf.Index[Key, list[PodProblem]],
    conditions: Mapping[str, CondUpdate | None] | None = None,
) -> None:
    """Create or get every child, apply a spec change, write the status.

    A missing RayJob is created first, in the urgent lane (lanes.py); the rest is deferred.
    RayJob and pod events that arrive meanwhile leave the status to this call, which reads the
    indexes when it writes (`sync_latest`): one status write per new job, never a stale one.
    """
    meta = body.get("metadata") or {}
    key = (str(meta.get("namespace")), str(meta.get("name")))
    with state.reconciling_job(key):
        await _ensure(state, key, body, entry, rayjobs, pods, dict(conditions or {}))


async def _ensure(
    state: State,
    key: Key,
    body: Mapping[str, Any],
    entry: Obj,
    rayjobs: kopf.Index[Key, Obj],
    pods: kopf.Index[Key, list[PodProblem]],
    conds: dict[str, CondUpdate | None],
) -> None:
    namespace, name = key
    rayjob = current_rayjob(state, rayjobs, key)
    fields: Obj = {"observedGeneration": entry["generation"]}
    try:
        job = _validate(body, namespace, name)
        enforce_policy(job, allow_remote_code=state.allow_remote_code)
    except RLJobError as err:
        message = invalid_message(err, rayjob is not None)
        conds["InvalidSpec"] = CondUpdate("True", "InvalidSpec", message)
        job = None
    else:
        conds["InvalidSpec"] = None
    if job is None or (rayjob is None and not may_create(_status(state, key, entry))):
        # An invalid spec, or a finished job: no children to make, only the status to write.
        async with state.lanes.deferred():
            await sync_latest(
                state,
                key,
                rayjobs,
                pods,
                rljob=entry,
                conditions=conds if job is None else None,
                fields=fields,
            )
        return
    desired = build_rayjob_for(job, namespace, entry["uid"])
    try:
        if rayjob is None:
            async with state.lanes.urgent():
                rayjob, created = await state.kube.create_or_get(desired)
            if created:
                metrics.RAYJOBS_CREATED.inc()
        _check_owner(rayjob, entry["uid"])
        async with state.lanes.deferred():
            rayjob, refusal = await _ensure_support(state, job, entry, rayjob, desired)
    except CreateRefused as err:
        # Said on the RLJob (a condition and a Warning Event), not only in the operator's log;
        # retried slowly, since RBAC, a quota or a webhook must change first.
        conds["CreateFailed"] = create_failed(err)
        async with state.lanes.deferred():
            await sync_latest(
                state,
                key,
                rayjobs,
                pods,
                rljob=entry,
                rayjob=rayjob,
                conditions=conds,
                fields=fields,
            )
        raise kopf.TemporaryError(str(err), delay=CREATE_RETRY_S) from err
    conds.update(refusal)
    conds["CreateFailed"] = None
    fields["rayJobName"] = desired["metadata"]["name"]
    async with state.lanes.deferred():
        await sync_latest(
            state, key, rayjobs, pods, rljob=entry, rayjob=rayjob, conditions=conds, fields=fields
        )


# How soon a refused create is tried again (a user fixing RBAC or a quota should not wait long;
# a webhook refusing the same object every few seconds would flood the API server).
CREATE_RETRY_S = 30.0
_CREATE_HINTS: dict[str, str] = {
    "QuotaExceeded": "a ResourceQuota of the namespace is exhausted: free quota, raise it, or "
    "lower spec.resources; the operator retries.",
    "Forbidden": "the operator may not create it (check its RBAC: the chart's ClusterRole) or an "
    "admission policy forbade it; the operator retries.",
    "Invalid": "the API server or an admission webhook (KubeRay's, Kueue's, a policy engine's) "
    "refused it; if the message points at a field Eureka sets, please report it.",
    "NamespaceNotFound": "the namespace does not exist or is being deleted.",
    "CreateRejected": "the operator retries.",
}


def create_failed(err: CreateRefused) -> CondUpdate:
    """The `CreateFailed` condition of a refused create: which object, why, what to do."""
    text = err.message.lower()
    if err.status == 403 and "quota" in text:
        reason = "QuotaExceeded"
    elif err.status == 403:
        reason = "Forbidden"
    elif err.status in (400, 422):
        reason = "Invalid"
    elif err.status == 404:
        reason = "NamespaceNotFound"
    else:
        reason = "CreateRejected"
    message = f"creating {err.kind} {err.name} failed (HTTP {err.status}): {err.message}. "
    return CondUpdate("True", reason, message + _CREATE_HINTS[reason])


async def _ensure_support(
    state: State, job: RLJob, entry: Obj, rayjob: Obj, desired: Obj
) -> tuple[Obj, dict[str, CondUpdate | None]]:
    """Create or get the ConfigMap, ServiceAccount, Role and RoleBinding (concurrently), then
    apply what the update policy allows of a spec change: (the RayJob, SpecChangeRefused update).
    """
    namespace = str(desired["metadata"]["namespace"])
    support = build_support(job, namespace=namespace, uid=entry["uid"])
    results = await asyncio.gather(*(state.kube.create_or_get(obj) for obj in support))
    for obj, _ in results:
        _check_owner(obj, entry["uid"])
    configmap, configmap_created = results[0]
    applied = None if configmap_created else applied_spec(configmap)
    if applied is None:
        return rayjob, {}
    wanted = spec_document(job, namespace)["spec"]
    plan = plan_update(applied, wanted, rayjob, desired)
    if plan.rayjob_patch:
        rayjob = await state.kube.patch(
            "RayJob", namespace, desired["metadata"]["name"], plan.rayjob_patch
        )
    await _toggle_kueue_workload(state, applied, wanted, rayjob, desired)
    if plan.applied_spec != applied:
        doc = {**spec_document(job, namespace), "spec": plan.applied_spec}
        data = {"data": {SPEC_KEY: dump_spec(doc)}}
        await state.kube.patch("ConfigMap", namespace, configmap["metadata"]["name"], data)
    refused = CondUpdate("True", plan.reason, refusal_message(plan)) if plan.refused else None
    return rayjob, {"SpecChangeRefused": refused}


async def _toggle_kueue_workload(
    state: State, applied: Obj, wanted: Obj, rayjob: Obj, desired: Obj
) -> None:
    """Suspend / resume a queued job through its Kueue Workload (handlers/kueue.py)."""
    suspend = [bool((spec.get("runPolicy") or {}).get("suspend")) for spec in (applied, wanted)]
    uid = (rayjob.get("metadata") or {}).get("uid")
    if suspend[0] == suspend[1] or not is_queued(desired) or not uid:
        return
    namespace = str(desired["metadata"]["namespace"])
    try:
        await set_workloads_active(state.kube, namespace, str(uid), active=not suspend[1])
    except NotFound:  # Kueue is not installed: the RayJob's own suspend is all there is
        logger.info("no Kueue Workloads API; suspend of %s/%s left to the RayJob", namespace, uid)


def _validate(body: Mapping[str, Any], namespace: str, name: str) -> RLJob:
    doc = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
    return validate_rljob(doc, file=f"RLJob {namespace}/{name}")


def invalid_message(err: RLJobError, running: bool) -> str:
    """Every problem with its field path, and what happens to a running job."""
    listed = "; ".join(f"{p.path or '<document>'}: {p.message}" for p in err.problems)
    tail = " The running job keeps its previous spec." if running else ""
    return f"fix the spec: {listed}.{tail}"


def _check_owner(obj: Mapping[str, Any], uid: str | None) -> None:
    """A child owned by another RLJob (a deleted one of the same name) is not adopted: wait."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    if uid and not any(ref.get("uid") == uid for ref in refs):
        kind, name = obj.get("kind", "object"), (obj.get("metadata") or {}).get("name")
        raise kopf.TemporaryError(
            f"{kind} {name} exists but is not owned by this RLJob (a previous RLJob of the same "
            "name still being deleted?); retrying",
            delay=5,
        )


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(RLJOBS, registry=registry)(handler(on_rljob_event))


__all__ = ["ensure_children", "first", "invalid_message", "reconcile", "register", "rljob_entry"]
