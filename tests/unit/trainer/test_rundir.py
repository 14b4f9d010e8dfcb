"""The run-directory sink: metrics/samples JSONL, atomic status.json, resume truncation."""

from __future__ import annotations

import json
from pathlib import Path

from eureka_trainer.config import RLJobStatus
from eureka_trainer.config.status import Progress, Sample
from eureka_trainer.reporting.rundir import RunDirSink


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _report(sink: RunDirSink, step: int, acc: float) -> None:
    sample = Sample(step=step, prompt="p", response="r", answer="1", rewards={"accuracy": acc})
    metrics = {"reward/accuracy": acc, "reward/total": acc + 0.5, "bad": float("nan")}
    sink.report(Progress(step=step, total_steps=4), metrics, [sample])


def test_writes_metrics_samples_and_status(tmp_path: Path) -> None:
    sink = RunDirSink(tmp_path, tensorboard=False, status_seconds=0)
    sink.started(4)
    _report(sink, 1, 0.25)
    _report(sink, 2, 0.5)
    rows = _lines(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[1]["reward/accuracy"] == 0.5
    # JSON has no NaN: null, and the value named in `nonfinite` (dropping it hid broken runs).
    assert rows[1]["bad"] is None and rows[1]["nonfinite"] == {"bad": "NaN"}
    assert _lines(tmp_path / "samples.jsonl")[0]["rewards"] == {"accuracy": 0.25}
    status = json.loads((tmp_path / "status.json").read_text())
    parsed = RLJobStatus.model_validate(status)
    assert parsed.phase == "Running" and parsed.progress.step == 2
    assert status["progress"]["totalSteps"] == 4  # camelCase, as the job service reads it
    assert status["curves"]["reward/accuracy"]["values"] == [0.25, 0.5]
    sink.finished("Succeeded")
    final = RLJobStatus.model_validate_json((tmp_path / "status.json").read_text())
    assert final.phase == "Succeeded" and final.completion_time


def test_status_is_rewritten_at_most_once_per_interval_and_at_the_end(tmp_path: Path) -> None:
    # Rewriting status.json (curves included) every step cost a 600-step run 10-12 ms a step.
    sink = RunDirSink(tmp_path, tensorboard=False, status_seconds=3600)
    sink.started(4)
    _report(sink, 1, 0.25)
    _report(sink, 2, 0.5)
    step = json.loads((tmp_path / "status.json").read_text())["progress"]["step"]
    assert step == 0, "a step within the interval rewrote status.json"
    assert [r["step"] for r in _lines(tmp_path / "metrics.jsonl")] == [1, 2]  # every step
    _report(sink, 4, 1.0)  # the last step is always written
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["progress"]["step"] == 4
    assert status["curves"]["reward/accuracy"]["values"] == [0.25, 0.5, 1.0]
    sink.report(Progress(step=5, total_steps=None, last_checkpoint_step=5), {}, [])
    assert json.loads((tmp_path / "status.json").read_text())["progress"]["step"] == 5  # saved
    sink.report(Progress(step=6, total_steps=None, last_checkpoint_step=5), {}, [])
    sink.finished("Succeeded")  # the end writes whatever the interval held back
    assert json.loads((tmp_path / "status.json").read_text())["progress"]["step"] == 6


def test_failure_message_becomes_a_condition(tmp_path: Path) -> None:
    sink = RunDirSink(tmp_path, tensorboard=False)
    sink.started(None)
    sink.finished("Failed", "ValueError: boom")
    status = RLJobStatus.model_validate_json((tmp_path / "status.json").read_text())
    assert status.phase == "Failed"
    assert status.conditions[0].message == "ValueError: boom"


def test_resume_drops_steps_after_the_checkpoint(tmp_path: Path) -> None:
    sink = RunDirSink(tmp_path, tensorboard=False)
    for step in (1, 2, 3):
        _report(sink, step, 0.1 * step)
    resumed = RunDirSink(tmp_path, tensorboard=False, resumed_step=2)
    assert [r["step"] for r in _lines(tmp_path / "metrics.jsonl")] == [1, 2]
    assert [r["step"] for r in _lines(tmp_path / "samples.jsonl")] == [1, 2]
    _report(resumed, 3, 0.9)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["curves"]["reward/accuracy"]["steps"] == [1, 2, 3]


def test_write_failures_are_counted_not_raised(tmp_path: Path) -> None:
    sink = RunDirSink(tmp_path, tensorboard=False)
    (tmp_path / "metrics.jsonl").mkdir()  # appending to it now fails
    _report(sink, 1, 0.5)
    assert sink.failures == 1


def test_tensorboard_events_are_written(tmp_path: Path) -> None:
    sink = RunDirSink(tmp_path, tensorboard=True)
    _report(sink, 1, 0.5)
    sink.finished("Succeeded")
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
