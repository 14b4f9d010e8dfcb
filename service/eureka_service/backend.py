"""What the job service reads and writes, behind one interface for a cluster and for run folders.

`JobBackend` is implemented by `KubeBackend` (RLJobs through a watch-fed cache) and
`LocalBackend` (run directories written by `eureka run`). The REST API only talks to this
protocol, so both backends answer with the same shapes.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""DNS-1123 label: namespaces and RLJob names."""
NAME_RE = re.compile(NAME_PATTERN)


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class JobSummary(_Model):
    """One row of the job table."""

    namespace: str
    name: str
    phase: str = Field(description="Pending, Initializing, Running, Succeeded, Failed or Suspended")
    step: int = 0
    total_steps: int | None = None
    accuracy: float | None = Field(default=None, description="latest reward/accuracy")
    created: str | None = Field(default=None, description="creation time (RFC 3339)")
    age_seconds: float | None = None
    last_update: str | None = Field(
        default=None, description="when the trainer last reported (RFC 3339), where known"
    )
    stale: bool = Field(
        default=False,
        description="Running, but no report for longer than STALE_SECONDS: the trainer may be gone",
    )


class JobEvent(_Model):
    """A Kubernetes Event about the job."""

    type: str = "Normal"
    reason: str = ""
    message: str = ""
    count: int = 1
    last_timestamp: str | None = None


class JobDetail(_Model):
    """Everything the job page shows apart from curves and samples."""

    namespace: str
    name: str
    summary: JobSummary
    spec: dict[str, Any]
    status: dict[str, Any]
    conditions: list[dict[str, Any]]
    events: list[JobEvent]


class Series(_Model):
    """One metric over steps."""

    steps: list[int]
    values: list[float]
    nonfinite: list[int] = Field(
        default_factory=list, description="steps where the metric was NaN or infinite (no point)"
    )


class Metrics(_Model):
    """Every series of a job (`reflection/rate` is computed by the service from samples)."""

    series: dict[str, Series]


class Samples(_Model):
    """Recent responses, newest first."""

    samples: list[dict[str, Any]]
    steps: list[int] = Field(
        default_factory=list, description="steps with samples the service holds, newest first"
    )
    total: int = Field(default=0, description="samples matching the query before `limit`")


SampleKind = str
"""`correct` (accuracy reward > 0.5), `wrong` (otherwise) or `reflective` (see reflection.py)."""


def sample_kind_matches(sample: dict[str, Any], kind: SampleKind | None) -> bool:
    """Whether a sample record is of the kind asked for (None: any)."""
    from eureka_service.reflection import is_reflective

    if kind is None:
        return True
    if kind == "reflective":
        return is_reflective(str(sample.get("response", "")))
    rewards = sample.get("rewards") if isinstance(sample.get("rewards"), dict) else {}
    accuracy = rewards.get("accuracy") if rewards else None
    correct = isinstance(accuracy, int | float) and accuracy > 0.5
    return correct if kind == "correct" else not correct


def select_samples(all_samples: Samples, step: int | None, kind: str | None, limit: int) -> Samples:
    """Samples of one step and kind, newest first, at most `limit` (the steps list is complete)."""
    steps: list[int] = []
    for sample in all_samples.samples:
        value = sample.get("step")
        if isinstance(value, int) and value not in steps:
            steps.append(value)
    chosen = [
        s
        for s in all_samples.samples
        if (step is None or s.get("step") == step) and sample_kind_matches(s, kind)
    ]
    return Samples(samples=chosen[:limit], steps=sorted(steps, reverse=True), total=len(chosen))


class BackendError(Exception):
    """A request the backend refuses; `status` is the HTTP status to answer with."""

    status = 500

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotFound(BackendError):
    status = 404


class Conflict(BackendError):
    status = 409


class ReadOnly(BackendError):
    status = 405


class NotReady(BackendError):
    status = 503


class JobBackend(Protocol):
    """Where jobs come from and where writes go."""

    kind: str
    """`kubernetes` or `local`."""
    writable: bool
    """Whether create/suspend/resume/delete can work at all."""
    default_namespace: str
    """Namespace of a submitted RLJob that names none."""

    async def start(self) -> None:
        """Begin (e.g. start the watch); called once at service start."""

    async def stop(self) -> None:
        """Release connections and tasks."""

    def ready(self) -> bool:
        """Whether reads can be answered (e.g. the watch cache holds a first list)."""

    async def list_jobs(self) -> list[JobSummary]:
        """Every job, newest first."""

    async def get_job(self, namespace: str, name: str) -> JobDetail:
        """One job (`NotFound` when absent)."""

    async def get_metrics(self, namespace: str, name: str) -> Metrics:
        """Every series of one job."""

    async def get_samples(self, namespace: str, name: str) -> Samples:
        """Recent samples of one job, newest first."""

    async def create(self, job: dict[str, Any]) -> JobSummary:
        """Submit a validated RLJob (camelCase object)."""

    async def set_suspend(self, namespace: str, name: str, suspend: bool) -> JobSummary:
        """Suspend or resume a job."""

    async def delete(self, namespace: str, name: str) -> None:
        """Delete a job."""


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime (None when absent or malformed)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def age_seconds(created: dt.datetime | None, now: dt.datetime | None = None) -> float | None:
    """Seconds since `created`."""
    if created is None:
        return None
    return max(0.0, ((now or dt.datetime.now(dt.UTC)) - created).total_seconds())


STALE_SECONDS = 600.0
"""A Running job silent this long (or 10 step times, when longer) is shown as stale."""
DETAIL_ONLY_ELSEWHERE = ("curves", "recentSamples")
"""Status fields the job page reads from /metrics and /samples: left out of the job detail."""


def detail_status(status: dict[str, Any]) -> dict[str, Any]:
    """The status without what the detail does not need (curves were 500 KB a poll)."""
    return {k: v for k, v in status.items() if k not in DETAIL_ONLY_ELSEWHERE}


def is_stale(phase: str, last_update: str | None, step_seconds: float | None = None) -> bool:
    """Whether a Running job has not reported for too long."""
    updated = parse_time(last_update)
    if phase != "Running" or updated is None:
        return False
    limit = max(STALE_SECONDS, 10 * (step_seconds or 0.0))
    silent = age_seconds(updated)
    return silent is not None and silent > limit


def summary_of(
    namespace: str,
    name: str,
    status: dict[str, Any],
    created: str | None,
    last_update: str | None = None,
) -> JobSummary:
    """The table row of a job from its status (camelCase `RLJobStatus` JSON)."""
    progress = status.get("progress") or {}
    metrics = status.get("metrics") or {}
    accuracy = metrics.get("reward/accuracy")
    phase = str(status.get("phase") or "Pending")
    step_time = metrics.get("time/step")
    step_seconds = float(step_time) if isinstance(step_time, int | float) else None
    return JobSummary(
        namespace=namespace,
        name=name,
        phase=phase,
        step=int(progress.get("step") or 0),
        total_steps=progress.get("totalSteps"),
        accuracy=float(accuracy) if isinstance(accuracy, int | float) else None,
        created=created,
        age_seconds=age_seconds(parse_time(created)),
        last_update=last_update,
        stale=is_stale(phase, last_update, step_seconds),
    )
