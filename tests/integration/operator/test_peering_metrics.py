"""Several operator replicas (kopf peering): one works, the other stands by. And /metrics."""

from __future__ import annotations

import asyncio
import socket
import urllib.request

import pytest

from eureka_operator.main import Options
from tests.integration.operator.conftest import Cluster, OperatorRunner, small_rljob
from tests.integration.operator.emulator import Kind

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]
PEERINGS = "kopf.dev/v1/clusterkopfpeerings"


def posts(cluster: Cluster, plural: str) -> int:
    return sum(
        1
        for r in cluster.emu
        if r.method == "POST" and r.resource is not None and r.resource.plural == plural
    )


async def test_two_replicas_one_active_then_failover(cluster: Cluster) -> None:
    cluster.emu.register(PEERINGS, Kind("ClusterKopfPeering", namespaced=False))
    await cluster.request(
        "post",
        "/apis/kopf.dev/v1/clusterkopfpeerings",
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": "eureka"},
        },
    )
    high = OperatorRunner(Options(peering="eureka", priority=20, metrics_port=0))
    low = OperatorRunner(Options(peering="eureka", priority=10, metrics_port=0))
    await high.start()
    await low.start()
    try:
        peers = lambda: (cluster.emu.obj(PEERINGS, None, "eureka") or {}).get("status") or {}  # noqa: E731
        await cluster.wait("both replicas in the peering", lambda: len(peers()) == 2)
        assert sorted(p["priority"] for p in peers().values()) == [10, 20]
        await asyncio.sleep(1)  # the low-priority replica has seen the other and paused
        await cluster.create_rljob(small_rljob("one"))
        await cluster.wait("RayJob", lambda: cluster.rayjob("one"))
        await cluster.wait("status", lambda: cluster.status("one").get("phase") == "Pending")
        await asyncio.sleep(1)
        assert posts(cluster, "rayjobs") == 1  # the standby did not race the active replica
        await high.stop()  # leaves the peering at once (lifetime 0): the standby takes over
        await cluster.wait("one replica left", lambda: len(peers()) == 1)
        await cluster.create_rljob(small_rljob("two"))
        await cluster.wait("RayJob from the standby", lambda: cluster.rayjob("two"), timeout=30)
    finally:
        await low.stop()
        await high.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_prometheus_endpoint(cluster: Cluster) -> None:
    port = free_port()
    runner = OperatorRunner(Options(standalone=True, metrics_port=port))
    await runner.start()
    try:
        await cluster.create_rljob(small_rljob("m"))
        await cluster.wait("status", lambda: cluster.status("m").get("phase") == "Pending")

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                return str(resp.read().decode())

        text = await cluster.wait(
            "gauge", lambda: (t := scrape()) and 'eureka_rljobs{phase="Pending"}' in t and t
        )
        assert 'eureka_reconcile_seconds_count{handler="rljob"}' in text
        assert "eureka_reconcile_errors_total" in text and "eureka_rayjobs_created_total" in text
    finally:
        await runner.stop()
