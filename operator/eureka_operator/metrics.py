"""Prometheus metrics of the operator: jobs by phase, reconcile latency, errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry()
PHASES = ("Pending", "Initializing", "Running", "Succeeded", "Failed", "Suspended")

JOBS = Gauge(
    "eureka_rljobs", "RLJobs seen by this operator, by phase", ["phase"], registry=REGISTRY
)
RECONCILE_SECONDS = Histogram(
    "eureka_reconcile_seconds",
    "Time spent in one handler call",
    ["handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
RECONCILE_ERRORS = Counter(
    "eureka_reconcile_errors_total", "Handler calls that raised", ["handler"], registry=REGISTRY
)
RAYJOBS_CREATED = Counter(
    "eureka_rayjobs_created_total", "RayJobs created by this operator", registry=REGISTRY
)

_phases: dict[tuple[str, str], str] = {}
_server_started = False


def set_phase(namespace: str, name: str, phase: str | None) -> None:
    """Record a job's phase (None: the job is gone) and refresh the per-phase gauge."""
    key = (namespace, name)
    if phase is None:
        _phases.pop(key, None)
    else:
        _phases[key] = phase
    counts = dict.fromkeys(PHASES, 0)
    for value in _phases.values():
        counts[value] = counts.get(value, 0) + 1
    for value, count in counts.items():
        JOBS.labels(phase=value).set(count)


@contextmanager
def timed(handler: str) -> Iterator[None]:
    """Observe the duration of a handler call; count it as an error when it raises."""
    start = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILE_ERRORS.labels(handler=handler).inc()
        raise
    finally:
        RECONCILE_SECONDS.labels(handler=handler).observe(time.perf_counter() - start)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Expose /metrics on `port` (once per process; 0 disables)."""
    global _server_started
    if port and not _server_started:
        start_http_server(port, addr=addr, registry=REGISTRY)
        _server_started = True
