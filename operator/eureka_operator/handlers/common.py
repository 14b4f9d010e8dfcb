"""State shared by the handlers, and `sync_status`: the one path by which status is written."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from eureka_operator import metrics
from eureka_operator.builder import JOB_LABEL
from eureka_operator.kube import Kube
from eureka_operator.lanes import Lanes
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
    arguments (`rayjob_idx=...`), which its callback Protocols cannot express."""
    return fn


logger = logging.getLogger("eureka.operator")


@dataclass
class State:
    """Per-process state: the API client, work lanes, per-job locks, the last status written."""

    kube: Kube
    # Creating a new job's RayJob goes first; children, status and Events follow (lanes.py).
    lanes: Lanes = field(default_factory=Lanes)
    locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    written: dict[Key, Obj] = field(default_factory=dict)
    # Jobs whose reconcile is in flight (it writes their status last), and those of them that a
    # RayJob or pod event changed meanwhile (the reconcile then reads the indexes and writes again).
    reconciling: Counter[Key] = field(default_factory=Counter)
    stale: set[Key] = field(default_factory=set)
    # What the handlers need of each RLJob (`rljob_entry`), as of its last event.
    rljobs: dict[Key, Obj] = field(default_factory=dict)
    # The spec generation of each job that this process reconciled; retries waiting to run.
    reconciled: dict[Key, Any] = field(default_factory=dict)
    retries: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    reconcile_locks: dict[Key, asyncio.Lock] = field(default_factory=dict)
    # The administrator's `--allow-remote-code` (see eureka_operator.policy).
    allow_remote_code: bool = False
    # Volume problems seen in Events (handlers/volumes.py): job -> pod -> problem.
    volume_problems: dict[Key, dict[str, PodProblem]] = field(default_factory=dict)
    # uids of RayJobs found gone by the audit (handlers/audit.py) while kopf's index, which
    # missed their deletion during a watch gap, still holds them.
    vanished: dict[Key, set[str]] = field(default_factory=dict)
    # kopf's RayJob and pod indexes (live views), kept from the first RLJob event for the audit.
    indexes: tuple[Any, Any] | None = None

    def lock(self, key: Key) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())

    def reconcile_lock(self, key: Key) -> asyncio.Lock:
        return self.reconcile_locks.setdefault(key, asyncio.Lock())

    def forget(self, key: Key) -> None:
        self.rljobs.pop(key, None)
        self.locks.pop(key, None)
        self.written.pop(key, None)
        self.stale.discard(key)
        self.reconciled.pop(key, None)
        self.reconcile_locks.pop(key, None)
        self.volume_problems.pop(key, None)
        self.vanished.pop(key, None)
        retry = self.retries.pop(key, None)
        if retry is not None:
            retry.cancel()

    def retry_later(self, key: Key, delay: float, call: Callable[[], Awaitable[None]]) -> None:
        """Run `call` in `delay` seconds (replacing a retry of `key` that is still waiting)."""
        waiting = self.retries.pop(key, None)
        if waiting is not None:
            waiting.cancel()

        async def later() -> None:
            await asyncio.sleep(delay)
            if self.retries.get(key) is task:
                del self.retries[key]  # running now: a new failure schedules the next retry
            await call()

        task = asyncio.get_running_loop().create_task(later(), name=f"retry {key}")
        self.retries[key] = task

    def leave_to_reconcile(self, key: Key) -> bool:
        """True when a reconcile of `key` is in flight: it will write the status from the newest
        indexes, so an event handler need not write one first (one status write per new job)."""
        if self.reconciling[key]:
            self.stale.add(key)
            return True
        return False

    @contextlib.contextmanager
    def reconciling_job(self, key: Key) -> Iterator[None]:
        """Marks `key` as being reconciled (see `leave_to_reconcile`)."""
        self.reconciling[key] += 1
        try:
            yield
        finally:
            self.reconciling[key] -= 1
            if not self.reconciling[key]:
                del self.reconciling[key]


async def sync_from_indexes(
    state: State, key: Key, rayjobs: Mapping[Key, Any], pods: Mapping[Key, Any]
) -> None:
    """`sync_status` of a job from what the event handlers know now: its RLJob entry, the
    newest RayJob in the index and its pods' problems (no conditions or fields of its own)."""
    await sync_status(
        state,
        key,
        rljob=state.rljobs.get(key),
        rayjob=current_rayjob(state, rayjobs, key),
        problems=job_problems(pods, key),
    )


async def sync_latest(
    state: State,
    key: Key,
    rayjobs: Mapping[Key, Any],
    pods: Mapping[Key, Any],
    *,
    rljob: Mapping[str, Any],
    rayjob: Mapping[str, Any] | None = None,
    conditions: Mapping[str, CondUpdate | None] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """`sync_status` from the newest RayJob (`rayjob` until the index has one) and pod problems,
    again while an event handler left a change to this reconcile (`State.leave_to_reconcile`)."""
    while True:
        state.stale.discard(key)
        newest = current_rayjob(state, rayjobs, key) or rayjob
        await sync_status(
            state,
            key,
            rljob=rljob,
            rayjob=newest,
            problems=job_problems(pods, key),
            conditions=conditions,
            fields=fields,
        )
        if key not in state.stale:
            return


def unless_reconciling(
    type: str | None, namespace: str, labels: kopf.Labels, memo: Any, **_: Any
) -> bool:
    """kopf `when=` filter of the RayJob and pod event handlers: skip the call (before kopf builds
    it, which costs more than the call) while a reconcile of the job is in flight: that reconcile
    writes the status from the newest indexes. A deleted RayJob always gets its handler."""
    state = getattr(memo, "eureka", None)
    if type == "DELETED" or not isinstance(state, State) or JOB_LABEL not in labels:
        return True
    return not state.leave_to_reconcile((namespace, labels[JOB_LABEL]))


def state_of(memo: Any) -> State:
    state = getattr(memo, "eureka", None)
    if not isinstance(state, State):
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return state


def job_problems(pods: Mapping[Key, Any], key: Key) -> list[PodProblem]:
    """The problems of every pod of the job, from the pod index."""
    return [p for problems in (pods.get(key) or ()) for p in problems]


def current_rayjob(state: State, rayjobs: Mapping[Key, Any], key: Key) -> Any:
    """The job's RayJob from the index, skipping one the audit found gone (handlers/audit.py)."""
    gone = state.vanished.get(key, set())
    for item in rayjobs.get(key) or ():
        if (item.get("metadata") or {}).get("uid") not in gone:
            return item
    return None


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
        problems = [*problems, *state.volume_problems.get(key, {}).values()]
        observed = derive(rayjob, problems, spec_suspended=bool(rljob.get("suspend")))
        updates: dict[str, CondUpdate | None] = dict(observed.conditions)
        updates.update(conditions or {})
        phase, reason, message = observed.phase, observed.reason, observed.message
        failure = _failure(previous, updates) if rayjob is None else None
        if failure is not None:
            phase, (reason, message) = "Failed", failure
        elif rayjob is None and (refused := updates.get("CreateFailed")) is not None:
            reason, message = refused.reason, refused.message  # why there is no RayJob yet
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
