"""The RLJob cache survives what a real API server does to watches: expiry and errors."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import kmock as km
import pytest

from eureka_service.backend import BackendError, NotReady
from eureka_service.kube import KubeBackend
from eureka_service.kubeclient import KubeClient
from eureka_trainer.reporting.kube import load_cluster_config, parse_kubeconfig
from tests.unit.reporting.kmock_crd import RLJOBS, declare_rljobs, write_kubeconfig

LOCAL = "http://127.0.0.1"  # the service answers loopback Host names only (hosts.py)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def _job(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns"}, "status": {"phase": "Running"}}


def _lists(kmock: Any) -> int:
    return sum(1 for r in kmock if r.method == "GET" and "watch" not in r.params)


async def _until(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_expired_watch_lists_again(kmock: Any, tmp_path: Path) -> None:
    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "ns", "a"] = _job("a")
    expired = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    kmock[km.action.WATCH][:1] << (expired,)  # the first watch expires at once
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    backend = KubeBackend(KubeClient(config), retry_delay=0.05)
    await backend.start()
    try:
        await _until(lambda: _lists(kmock) >= 2)  # listed, watch expired, listed again
        assert backend.ready()
        assert [j.name for j in await backend.list_jobs()] == ["a"]
    finally:
        await backend.stop()


async def test_unreachable_api_is_503_not_a_hang() -> None:
    config = parse_kubeconfig(
        "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:9'}}]\n"
    )
    backend = KubeBackend(KubeClient(config), retry_delay=0.05, ready_timeout=0.3)
    await backend.start()
    try:
        assert not backend.ready()
        with pytest.raises(NotReady, match="not yet synchronised"):
            await backend.list_jobs()
    finally:
        await backend.stop()


async def test_one_namespace_only(kmock: Any, tmp_path: Path) -> None:
    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "ns", "mine"] = _job("mine")
    kmock.objects[RLJOBS, "other", "theirs"] = {
        **_job("theirs"),
        "metadata": {"name": "theirs", "namespace": "other"},
    }
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    backend = KubeBackend(KubeClient(config), namespace="ns")
    await backend.start()
    try:
        assert [(j.namespace, j.name) for j in await backend.list_jobs()] == [("ns", "mine")]
        with pytest.raises(BackendError, match="manages namespace 'ns' only") as refused:
            await backend.create({"metadata": {"name": "x", "namespace": "other"}, "spec": {}})
        assert refused.value.status == 403
    finally:
        await backend.stop()
    paths = {r.url.path for r in kmock if r.method == "GET"}
    assert paths == {"/apis/eureka.dev/v1alpha1/namespaces/ns/rljobs"}  # never cluster-wide


async def test_large_objects_pass_through_the_watch(kmock: Any, tmp_path: Path) -> None:
    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "ns", "big"] = _job("big")
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    backend = KubeBackend(KubeClient(config))
    await backend.start()
    try:
        assert [j.name for j in await backend.list_jobs()] == ["big"]
        steps = list(range(0, 5000, 10))
        curves = {
            f"metric/{i}": {"steps": steps, "values": [s / 7 for s in steps]} for i in range(60)
        }
        patch = {"status": {"curves": curves, "progress": {"step": 4990}}}
        async with kmock.patch(
            "/apis/eureka.dev/v1alpha1/namespaces/ns/rljobs/big/status", json=patch
        ) as resp:
            assert resp.status == 200
            assert len(await resp.read()) > 600_000  # above aiohttp's 512 KiB line cap

        async def arrived() -> bool:
            return (await backend.list_jobs())[0].step == 4990

        deadline = time.monotonic() + 1.5  # shorter than the retry delay
        while not await arrived():
            assert time.monotonic() < deadline, "the large MODIFIED event never arrived"
            await asyncio.sleep(0.05)
        metrics = await backend.get_metrics("ns", "big")
        assert len(metrics.series) == 60 and len(metrics.series["metric/3"].steps) == 500
        assert _lists(kmock) == 1  # it came by the watch, not by a relist after a broken stream
    finally:
        await backend.stop()


async def test_what_the_sink_writes_the_service_shows(kmock: Any, tmp_path: Path) -> None:
    from eureka_trainer.config.status import Progress, Sample
    from eureka_trainer.reporting.kube import KubeStatusSink

    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "ns", "trained"] = _job("trained")
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    backend = KubeBackend(KubeClient(config))
    await backend.start()
    sink = KubeStatusSink("trained", "ns", config=config, min_interval=0.0, background=False)

    def train() -> None:
        sink.started(30)
        for step in range(1, 31):
            response = "Wait, let me verify. 4" if step > 15 else "4"
            sample = Sample(step=step, prompt="2+2?", response=response, answer="4")
            sink.report(
                Progress(step=step, total_steps=30), {"reward/accuracy": step / 30}, [sample]
            )
        sink.finished("Succeeded")

    try:
        await asyncio.to_thread(train)
        deadline = time.monotonic() + 5
        while (await backend.list_jobs())[0].step != 30:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        metrics = await backend.get_metrics("ns", "trained")
        assert metrics.series["reward/accuracy"].steps == list(range(1, 31))
        rate = metrics.series["reflection/rate"]
        assert rate.steps == list(range(1, 31))  # every patch's samples were seen once
        assert rate.values == [0.0] * 15 + [1.0] * 15
        samples = (await backend.get_samples("ns", "trained")).samples
        # Every sample the watch showed (more than the status's recentSamples), newest first.
        assert [s["step"] for s in samples] == list(range(30, 0, -1))
    finally:
        await backend.stop()


async def test_read_only_service_refuses_writes_before_auth(kmock: Any, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from eureka_service.app import create_app
    from eureka_service.auth import KubeAuth

    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "ns", "a"] = _job("a")
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    client = KubeClient(config)
    app = create_app(KubeBackend(client), KubeAuth(client), read_only=True)

    def calls() -> None:
        with TestClient(app, base_url=LOCAL) as http:
            assert http.get("/api").json()["writable"] is False
            for method, path in [("POST", "/api/jobs"), ("DELETE", "/api/jobs/ns/a")]:
                answer = http.request(method, path, headers={"Authorization": "Bearer t"})
                assert answer.status_code == 405
                assert "--read-only" in answer.json()["detail"]

    await asyncio.to_thread(calls)
    assert not [r for r in kmock if r.method == "POST"]  # no TokenReview was even asked
