"""The trainer's run-directory sink and the service's local backend agree on the format."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from eureka_service.app import create_app
from eureka_service.auth import LocalTokenAuth
from eureka_trainer.config.status import Progress, Sample
from eureka_trainer.reporting.rundir import RunDirSink
from tests.unit.service.rundir import metrics_row


def test_service_reads_what_the_trainer_writes(tmp_path: Path) -> None:
    from eureka_service.local import LocalBackend

    sink = RunDirSink(tmp_path / "run-1", tensorboard=False)
    sink.started(5)
    for step in range(1, 6):
        metrics = {k: v for k, v in metrics_row(step).items() if k != "step"}
        sample = Sample(
            step=step,
            prompt="<b>q</b>",
            response="Wait. 4",
            answer="4",
            rewards={"accuracy": 1.0, "total": 2.0},
        )
        sink.report(Progress(step=step, total_steps=5, samples_seen=4 * step), metrics, [sample])
    sink.finished("Succeeded")

    with TestClient(create_app(LocalBackend(tmp_path), LocalTokenAuth("x" * 20))) as client:
        (job,) = client.get("/api/jobs").json()
        assert (job["name"], job["phase"], job["step"], job["totalSteps"]) == (
            "run-1",
            "Succeeded",
            5,
            5,
        )
        series = client.get("/api/jobs/local/run-1/metrics").json()["series"]
        assert series["reward/accuracy"]["steps"] == [1, 2, 3, 4, 5]
        assert series["reflection/rate"] == {"steps": [1, 2, 3, 4, 5], "values": [1.0] * 5}
        samples = client.get("/api/jobs/local/run-1/samples").json()["samples"]
        assert samples[0]["step"] == 5 and samples[0]["prompt"] == "<b>q</b>"
