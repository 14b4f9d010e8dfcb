"""The job service's Kubernetes backend against the kmock API emulator (with the RLJob CRD).

A real uvicorn serves the app in a thread; the emulator runs in the test's event loop. The test
checks that reads come from the watch-fed cache (one list, then watch events), that writes reach
the API server, and that writes are authorised with TokenReview + SubjectAccessReview.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from eureka_service.app import create_app
from eureka_service.auth import KubeAuth
from eureka_service.kube import KubeBackend
from eureka_service.kubeclient import KubeClient
from eureka_trainer.reporting.kube import load_cluster_config
from tests.integration.service.server import serve
from tests.unit.reporting.kmock_crd import RLJOBS, declare_rljobs, write_kubeconfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
"""Known bearer tokens; alice may do anything, bob may only read."""

JOB_YAML = """\
apiVersion: eureka.dev/v1alpha1
kind: RLJob
metadata:
  name: {name}
  namespace: team-a
spec:
  model:
    name: Qwen/Qwen2.5-VL-7B-Instruct
  data:
    trainFiles: [s3://bucket/train.jsonl]
  rollout:
    backend: hf
"""


def _existing_job() -> dict[str, Any]:
    return {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {
            "name": "running-job",
            "namespace": "team-a",
            "creationTimestamp": "2026-11-24T04:00:00Z",
            "resourceVersion": "7",
        },
        "spec": {"model": {"name": "m"}, "data": {"trainFiles": ["a.jsonl"]}},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "reason": "RayJobRunning"}],
            "progress": {"step": 3, "totalSteps": 100},
            "metrics": {"reward/accuracy": 0.25},
            "curves": {"reward/accuracy": {"steps": [1, 2, 3], "values": [0.1, 0.2, 0.25]}},
            "recentSamples": [
                {"step": 3, "prompt": "q", "response": "Wait, let me verify.", "rewards": {}},
                {"step": 3, "prompt": "q2", "response": "42", "rewards": {}},
            ],
        },
    }


def _install_reviews(kmock: Any) -> None:
    """TokenReview and SubjectAccessReview answers, as an API server with RBAC would give."""

    def token_review(request: Any) -> dict[str, Any]:
        user = TOKENS.get(request.data["spec"]["token"])
        del kmock.objects["authentication.k8s.io/v1/tokenreviews", None, None]
        if user is None:
            return {"status": {"authenticated": False}}
        return {"status": {"authenticated": True, "user": {"username": user, "groups": ["dev"]}}}

    def access_review(request: Any) -> dict[str, Any]:
        spec = request.data["spec"]
        del kmock.objects["authorization.k8s.io/v1/subjectaccessreviews", None, None]
        allowed = spec["user"] == "alice" and spec["resourceAttributes"]["namespace"] == "team-a"
        return {"status": {"allowed": allowed}}

    kmock["post /apis/authentication.k8s.io/v1/tokenreviews"] << token_review
    kmock["post /apis/authorization.k8s.io/v1/subjectaccessreviews"] << access_review


async def _eventually(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_kube_backend_end_to_end(kmock: Any, tmp_path: Path) -> None:
    declare_rljobs(kmock)
    kmock.objects[RLJOBS, "team-a", "running-job"] = _existing_job()
    kmock.objects["v1/events", "team-a", "ev1"] = {
        "metadata": {"name": "ev1", "namespace": "team-a"},
        "involvedObject": {"kind": "RLJob", "name": "running-job"},
        "type": "Warning",
        "reason": "GPUsUnschedulable",
        "message": "0/3 nodes have nvidia.com/gpu",
        "count": 2,
    }
    _install_reviews(kmock)
    config = load_cluster_config(str(write_kubeconfig(tmp_path / "kc", str(kmock.url))))
    client = KubeClient(config)
    app = create_app(KubeBackend(client), KubeAuth(client))

    with serve(app) as base:
        async with aiohttp.ClientSession(base) as http:
            await _reads(kmock, http)
            await _writes(kmock, http)

    lists = [
        r for r in kmock if r.method == "GET" and "rljobs" in r.url.path and "watch" not in r.params
    ]
    assert len(lists) == 1  # one list; everything after came from the watch
    reviews = [r for r in kmock if r.method == "POST" and r.url.path.endswith("/tokenreviews")]
    assert len(reviews) == 3  # nobody, bob, alice: each valid token reviewed once (cached)


async def _reads(kmock: Any, http: aiohttp.ClientSession) -> None:
    async def listed() -> list[dict[str, Any]]:
        async with http.get("/api/jobs") as resp:
            assert resp.status == 200
            jobs: list[dict[str, Any]] = await resp.json()
        assert [j["name"] for j in jobs] == ["running-job"]
        return jobs

    (job,) = await _eventually(listed)
    assert job["phase"] == "Running" and job["step"] == 3 and job["accuracy"] == 0.25
    async with http.get("/api/jobs/team-a/running-job") as resp:
        detail = await resp.json()
    assert detail["conditions"][0]["reason"] == "RayJobRunning"
    assert detail["events"] == [
        {
            "type": "Warning",
            "reason": "GPUsUnschedulable",
            "message": "0/3 nodes have nvidia.com/gpu",
            "count": 2,
            "lastTimestamp": None,
        }
    ]
    async with http.get("/api/jobs/team-a/running-job/metrics") as resp:
        series = (await resp.json())["series"]
    assert series["reward/accuracy"] == {
        "steps": [1, 2, 3],
        "values": [0.1, 0.2, 0.25],
        "nonfinite": [],
    }
    assert series["reflection/rate"] == {"steps": [3], "values": [0.5], "nonfinite": []}

    # The trainer patches the status: the service sees it through the watch.
    async with kmock.patch(
        "/apis/eureka.dev/v1alpha1/namespaces/team-a/rljobs/running-job/status",
        json={
            "status": {
                "progress": {"step": 4, "totalSteps": 100},
                "metrics": {"reward/accuracy": 0.5},
                "recentSamples": [{"step": 4, "prompt": "q", "response": "Hmm.", "rewards": {}}],
            }
        },
        headers={"Content-Type": "application/merge-patch+json"},
    ) as resp:
        assert resp.status == 200

    async def updated() -> None:
        async with http.get("/api/jobs") as resp:
            (row,) = await resp.json()
        assert row["step"] == 4 and row["accuracy"] == 0.5

    await _eventually(updated)
    async with http.get("/api/jobs/team-a/running-job/metrics") as resp:
        rate = (await resp.json())["series"]["reflection/rate"]
    assert rate == {
        "steps": [3, 4],
        "values": [0.5, 1.0],
        "nonfinite": [],
    }  # accumulated across status versions
    async with http.get("/api/jobs/team-a/running-job/samples") as resp:
        samples = await resp.json()
    # The status now holds only the step-4 sample; the service kept the earlier ones too.
    assert [s["step"] for s in samples["samples"]] == [4, 3, 3]
    assert samples["steps"] == [4, 3] and samples["total"] == 3
    async with http.get("/api/jobs/team-a/absent") as resp:
        assert resp.status == 404


async def _writes(kmock: Any, http: aiohttp.ClientSession) -> None:
    body = JOB_YAML.format(name="new-job")
    yaml_headers = {"Content-Type": "application/yaml"}
    async with http.post("/api/jobs", data=body, headers=yaml_headers) as resp:
        assert resp.status == 401
    async with http.post(
        "/api/jobs", data=body, headers={**yaml_headers, "Authorization": "Bearer nobody"}
    ) as resp:
        assert resp.status == 401
    async with http.post(
        "/api/jobs", data=body, headers={**yaml_headers, "Authorization": "Bearer bob-token"}
    ) as resp:
        assert resp.status == 403
        assert "bob may not create RLJobs in team-a" in (await resp.json())["detail"]
    alice = {**yaml_headers, "Authorization": "Bearer alice-token"}
    async with http.post("/api/jobs", data=body, headers=alice) as resp:
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["name"] == "new-job"
    stored = kmock.objects[RLJOBS, "team-a", "new-job"]
    assert stored["spec"]["model"]["name"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert stored["spec"]["runPolicy"]["suspend"] is False  # defaults filled in by the model
    async with http.post("/api/jobs", data=body, headers=alice) as resp:
        assert resp.status == 409

    async with http.post("/api/jobs/team-a/new-job/suspend", headers=alice) as resp:
        assert resp.status == 200
    assert kmock.objects[RLJOBS, "team-a", "new-job"]["spec"]["runPolicy"]["suspend"] is True
    async with http.post("/api/jobs/team-a/new-job/resume", headers=alice) as resp:
        assert resp.status == 200
    assert kmock.objects[RLJOBS, "team-a", "new-job"]["spec"]["runPolicy"]["suspend"] is False

    async with http.delete(
        "/api/jobs/team-a/new-job", headers={"Authorization": "Bearer bob-token"}
    ) as resp:
        assert resp.status == 403
    async with http.delete("/api/jobs/team-a/new-job", headers=alice) as resp:
        assert resp.status == 204

    async def gone() -> None:
        async with http.get("/api/jobs") as resp:
            assert [j["name"] for j in await resp.json()] == ["running-job"]

    await _eventually(gone)
    async with http.delete("/api/jobs/team-a/new-job", headers=alice) as resp:
        assert resp.status == 404
