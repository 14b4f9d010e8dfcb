"""The local backend: run directories written by `eureka run`, read-only.

`--runs DIR` names one run directory or a folder of them. Each run is the job `local/<dir name>`
and holds `rljob.yaml`, `metrics.jsonl`, `samples.jsonl`, `status.json` and `checkpoints/`.
Files are followed incrementally (see `jsonl.py`), so a run still being written is shown live
and a half-written last line never breaks a request.

Writes are refused with 405: a local run is started with `eureka run`, which owns its process;
the service never launches training itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eureka_service.backend import (
    JobDetail,
    JobSummary,
    Metrics,
    NotFound,
    ReadOnly,
    Samples,
    Series,
    detail_status,
    summary_of,
)
from eureka_service.jsonl import JsonlTail, Record
from eureka_service.reflection import ReflectionRate

log = logging.getLogger(__name__)

NAMESPACE = "local"
RUN_FILES = ("rljob.yaml", "metrics.jsonl", "status.json")
"""A directory holding any of these is a run directory."""
KEPT_SAMPLES = 1000
"""Newest samples kept in memory per run (browsed by step and kind on the job page)."""
READ_ONLY = (
    "the local backend is read-only: start a run with `eureka run RLJOB.yaml --output DIR` "
    "and stop it with Ctrl-C; submit, suspend and delete need the Kubernetes backend"
)


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in RUN_FILES)


def find_runs(root: Path) -> dict[str, Path]:
    """Run directories under `root` by name: `root` itself when it is one, else its children."""
    if is_run_dir(root):
        return {root.name: root}
    if not root.is_dir():
        return {}
    return {child.name: child for child in sorted(root.iterdir()) if is_run_dir(child)}


@dataclass
class RunState:
    """What the service knows of one run directory, updated incrementally."""

    path: Path
    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    nonfinite: dict[str, list[int]] = field(default_factory=dict)
    samples: deque[Record] = field(default_factory=lambda: deque(maxlen=KEPT_SAMPLES))
    reflection: ReflectionRate = field(default_factory=ReflectionRate)
    status: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    metrics_tail: JsonlTail = field(init=False)
    samples_tail: JsonlTail = field(init=False)

    def __post_init__(self) -> None:
        self.metrics_tail = JsonlTail(self.path / "metrics.jsonl", self._on_metrics, self._clear)
        self.samples_tail = JsonlTail(
            self.path / "samples.jsonl", self._on_sample, self._clear_samples
        )

    def refresh(self) -> None:
        """Read what the trainer appended since the last call."""
        with self.lock:
            self.metrics_tail.poll()
            self.samples_tail.poll()
            self.status = _read_status(self.path / "status.json", self.status)

    def _clear(self) -> None:
        self.series.clear()
        self.nonfinite.clear()

    def _on_metrics(self, record: Record) -> None:
        step = record.get("step")
        if not isinstance(step, int) or isinstance(step, bool):
            self.metrics_tail.bad_lines += 1
            return
        for key in record.get("nonfinite") or ():  # names the trainer saw as NaN/Inf this step
            if isinstance(key, str):
                self.nonfinite.setdefault(key, []).append(step)
        for key, value in record.items():
            if key == "step" or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if value != value or value in (float("inf"), float("-inf")):
                self.nonfinite.setdefault(key, []).append(step)  # JSON NaN/Infinity literals
                continue
            steps, values = self.series.setdefault(key, ([], []))
            steps.append(step)
            values.append(float(value))

    def _on_sample(self, record: Record) -> None:
        self.samples.append(record)
        self.reflection.add(record)

    def _clear_samples(self) -> None:
        self.samples.clear()
        self.reflection = ReflectionRate()

    def phase(self) -> str:
        phase = self.status.get("phase")
        if isinstance(phase, str) and phase:
            return phase
        return "Running" if self.series else "Pending"

    def last_update(self) -> str | None:
        """When the trainer last wrote a run file (the heartbeat of a local run)."""
        times = []
        for name in ("metrics.jsonl", "status.json"):
            try:
                times.append((self.path / name).stat().st_mtime)
            except OSError:
                continue
        if not times:
            return None
        return dt.datetime.fromtimestamp(max(times), dt.UTC).isoformat().replace("+00:00", "Z")

    def created(self) -> str:
        start = self.status.get("startTime")
        if isinstance(start, str) and start:
            return start
        mtime = self.path.stat().st_mtime
        return dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat().replace("+00:00", "Z")


def _read_status(path: Path, previous: dict[str, Any]) -> dict[str, Any]:
    """status.json, or the previous good copy while it is missing or half-written."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return previous
    except (OSError, ValueError) as err:
        log.warning("%s: unreadable (%s); keeping the previous status", path, err)
        return previous
    return data if isinstance(data, dict) else previous


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as err:
        log.warning("%s: unreadable (%s)", path, err)
        return {}
    return data if isinstance(data, dict) else {}


class LocalBackend:
    """`JobBackend` over run directories (namespace `local`, name = directory name)."""

    kind = "local"
    writable = False
    default_namespace = NAMESPACE

    def __init__(self, root: Path):
        self.root = root
        self._runs: dict[str, RunState] = {}

    async def start(self) -> None:
        if not self.root.exists():
            log.warning("%s does not exist yet; runs appear when it does", self.root)

    async def stop(self) -> None:
        self._runs.clear()

    def ready(self) -> bool:
        return True

    async def _state(self, name: str, found: dict[str, Path] | None = None) -> RunState:
        if found is None:
            found = await asyncio.to_thread(find_runs, self.root)
        if name not in found:
            raise NotFound(f"no run directory named {name!r} in {self.root}")
        state = self._runs.get(name)
        if state is None or state.path != found[name]:
            state = self._runs[name] = RunState(found[name])
        await asyncio.to_thread(state.refresh)
        return state

    def _check_namespace(self, namespace: str) -> None:
        if namespace != NAMESPACE:
            raise NotFound(f"the local backend has only the namespace {NAMESPACE!r}")

    async def list_jobs(self) -> list[JobSummary]:
        found = await asyncio.to_thread(find_runs, self.root)
        for gone in set(self._runs) - set(found):
            del self._runs[gone]
        rows = [self._summary(await self._state(name, found)) for name in found]
        return sorted(rows, key=lambda row: row.created or "", reverse=True)

    def _summary(self, state: RunState) -> JobSummary:
        status = {**state.status, "phase": state.phase()}
        if not status.get("metrics") and state.series:  # before the first status.json
            status["metrics"] = {k: v[-1] for k, (_, v) in state.series.items()}
            status["progress"] = {"step": max(s[-1] for s, _ in state.series.values())}
        return summary_of(NAMESPACE, state.path.name, status, state.created(), state.last_update())

    async def get_job(self, namespace: str, name: str) -> JobDetail:
        self._check_namespace(namespace)
        state = await self._state(name)
        manifest = await asyncio.to_thread(_read_manifest, state.path / "rljob.yaml")
        spec = manifest.get("spec")
        status = {**state.status, "phase": state.phase()}
        conditions = status.get("conditions")
        return JobDetail(
            namespace=NAMESPACE,
            name=name,
            summary=self._summary(state),
            spec=spec if isinstance(spec, dict) else {},
            status=detail_status(status),
            conditions=conditions if isinstance(conditions, list) else [],
            events=[],
        )

    async def get_metrics(self, namespace: str, name: str) -> Metrics:
        self._check_namespace(namespace)
        state = await self._state(name)
        with state.lock:
            series = {
                k: Series(steps=list(s), values=list(v), nonfinite=state.nonfinite.get(k, []))
                for k, (s, v) in state.series.items()
            }
            for key, bad in state.nonfinite.items():
                series.setdefault(key, Series(steps=[], values=[], nonfinite=list(bad)))
            steps, rates = state.reflection.series()
        if steps and "reflection/rate" not in series:  # runs before the trainer logged the rate
            series["reflection/rate"] = Series(steps=steps, values=rates)
        return Metrics(series=dict(sorted(series.items())))

    async def get_samples(self, namespace: str, name: str) -> Samples:
        self._check_namespace(namespace)
        state = await self._state(name)
        with state.lock:
            return Samples(samples=list(reversed(state.samples)))

    async def create(self, job: dict[str, Any]) -> JobSummary:
        raise ReadOnly(READ_ONLY)

    async def set_suspend(self, namespace: str, name: str, suspend: bool) -> JobSummary:
        raise ReadOnly(READ_ONLY)

    async def delete(self, namespace: str, name: str) -> None:
        raise ReadOnly(READ_ONLY)
