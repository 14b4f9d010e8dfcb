"""Where the trainer's progress goes: the `StatusSink` protocol.

Implementations: the run directory (local `eureka run`), the RLJob status (in a cluster).
A sink must never stop training: it swallows and counts its own failures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from eureka_trainer.config.status import Progress, Sample

FinalPhase = Literal["Succeeded", "Failed"]


class StatusSink(Protocol):
    """Receives the trainer's progress, one call per step."""

    def started(self, total_steps: int | None, progress: Progress | None = None) -> None:
        """Training begins (after resume, when there was one: `progress` is the resumed
        position, so the status does not claim step 0 until the next step ends)."""

    def report(
        self, progress: Progress, metrics: Mapping[str, float], samples: Sequence[Sample]
    ) -> None:
        """One finished step: its progress, every metric of the step, a few samples."""

    def finished(self, phase: FinalPhase, message: str = "", reason: str = "") -> None:
        """Training ended; `message` says why when it failed, `reason` is the machine-readable
        CamelCase cause (`TrainerError`, `Interrupted`, `ResumeRefused`)."""
