"""`StatusSink` into a run directory: what `eureka run` writes and `eureka serve --runs` reads.

Layout of a run directory:
- `metrics.jsonl`: one JSON object per step (`step` plus every metric of the step).
- `samples.jsonl`: a few `{step, prompt, response, answer, rewards}` records per step.
- `status.json`: the `RLJobStatus` (camelCase), rewritten atomically every step.
- `tensorboard/`: TensorBoard event files (when enabled).

A sink never stops training: a failed write is logged and counted in `failures`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
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

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True, resumed_step: int = 0):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.failures = 0
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
    def started(self, total_steps: int | None) -> None:
        self.status.phase = "Running"
        self.status.start_time = self.status.start_time or now_rfc3339()
        self.status.progress = self.status.progress.model_copy(update={"total_steps": total_steps})
        self._guard(self._write_status)

    def report(
        self, progress: Progress, metrics: Mapping[str, float], samples: Sequence[Sample]
    ) -> None:
        self._guard(lambda: self._report(progress, metrics, samples))

    def finished(self, phase: FinalPhase, message: str = "") -> None:
        self.status.phase = phase
        self.status.completion_time = now_rfc3339()
        if message:
            self.status.conditions = [c for c in self.status.conditions if c.type != "Failed"]
            from eureka_trainer.config.status import Condition

            self.status.conditions.append(
                Condition(
                    type="Failed",
                    status="True",
                    reason="TrainerError",
                    message=message,
                    last_transition_time=self.status.completion_time,
                )
            )
        self._guard(self._write_status)
        if self._writer is not None:
            self._guard(self._writer.close)

    # -- internals -------------------------------------------------------------------------------
    def _report(
        self, progress: Progress, metrics: Mapping[str, float], samples: Sequence[Sample]
    ) -> None:
        row: dict[str, Any] = {"step": progress.step, **_numbers(metrics)}
        nonfinite = sorted(k for k, v in metrics.items() if isinstance(v, float) and not _finite(v))
        if nonfinite:  # named, so the dashboard can show where a curve went NaN/Inf
            row["nonfinite"] = nonfinite
        self._append("metrics.jsonl", [row])
        self._append("samples.jsonl", [s.model_dump(mode="json") for s in samples])
        self.curves.add(progress.step, metrics)
        self.status.progress = progress
        self.status.metrics = _numbers(row, skip=("step",))
        recent = list(samples) + list(self.status.recent_samples)
        self.status.recent_samples = recent[:RECENT_SAMPLES]
        self._write_status()
        if self._writer is not None:
            for name, value in self.status.metrics.items():
                self._writer.add_scalar(name, value, progress.step)
            self._writer.flush()

    def _append(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        with open(self.run_dir / name, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, allow_nan=False) + "\n")

    def _write_status(self) -> None:
        data = self.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        data["curves"] = self.curves.to_status()
        write_atomic(self.run_dir / "status.json", json.dumps(data, indent=1))

    def _guard(self, action: Any) -> None:
        try:
            action()
        except Exception:  # a sink must never stop training
            self.failures += 1
            log.exception("run directory sink: write failed (%d so far)", self.failures)


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


def _numbers(row: Mapping[str, Any], skip: Sequence[str] = ("step",)) -> dict[str, float]:
    """The finite numeric entries of a metrics row."""
    out = {}
    for key, value in row.items():
        if key in skip or not isinstance(value, int | float):
            continue
        if value == value and abs(value) != float("inf"):
            out[key] = float(value)
    return out
