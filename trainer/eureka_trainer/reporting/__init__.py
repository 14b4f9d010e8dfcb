"""Progress reporting: the StatusSink protocol and its implementations."""

from eureka_trainer.reporting.base import FinalPhase, StatusSink

__all__ = ["FinalPhase", "StatusSink"]
