"""State shared by the handlers, and `sync_status`: the one path by which status is written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from eureka_operator import metrics
from eureka_operator.builder import JOB_LABEL
from eureka_operator.kube import Kube
from eureka_operator.status import (
    CondUpdate,
    PodProblem,
    build_status,
    derive,
    ready_condition,
    write_status,
)
from eureka_trainer.config import API_VERSION, KIND

Obj = dict[str, Any]
Key = tuple[str, str]

RLJOBS = "rljobs.v1alpha1.eureka.dev"
RAYJOBS = "rayjobs.v1.ray.io"
PODS = "pods.v1"
OWNED = {JOB_LABEL: kopf.PRESENT}


def handler(fn: Any) -> Any:
    """A handler as kopf's decorators accept it: kopf passes index contents as extra keyword
    arguments (`rljob_idx=...`), which its callback Protocols cannot express."""
    return fn


logger = logging.getLogger("eureka.operator")


@dataclass
class State:
    """Per-process state: the API client, per-job locks, the last status written per job."""

    kube: Kube
    # Reconciles in flight at once. Beyond it, jobs wait in arrival order (FIFO), so a burst of
    # new RLJobs gets its RayJobs first-come-first-served instead of all of them late.
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))
    locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    written: dict[Key, Obj] = field(default_factory=dict)

    def lock(self, key: Key) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    def forget(self, key: Key) -> None:
        self.locks.pop(key, None)
        self.written.pop(key, None)


def state_of(memo: Any) -> State:
    state = getattr(memo, "eureka", None)
    if not isinstance(state, State):
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return state


def first(store: Iterable[Any] | None) -> Any:
    for item in store or ():
        return item
    return None


def rljob_ref(namespace: str, name: str, uid: str | None) -> Obj:
    """Enough of the RLJob for kopf.event() to address an Event to it."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"namespace": namespace, "name": name, "uid": uid},
    }


async def sync_status(
    state: State,
    key: Key,
    *,
    rljob: Mapping[str, Any] | None,
    rayjob: Mapping[str, Any] | None,
    problems: Iterable[PodProblem] = (),
    conditions: Mapping[str, CondUpdate | None] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """Recompute the job's phase and conditions and write them when they changed.

    `rljob` is {"uid", "generation", "suspend", "status", "deleting"} as the index keeps it.
    `conditions` and `fields` come from the spec reconciler (InvalidSpec, observedGeneration...).
    """
    if rljob is None or rljob.get("deleting"):
        return
    namespace, name = key
    async with state.lock(key):
        previous = state.written.get(key) or rljob.get("status") or {}
        observed = derive(rayjob, list(problems), spec_suspended=bool(rljob.get("suspend")))
        updates: dict[str, CondUpdate | None] = dict(observed.conditions)
        updates.update(conditions or {})
        phase, reason, message = observed.phase, observed.reason, observed.message
        failure = _failure(previous, updates) if rayjob is None else None
        if failure is not None:
            phase, (reason, message) = "Failed", failure
        updates["Ready"] = ready_condition(phase, reason, message)
        new = build_status(
            previous, phase=phase, conditions=updates, fields={**observed.fields, **(fields or {})}
        )
        ref = rljob_ref(namespace, name, rljob.get("uid"))

        async def patch(body: Obj) -> None:
            await state.kube.patch("RLJob", namespace, name, body, subresource="status")

        def emit(kind: str, why: str, text: str) -> None:
            kopf.event(kopf.Body(cast(kopf.RawBody, ref)), type=kind, reason=why, message=text)

        await write_status(previous, new, patch=patch, emit=emit)
        state.written[key] = new
        metrics.set_phase(namespace, name, phase)


# (condition type, status) that fail a job which has no RayJob, with the failure's reason.
FAILING: dict[tuple[str, str], str] = {
    ("InvalidSpec", "True"): "InvalidSpec",
    ("RayJobRecreated", "False"): "RayJobDeleted",
}


def _failure(
    previous: Mapping[str, Any], updates: Mapping[str, CondUpdate | None]
) -> tuple[str, str] | None:
    """(reason, message) when a condition, after `updates`, means the job has failed."""
    current = {str(c.get("type")): c for c in previous.get("conditions") or []}
    for kind, update in updates.items():
        if update is None:
            current.pop(kind, None)
        else:
            current[kind] = {"status": update.status, "message": update.message}
    for (kind, status), reason in FAILING.items():
        cond = current.get(kind)
        if cond is not None and cond.get("status") == status:
            return reason, str(cond.get("message", ""))
    return None


def may_create(status: Mapping[str, Any]) -> bool:
    """A job that finished (other than on an invalid spec, now maybe fixed) is not started again."""
    if status.get("phase") not in ("Succeeded", "Failed"):
        return True
    conditions = status.get("conditions") or []
    ready: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    return ready.get("reason") == "InvalidSpec"
