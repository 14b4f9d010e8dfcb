"""Creates the API server refuses (RBAC, a quota, a webhook) are said on the RLJob: a condition
and a Warning Event, retried until fixed; names KubeRay refuses never reach it."""

from __future__ import annotations

import pytest

from eureka_operator.handlers import rljob as rljob_handlers
from tests.integration.operator.conftest import NS, Cluster, OperatorRunner, small_rljob
from tests.integration.operator.emulator import RAYJOBS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
QUOTA = "exceeded quota: gpu-quota, requested: requests.nvidia.com/gpu=8, limited: 4"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rljob_handlers, "CREATE_RETRY_S", 0.3)


async def test_a_quota_refusal_is_a_condition_and_an_event_until_it_is_lifted(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    cluster.emu.refuse(RAYJOBS, 403, "Forbidden", f'rayjobs "q" is forbidden: {QUOTA}')
    await cluster.create_rljob(small_rljob("q"))
    cond = await cluster.wait("CreateFailed", lambda: cluster.condition("q", "CreateFailed"))
    assert cond["status"] == "True" and cond["reason"] == "QuotaExceeded"
    assert "RayJob q" in cond["message"] and "gpu-quota" in cond["message"]
    ready = cluster.condition("q", "Ready")
    assert ready["reason"] == "QuotaExceeded" and cluster.status("q")["phase"] == "Pending"
    events = await cluster.wait(
        "a Warning Event",
        lambda: [
            e
            for e in cluster.events("q")
            if e.get("reason") == "QuotaExceeded" and e.get("type") == "Warning"
        ],
    )
    assert "gpu-quota" in events[0]["message"] and "RayJob q" in events[0]["message"]
    assert cluster.rayjob("q") is None

    cluster.emu.allow(RAYJOBS)  # quota freed: the next retry creates the RayJob
    await cluster.wait("RayJob", lambda: cluster.rayjob("q"))
    await cluster.wait("condition cleared", lambda: not cluster.condition("q", "CreateFailed"))


async def test_a_webhook_refusing_a_child_names_the_child(
    cluster: Cluster, operator: OperatorRunner
) -> None:
    message = 'admission webhook "policy.example.com" denied the request: no ServiceAccounts'
    cluster.emu.refuse("v1/serviceaccounts", 422, "Invalid", message)
    await cluster.create_rljob(small_rljob("w"))
    cond = await cluster.wait("CreateFailed", lambda: cluster.condition("w", "CreateFailed"))
    assert cond["reason"] == "Invalid" and "ServiceAccount w-trainer" in cond["message"]
    assert "policy.example.com" in cond["message"]
    cluster.emu.allow("v1/serviceaccounts")
    await cluster.wait("condition cleared", lambda: not cluster.condition("w", "CreateFailed"))


@pytest.mark.parametrize("name", ["7b-grpo", "a" * 60])
async def test_names_kuberay_refuses_get_a_conforming_rayjob(
    cluster: Cluster, operator: OperatorRunner, name: str
) -> None:
    # The emulator applies KubeRay's admission rules (tests/kuberay/rules.py) to every RayJob.
    await cluster.create_rljob(small_rljob(name))
    status = await cluster.wait(
        "rayJobName", lambda: cluster.status(name).get("rayJobName") and cluster.status(name)
    )
    rayjob = cluster.rayjob(status["rayJobName"])
    assert rayjob is not None and rayjob["metadata"]["name"] != name
    assert len(rayjob["metadata"]["name"]) <= 47 and rayjob["metadata"]["name"][0].isalpha()
    assert not cluster.condition(name, "CreateFailed")
    assert cluster.emu.objs(RAYJOBS, NS) == [rayjob]
