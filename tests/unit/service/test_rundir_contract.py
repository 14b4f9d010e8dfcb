"""The trainer's run-directory sink and the service's local backend agree on the format."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from eureka_service.app import create_app
from eureka_service.auth import LocalTokenAuth
from eureka_trainer.config.status import Progress, Sample
from eureka_trainer.reporting.rundir import RunDirSink
from tests.unit.service.rundir import metrics_row

LOCAL = "http://127.0.0.1"  # the service answers loopback Host names only (hosts.py)


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

    with TestClient(
        create_app(LocalBackend(tmp_path), LocalTokenAuth("x" * 20)), base_url=LOCAL
    ) as client:
        (job,) = client.get("/api/jobs").json()
        assert (job["name"], job["phase"], job["step"], job["totalSteps"]) == (
            "run-1",
            "Succeeded",
            5,
            5,
        )
        series = client.get("/api/jobs/local/run-1/metrics").json()["series"]
        assert series["reward/accuracy"]["steps"] == [1, 2, 3, 4, 5]
        assert series["reflection/rate"]["steps"] == [1, 2, 3, 4, 5]
        assert series["reflection/rate"]["values"] == [1.0] * 5
        samples = client.get("/api/jobs/local/run-1/samples").json()["samples"]
        assert samples[0]["step"] == 5 and samples[0]["prompt"] == "<b>q</b>"


def test_status_json_is_readable_like_the_other_run_files(tmp_path: Path) -> None:
    import os
    import stat

    sink = RunDirSink(tmp_path / "run", tensorboard=False)
    sink.started(2)
    sink.report(Progress(step=1, total_steps=2), {"reward/accuracy": 0.5}, [])
    mode = stat.S_IMODE((tmp_path / "run" / "status.json").stat().st_mode)
    expected = stat.S_IMODE((tmp_path / "run" / "metrics.jsonl").stat().st_mode)
    assert mode == expected == 0o666 & ~_umask(os)  # was 0600 (mkstemp's mode)


def _umask(os: object) -> int:
    mask: int = os.umask(0)  # type: ignore[attr-defined]
    os.umask(mask)  # type: ignore[attr-defined]
    return mask


def test_nan_and_inf_points_are_shown_not_dropped(tmp_path: Path) -> None:
    from eureka_service.local import LocalBackend

    sink = RunDirSink(tmp_path / "run", tensorboard=False)
    sink.started(3)
    for step, kl in [(1, 0.1), (2, float("nan")), (3, float("inf"))]:
        sink.report(Progress(step=step, total_steps=3), {"policy/kl": kl, "lr": 1e-6}, [])
    with TestClient(
        create_app(LocalBackend(tmp_path), LocalTokenAuth("x" * 20)), base_url=LOCAL
    ) as client:
        series = client.get("/api/jobs/local/run/metrics").json()["series"]
    assert series["policy/kl"] == {"steps": [1], "values": [0.1], "nonfinite": [2, 3]}
    assert series["lr"]["nonfinite"] == []
