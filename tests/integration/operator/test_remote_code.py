"""`model.trustRemoteCode` needs the administrator's `--allow-remote-code` (real kopf over
HTTP to the API emulator)."""

from __future__ import annotations

from typing import Any

import pytest

from eureka_operator.main import Options
from tests.integration.operator.conftest import NS, Cluster, OperatorRunner, small_rljob

pytestmark = pytest.mark.integration


def _remote_code_job(name: str) -> dict[str, Any]:
    job = small_rljob(name)
    job["spec"]["model"]["trustRemoteCode"] = True
    return job


async def test_remote_code_job_is_refused_by_default_with_condition_and_event(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    await cluster.create_rljob(_remote_code_job("remote"))
    await cluster.wait("Failed", lambda: cluster.status("remote").get("phase") == "Failed")
    cond = cluster.condition("remote", "InvalidSpec")
    assert cond["status"] == "True"
    assert "spec.model.trustRemoteCode" in cond["message"]
    assert "--allow-remote-code" in cond["message"]
    await cluster.wait(
        "InvalidSpec event",
        lambda: any(
            e["reason"] == "InvalidSpec" and "trustRemoteCode" in e["message"]
            for e in cluster.events("remote")
        ),
    )
    assert cluster.rayjob("remote") is None


async def test_remote_code_job_runs_when_the_operator_allows_it(cluster: Cluster) -> None:
    runner = OperatorRunner(Options(standalone=True, metrics_port=0, allow_remote_code=True))
    await runner.start()
    try:
        await cluster.create_rljob(_remote_code_job("allowed"))
        rayjob = await cluster.wait("RayJob", lambda: cluster.rayjob("allowed"))
        assert rayjob["metadata"]["name"]
        assert not cluster.condition("allowed", "InvalidSpec")
        configmap = await cluster.wait(
            "ConfigMap", lambda: cluster.emu.obj("v1/configmaps", NS, "allowed-rljob")
        )
        assert "trustRemoteCode: true" in configmap["data"]["rljob.yaml"]
    finally:
        await runner.stop()
