"""`StatusSink` into a run directory: what `eureka run` writes and `eureka serve --runs` reads.

Layout of a run directory:
- `metrics.jsonl`: one JSON object per step (`step` plus every metric of the step). JSON has
  no NaN or infinity: a non-finite metric is written as `null` and named, with its value as a
  string (`"NaN"`, `"Infinity"`, `"-Infinity"`), in the row's `nonfinite` object, e.g.
  `{"step": 3, "policy/loss": null, "nonfinite": {"policy/loss": "NaN"}}`. TensorBoard gets the
  value itself.
- `samples.jsonl`: a few `{step, prompt, response, answer, rewards}` records per step.
- `status.json`: the `RLJobStatus` (camelCase), rewritten atomically after a step at most once
  per `status_seconds` (and always after a checkpoint, the last step and the run's end), and every
  `heartbeat_seconds` while the run is alive (`progress.heartbeatTime`), so that a reader can
  tell a dead run (an old heartbeat, phase still Running) from a slow step. Its size grows with
  the curves: rewritten every step, it cost a 600-step run 10-12 ms a step by its end.
- `tensorboard/`: TensorBoard event files (when enabled).

A sink never stops training: a failed write is logged and counted in `failures`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eureka_trainer.config.status import Progress, RLJobStatus, Sample
from eureka_trainer.reporting.base import FinalPhase
from eureka_trainer.reporting.curves import CurveSet

log = logging.getLogger(__name__)
RECENT_SAMPLES = 8


def now_rfc3339() -> str:
    """The current UTC time, RFC 3339 with a `Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file + rename (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp creates 0600; the file gets the mode every other run file has (0666 less the
        # umask), so `eureka serve` run as another user can read status.json like metrics.jsonl.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; set back at once
    os.umask(mask)
    return mask


def truncate_after(path: Path, step: int) -> None:
    """Drop JSONL records with `step` above `step` (a resumed run rewrites those steps)."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= step
    ]
    write_atomic(path, "".join(line + "\n" for line in kept))


class RunDirSink:
    """Writes metrics, samples, status and TensorBoard events under `run_dir`."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        tensorboard: bool = True,
        resumed_step: int = 0,
        heartbeat_seconds: float = 30.0,
        status_seconds: float = 2.0,
    ):
        self.run_dir = Path(run_dir)
        self.status_seconds = status_seconds
        self._status_written: float | None = None  # monotonic time of the last status.json
        self._status_checkpoint: int | None = None  # its last checkpoint step
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.failures = 0
        self.heartbeat_seconds = heartbeat_seconds
        self._lock = threading.RLock()  # the heartbeat thread writes status.json too
        self._stop = threading.Event()
        self._heart: threading.Thread | None = None
        self.status = RLJobStatus(phase="Running")
        self.curves = CurveSet()
        for name in ("metrics.jsonl", "samples.jsonl"):
            truncate_after(self.run_dir / name, resumed_step)
        self._replay_curves()
        self._writer = self._tensorboard() if tensorboard else None

    def _tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional dependency of torch
            log.warning("tensorboard is not installed; no event files are written")
            return None
        return SummaryWriter(str(self.run_dir / "tensorboard"))

    def _replay_curves(self) -> None:
        path = self.run_dir / "metrics.jsonl"
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                self.curves.add(int(row["step"]), _numbers(row))

    # -- StatusSink ------------------------------------------------------------------------------
    def started(self, total_steps: int | None, progress: Progress | None = None) -> None:
        with self._lock:
            self.status.phase = "Running"
            self.status.start_time = self.status.start_time or now_rfc3339()
            self.status.completion_time = None
            self.status.conditions = []
            base = progress if progress is not None else self.status.progress
            self.status.progress = base.model_copy(update={"total_steps": total_steps})
            self._guard(self._write_status)
        if self.heartbeat_seconds > 0 and self._heart is None:
            self._heart = threading.Thread(target=self._beat, name="rundir-heartbeat", daemon=True)
            self._heart.start()

    def report(
        self, progress: Progress, metrics: Mapping[str, float], samples: Sequence[Sample]
    ) -> None:
        with self._lock:
            self._guard(lambda: self._report(progress, metrics, samples))

    def finished(self, phase: FinalPhase, message: str = "", reason: str = "") -> None:
        """The final phase; a message becomes a condition (`Failed`, reason `TrainerError`
        unless `reason` says otherwise, e.g. `Interrupted`; `Succeeded` with a message: a
        `Succeeded` condition)."""
        self._stop.set()
        if self._heart is not None:
            self._heart.join(timeout=5)
        with self._lock:
            self.status.phase = phase
            self.status.completion_time = now_rfc3339()
            self.status.progress = self.status.progress.model_copy(
                update={"heartbeat_time": self.status.completion_time}
            )
            if message:
                from eureka_trainer.config.status import Condition

                self.status.conditions = [c for c in self.status.conditions if c.type != phase]
                self.status.conditions.append(
                    Condition(
                        type=phase,
                        status="True",
                        reason=reason or ("TrainerError" if phase == "Failed" else "Completed"),
                        message=message,
                        last_transition_time=self.status.completion_time,
                    )
                )
            self._guard(self._write_status)
        if self._writer is not None:
            self._guard(self._writer.close)

    def _beat(self) -> None:
        """Rewrite status.json with a fresh heartbeat until `finished()` (or the process ends:
        then the heartbeat grows old while the phase still says Running)."""
        while not self._stop.wait(self.heartbeat_seconds):
            with self._lock:
                self._guard(self._write_status)

    # -- internals -------------------------------------------------------------------------------
    def _report(
        self, progress: Progress, metrics: Mapping[str, float], samples: Sequence[Sample]
    ) -> None:
        row = metrics_row(progress.step, metrics)
        self._append("metrics.jsonl", [row])
        self._append("samples.jsonl", [s.model_dump(mode="json") for s in samples])
        self.curves.add(progress.step, metrics)
        self.status.progress = progress
        self.status.metrics = _numbers(row, skip=("step",))
        recent = list(samples) + list(self.status.recent_samples)
        self.status.recent_samples = recent[:RECENT_SAMPLES]
        if self._writer is not None:
            for name, value in metrics.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self._writer.add_scalar(name, float(value), progress.step)  # NaN included
        last = progress.total_steps is not None and progress.step >= progress.total_steps
        saved = progress.last_checkpoint_step != self._status_checkpoint
        if last or saved or self._status_due():
            self._write_status()
            if self._writer is not None:  # event files follow the status' pace (and close)
                self._writer.flush()

    def _append(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        with open(self.run_dir / name, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, allow_nan=False) + "\n")

    def _status_due(self) -> bool:
        written = self._status_written
        return written is None or time.monotonic() - written >= self.status_seconds

    def _write_status(self) -> None:
        self._status_written = time.monotonic()
        self._status_checkpoint = self.status.progress.last_checkpoint_step
        if self.status.phase == "Running":
            self.status.progress = self.status.progress.model_copy(
                update={"heartbeat_time": now_rfc3339()}
            )
        data = self.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        data["curves"] = self.curves.to_status()
        # Compact: json's C encoder (an `indent` falls back to the pure-Python one, 5x slower).
        write_atomic(self.run_dir / "status.json", json.dumps(data, separators=(",", ":")))

    def _guard(self, action: Any) -> None:
        try:
            action()
        except Exception:  # a sink must never stop training
            self.failures += 1
            log.exception("run directory sink: write failed (%d so far)", self.failures)


def nonfinite_text(value: float) -> str:
    """`"NaN"`, `"Infinity"` or `"-Infinity"` (JavaScript's names, which JSON readers know)."""
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def metrics_row(step: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One `metrics.jsonl` row: finite numbers as they are, a non-finite one as `null` plus
    its name and value in `nonfinite` (JSON has no NaN; dropping it would hide a broken run)."""
    row: dict[str, Any] = {"step": step}
    nonfinite: dict[str, str] = {}
    for key, value in metrics.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        if value == value and abs(value) != float("inf"):
            row[key] = float(value)
        else:
            row[key] = None
            nonfinite[key] = nonfinite_text(float(value))
    if nonfinite:
        row["nonfinite"] = nonfinite
    return row


def _numbers(row: Mapping[str, Any], skip: Sequence[str] = ("step",)) -> dict[str, float]:
    """The finite numeric entries of a metrics row."""
    out = {}
    for key, value in row.items():
        if key in skip or not isinstance(value, int | float):
            continue
        if value == value and abs(value) != float("inf"):
            out[key] = float(value)
    return out
