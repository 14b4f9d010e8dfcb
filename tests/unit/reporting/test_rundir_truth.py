"""The run directory tells the truth: non-finite metrics recorded, a heartbeat while alive,
the resumed position at start, and the reason of a failure."""

from __future__ import annotations

import json
import time
from pathlib import Path

from eureka_trainer.config.status import Progress
from eureka_trainer.reporting.rundir import RunDirSink, metrics_row


def test_nonfinite_metrics_are_null_and_named() -> None:
    row = metrics_row(4, {"a": 1, "nan": float("nan"), "up": float("inf"), "down": -float("inf")})
    assert row == {
        "step": 4,
        "a": 1.0,
        "nan": None,
        "up": None,
        "down": None,
        "nonfinite": {"nan": "NaN", "up": "Infinity", "down": "-Infinity"},
    }
    json.dumps(row, allow_nan=False)  # valid JSON
    assert "nonfinite" not in metrics_row(1, {"a": 0.5})


def test_nonfinite_rows_replay_after_a_restart(tmp_path: Path) -> None:
    sink = RunDirSink(tmp_path, tensorboard=False, heartbeat_seconds=0)
    sink.started(2)
    sink.report(Progress(step=1), {"policy/loss": float("nan"), "reward/total": 1.0}, [])
    sink.finished("Succeeded")
    again = RunDirSink(tmp_path, tensorboard=False, resumed_step=1, heartbeat_seconds=0)
    assert again.curves.to_status()["reward/total"]["values"] == [1.0]


def _status(path: Path) -> dict:
    return json.loads((path / "status.json").read_text())


def test_heartbeat_is_refreshed_while_running_and_stops_at_the_end(tmp_path: Path) -> None:
    sink = RunDirSink(tmp_path, tensorboard=False, heartbeat_seconds=0.2)
    sink.started(5, Progress(step=3, last_checkpoint_step=3))
    first = _status(tmp_path)
    assert first["progress"]["step"] == 3  # the resumed position, not 0
    seen = {first["progress"]["heartbeatTime"]}
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:  # RFC 3339 has whole seconds
        time.sleep(0.1)
        seen.add(_status(tmp_path)["progress"]["heartbeatTime"])
    assert len(seen) >= 2, "status.json was not rewritten with a new heartbeat"
    sink.finished("Failed", "interrupted by SIGTERM", reason="Interrupted")
    final = _status(tmp_path)
    assert final["phase"] == "Failed"
    assert final["conditions"][0]["reason"] == "Interrupted"
    time.sleep(0.5)
    assert _status(tmp_path) == final  # no heartbeat after the end
