"""Suspending a job Kueue manages: deactivate its Workload, as Kueue expects.

Kueue owns a queued RayJob's `suspend`: once it has admitted the job, it unsuspends a RayJob that
anything else suspends (its job reconciler starts an admitted workload's job). A user's
`spec.runPolicy.suspend: true` on such a job therefore also sets the Workload's `spec.active` to
false: Kueue then evicts the workload, suspends the RayJob itself, releases its quota, and keeps it
suspended. Resuming sets `active` back to true; Kueue requeues the workload and unsuspends the
RayJob when it admits it again (the operator does not touch `suspend` then: it would jump the
queue). The Workload is found by the label Kueue puts on it, `kueue.x-k8s.io/job-uid`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from eureka_operator.kube import Kube

logger = logging.getLogger("eureka.operator")
KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"


def is_queued(rayjob: Mapping[str, Any]) -> bool:
    """The RayJob carries a Kueue queue label (Kueue manages its admission)."""
    return KUEUE_QUEUE in ((rayjob.get("metadata") or {}).get("labels") or {})


async def set_workloads_active(kube: Kube, namespace: str, rayjob_uid: str, active: bool) -> int:
    """Set `spec.active` on the Kueue Workloads of the RayJob; how many were changed."""
    workloads = await kube.list_objects("Workload", namespace, f"{JOB_UID_LABEL}={rayjob_uid}")
    changed = 0
    for workload in workloads:
        if (workload.get("spec") or {}).get("active", True) == active:
            continue
        name = str(workload["metadata"]["name"])
        await kube.patch("Workload", namespace, name, {"spec": {"active": active}})
        changed += 1
        logger.info("Workload %s/%s: active=%s", namespace, name, active)
    return changed
