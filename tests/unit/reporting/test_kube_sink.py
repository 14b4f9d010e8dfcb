"""KubeStatusSink against the kmock API emulator: what it patches, how often, and failures."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.config.status import Progress, RLJobStatus, Sample
from eureka_trainer.reporting.kube import (
    ClusterConfigError,
    KubeStatusSink,
    load_cluster_config,
    parse_kubeconfig,
)
from tests.unit.reporting.kmock_crd import RLJOBS, declare_rljobs, write_kubeconfig

pytestmark = pytest.mark.timeout(30)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"model": {"name": "tiny"}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def _train(sink: KubeStatusSink, clock: FakeClock, steps: int) -> None:
    sink.started(steps)
    for step in range(1, steps + 1):
        clock.now += 1.0
        sample = Sample(
            step=step,
            prompt="p" * 5000,
            response=f"<b>step {step}</b>",
            answer="4",
            rewards={"accuracy": 1.0, "total": 1.5},
        )
        sink.report(
            Progress(step=step, total_steps=steps, samples_seen=8 * step),
            {"reward/total": step / steps, "reward/accuracy": 0.5, "policy/kl": float("nan")},
            [sample],
        )
    sink.finished("Succeeded")


async def test_sink_patches_trainer_fields_only(kmock: Any, tmp_path: Path) -> None:
    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "team-a", "job-1"] = _job("job-1")
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    clock = FakeClock()
    sink = KubeStatusSink("job-1", config=config, min_interval=10.0, clock=clock, background=False)
    assert sink.namespace == "team-a"  # from the kubeconfig context

    await asyncio.to_thread(_train, sink, clock, 700)

    status = kmock.objects[RLJOBS, "team-a", "job-1"]["status"]
    assert status["phase"] == "Running"  # the operator's fields are untouched
    assert status["conditions"] == [{"type": "Ready", "status": "True"}]
    progress = dict(status["progress"])
    heartbeat = progress.pop("heartbeatTime")  # when the trainer last patched
    assert heartbeat.endswith("Z") and heartbeat[:4].isdigit()
    assert progress == {"step": 700, "totalSteps": 700, "epoch": 0, "samplesSeen": 5600}
    assert status["metrics"] == {"reward/accuracy": 0.5, "reward/total": 1.0}
    total = status["curves"]["reward/total"]
    assert len(total["steps"]) <= 500
    assert total["steps"][0] == 1 and total["steps"][-1] == 700
    assert "policy/kl" not in status["curves"]
    samples = status["recentSamples"]
    assert len(samples) == 4 and samples[0]["step"] == 700
    assert len(samples[0]["prompt"]) == 2000 and samples[0]["prompt"].endswith("…")

    # What the sink writes is an RLJobStatus (unknown fields would be pruned by the API server).
    RLJobStatus.model_validate(sink.status_patch()["status"])
    patches = _patches(kmock)
    assert all(r.subresource == "status" for r in patches)
    assert all(r.headers["Content-Type"] == "application/merge-patch+json" for r in patches)
    assert all(r.headers["Authorization"] == "Bearer test-token" for r in patches)
    # started + one per 10 s of a 700 s run + the final flush; never once per step.
    assert 60 <= len(patches) <= 75
    assert sink.failures == 0 and sink.patches == len(patches)


def _patches(kmock: Any) -> list[Any]:
    return [r for r in kmock if str(r.method).upper().endswith("PATCH")]


async def test_sink_gives_up_at_once_on_404(kmock: Any, tmp_path: Path) -> None:
    declare_rljobs(kmock)  # the job does not exist: every patch gets a 404
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    clock, slept = FakeClock(), []
    sink = KubeStatusSink(
        "missing",
        "team-a",
        config=config,
        min_interval=5.0,
        clock=clock,
        sleep=slept.append,
        background=False,
    )
    await asyncio.to_thread(_train, sink, clock, 12)
    # started, steps 5 and 10 (one interval after each failure), final: 4 single attempts.
    assert sink.failures == 4 and sink.patches == 0
    assert slept == []
    assert len(_patches(kmock)) == 4


async def test_sink_retries_server_errors(kmock: Any, tmp_path: Path) -> None:
    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "team-a", "job-2"] = _job("job-2")
    kmock["patch"][:2] << 503  # the first two patches fail, the third passes
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    slept: list[float] = []
    sink = KubeStatusSink("job-2", config=config, sleep=slept.append, background=False)
    await asyncio.to_thread(sink.report, Progress(step=3), {"reward/total": 0.25}, [])
    assert slept == [0.5, 1.0]
    assert sink.patches == 1 and sink.failures == 0
    assert len(_patches(kmock)) == 3


def test_unreachable_server_is_counted() -> None:
    config = parse_kubeconfig(
        "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
    )
    sink = KubeStatusSink(
        "job", "ns", config=config, retries=2, sleep=lambda _: None, background=False
    )
    sink.report(Progress(step=1), {"reward/total": 1.0}, [])
    sink.finished("Failed", "boom")
    assert sink.failures == 2 and sink.patches == 0


def test_name_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_kubeconfig(
        "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
    )
    monkeypatch.setenv("EUREKA_RLJOB_NAME", "from-env")
    monkeypatch.setenv("EUREKA_RLJOB_NAMESPACE", "ns-env")
    sink = KubeStatusSink(config=config)
    assert sink.path == "/apis/eureka.dev/v1alpha1/namespaces/ns-env/rljobs/from-env/status"
    monkeypatch.delenv("EUREKA_RLJOB_NAME")
    with pytest.raises(ClusterConfigError, match="EUREKA_RLJOB_NAME"):
        KubeStatusSink(config=config)


def test_kubeconfig_errors(tmp_path: Path) -> None:
    with pytest.raises(ClusterConfigError, match="no context named 'x'"):
        parse_kubeconfig("current-context: x\ncontexts: []\n")
    with pytest.raises(ClusterConfigError, match="no kubeconfig"):
        load_cluster_config(str(tmp_path / "absent"))
    exec_user = (
        "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n"
        "clusters: [{name: k, cluster: {server: 'https://x'}}]\n"
        "users: [{name: u, user: {exec: {command: aws}}}]\n"
    )
    with pytest.raises(ClusterConfigError, match="exec"):
        parse_kubeconfig(exec_user)


async def test_background_worker_rate_limits_and_flushes_the_end(
    kmock: Any, tmp_path: Path
) -> None:
    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "team-a", "job-3"] = _job("job-3")
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    sink = KubeStatusSink("job-3", config=config, min_interval=0.3)

    def train() -> float:
        sink.started(50)
        begin = time.monotonic()
        for step in range(1, 51):
            sink.report(Progress(step=step, total_steps=50), {"reward/total": float(step)}, [])
            time.sleep(0.01)
        elapsed = time.monotonic() - begin
        sink.finished("Succeeded")
        return elapsed

    elapsed = await asyncio.to_thread(train)
    status = kmock.objects[RLJOBS, "team-a", "job-3"]["status"]
    assert status["progress"]["step"] == 50  # the final state arrived
    assert status["curves"]["reward/total"]["steps"] == list(range(1, 51))
    assert 2 <= len(_patches(kmock)) <= 6  # ~0.6 s of training at one patch per 0.3 s, + final
    assert elapsed < 2.0


def test_a_dead_api_server_does_not_slow_training() -> None:
    config = parse_kubeconfig(
        "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
    )
    # Each retry waits 1 s: a synchronous sink would stall every report for seconds.
    sink = KubeStatusSink(
        "job", "ns", config=config, min_interval=0.0, sleep=lambda _: time.sleep(1)
    )
    begin = time.monotonic()
    for step in range(1, 21):
        sink.report(Progress(step=step), {"reward/total": 1.0}, [])
    assert time.monotonic() - begin < 0.5
    sink.final_timeout = 0.2
    sink.finished("Failed", "the API server is gone")  # bounded wait, no exception
    assert sink.patches == 0


async def test_a_slow_step_still_sends_heartbeats(kmock: Any, tmp_path: Path) -> None:
    """No step for longer than `heartbeat_seconds`: the worker still patches, so a reader of
    `progress.heartbeatTime` can tell a slow step from a dead trainer."""
    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "team-a", "job-4"] = _job("job-4")
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    sink = KubeStatusSink("job-4", config=config, min_interval=0.05, heartbeat_seconds=0.2)

    def slow_step() -> None:
        sink.started(10)
        time.sleep(1.5)  # one long step, nothing reported
        sink.finished("Failed", "interrupted by SIGTERM", "Interrupted")

    await asyncio.to_thread(slow_step)
    # Without heartbeats: one patch at the start, one at the end. With them, a few between.
    assert len(_patches(kmock)) >= 4
    status = kmock.objects[RLJOBS, "team-a", "job-4"]["status"]
    assert status["progress"]["heartbeatTime"].endswith("Z")
