"""A periodic look at each running job's RayJob, for deletions no watch event reported.

kopf re-lists a kind after its watch stream breaks (an expired resourceVersion, a network gap),
but an object deleted during the gap never gets its DELETED event: kopf's RayJob index keeps it,
and the job would wait forever on a RayJob that is gone. Every `AUDIT_S` seconds, each RLJob this
process knows that has not finished and whose index still shows a RayJob GETs it; when the API
server no longer has it (or has another of the same name), the RLJob is read afresh and, if it
still names that RayJob and has not finished, the job takes the path of a deleted RayJob
(`rayjob_gone`: recreate within runPolicy.backoffLimit, else fail saying why), with the stale
index entry hidden from every handler (`State.vanished`). One GET per running job per interval.

A background task rather than a kopf timer: kopf puts a finalizer on every object with a timer,
and this operator deliberately adds none (deleting an RLJob never waits for the operator).
"""

from __future__ import annotations

import asyncio
import logging

import kopf

from eureka_operator.handlers.common import Key, Obj, State, current_rayjob
from eureka_operator.handlers.rayjob import rayjob_gone
from eureka_operator.status import TERMINAL_PHASES, PodProblem

logger = logging.getLogger("eureka.operator")
AUDIT_S = 300.0


async def audit_loop(state: State, interval: float) -> None:
    """Audit every known job every `interval` seconds, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        if state.indexes is None:
            continue  # no RLJob event yet: nothing known to audit
        rayjobs, pods = state.indexes
        for key in list(state.rljobs):
            try:
                await audit_job(state, key, rayjobs, pods)
            except Exception as err:  # the next round tries again
                logger.warning("audit of RLJob %s/%s: %s", *key, err)


async def audit_job(
    state: State,
    key: Key,
    rayjobs: kopf.Index[Key, Obj],
    pods: kopf.Index[Key, list[PodProblem]],
) -> bool:
    """Whether the job's RayJob was found gone (and handled as a deletion)."""
    rljob = state.rljobs.get(key)
    rayjob = current_rayjob(state, rayjobs, key)
    if rljob is None or rljob.get("deleting") or rayjob is None:
        return False
    if (state.written.get(key) or rljob.get("status") or {}).get("phase") in TERMINAL_PHASES:
        return False
    namespace, name = key
    meta = rayjob.get("metadata") or {}
    found = await state.kube.get("RayJob", namespace, str(meta.get("name")))
    if found is not None and (found.get("metadata") or {}).get("uid") == meta.get("uid"):
        return False
    # Read the RLJob afresh: this process's view may be stale (a standby replica).
    body = await state.kube.get("RLJob", namespace, name)
    status = (body or {}).get("status") or {}
    if (
        body is None
        or (body.get("metadata") or {}).get("deletionTimestamp")
        or status.get("phase") in TERMINAL_PHASES
        or status.get("rayJobName") != meta.get("name")
    ):
        return False
    from eureka_operator.handlers.rljob import rljob_entry  # cycle: rljob imports rayjob

    logger.warning("RLJob %s/%s: its RayJob %s is gone (missed deletion)", *key, meta.get("name"))
    state.vanished.setdefault(key, set()).add(str(meta.get("uid")))
    entry = state.rljobs[key] = rljob_entry(body)
    await rayjob_gone(state, key, entry, rayjobs, pods)
    return True
