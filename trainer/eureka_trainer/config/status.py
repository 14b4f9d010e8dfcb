"""The RLJob status: written by the operator (phase, conditions) and the trainer (progress, curves)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from eureka_trainer.config.base import ApiModel

Phase = Literal["Pending", "Initializing", "Running", "Succeeded", "Failed", "Suspended"]
MAX_CURVE_POINTS = 500
"""Upper bound of points per curve kept in the status (the object must stay small)."""


class Condition(ApiModel):
    """A Kubernetes-style condition."""

    type: str
    """Condition type, e.g. `Ready`, `InvalidSpec`, `GPUsUnschedulable`."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    reason: str = ""
    """CamelCase reason, machine-readable."""
    message: str = ""
    """What happened and what to do, for a human."""
    last_transition_time: str | None = None
    """When `status` last changed (RFC 3339)."""


class Progress(ApiModel):
    """How far training is."""

    step: int = 0
    """Steps completed."""
    total_steps: int | None = None
    """Steps planned."""
    epoch: int = 0
    """Current pass over the data."""
    samples_seen: int = 0
    """Responses generated and scored so far."""
    last_checkpoint_step: int | None = None
    """Step of the newest complete checkpoint."""
    heartbeat_time: str | None = None
    """When the trainer last showed it is alive (RFC 3339), refreshed every 30-60 s while it
    runs: an old heartbeat on a Running job means the trainer died without reporting."""


class Curve(ApiModel):
    """One metric over steps, downsampled to at most 500 points."""

    steps: list[int] = Field(default_factory=list)
    """Step of each point."""
    values: list[float] = Field(default_factory=list)
    """Value of each point."""


class Sample(ApiModel):
    """One generated response with its rewards (text truncated)."""

    step: int
    """Step it was generated at."""
    prompt: str = ""
    """The prompt (truncated)."""
    response: str = ""
    """The response (truncated)."""
    answer: str = ""
    """The gold answer."""
    rewards: dict[str, float] = Field(default_factory=dict)
    """Reward components and total."""
    image: str | None = None
    """The prompt's first image as a small JPEG `data:` URI (run directories only; the RLJob
    status leaves it out)."""


class RLJobStatus(ApiModel):
    """Observed state of an RLJob."""

    phase: Phase = "Pending"
    """Pending, Initializing, Running, Succeeded, Failed or Suspended."""
    conditions: list[Condition] = Field(default_factory=list)
    """Latest observations, one per type."""
    observed_generation: int | None = None
    """The spec generation the operator last acted on."""
    ray_job_name: str | None = None
    """Name of the RayJob that runs the job."""
    dashboard_url: str | None = None
    """Ray dashboard of the job's cluster."""
    start_time: str | None = None
    """When the job started running (RFC 3339)."""
    completion_time: str | None = None
    """When the job finished (RFC 3339)."""
    progress: Progress = Field(default_factory=Progress)
    """Steps, epochs and samples."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Latest value of every metric."""
    curves: dict[str, Curve] = Field(default_factory=dict)
    """Metric history, bounded to 500 points per series."""
    recent_samples: list[Sample] = Field(default_factory=list)
    """A few recent responses."""
