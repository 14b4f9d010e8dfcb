"""A local backend that accepts submissions (in memory), to reach the parse path of POST /api/jobs.

The real writable backend is the Kubernetes one (tests/integration/service/test_api_kube.py);
this one keeps what the API hands it so a test can check what would have been created.
"""

from __future__ import annotations

from typing import Any

from eureka_service.backend import JobSummary
from eureka_service.local import LocalBackend


class RecordingBackend(LocalBackend):
    writable = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.created: list[dict[str, Any]] = []

    async def create(self, job: dict[str, Any]) -> JobSummary:
        self.created.append(job)
        meta = job["metadata"]
        return JobSummary(namespace=meta["namespace"], name=meta["name"], phase="Pending")
