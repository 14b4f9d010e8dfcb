"""Hostile input costs nothing: foreign Host names, alias bombs, and cheap polls (ETag, gzip)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from eureka_service.app import create_app
from eureka_service.auth import LocalTokenAuth
from eureka_service.hosts import allowed_hosts, host_name
from tests.unit.config.test_checks import laughs
from tests.unit.service.rundir import write_run
from tests.unit.service.writable import RecordingBackend

TOKEN = "hardening-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOCAL = "http://127.0.0.1:8080"


@pytest.fixture()
def backend(tmp_path: Path) -> RecordingBackend:
    run = write_run(tmp_path, "demo", steps=30, samples_per_step=2)
    status = json.loads((run / "status.json").read_text())
    status["curves"] = {"reward/accuracy": {"steps": list(range(500)), "values": [0.5] * 500}}
    status["recentSamples"] = [{"step": 30, "prompt": "p", "response": "r"}]
    (run / "status.json").write_text(json.dumps(status))
    return RecordingBackend(tmp_path)


@pytest.fixture()
def client(backend: RecordingBackend) -> Iterator[TestClient]:
    app = create_app(backend, LocalTokenAuth(TOKEN), allowed_hosts=["eureka.example.com"])
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.nip.io", "eureka.example.com.evil"])
def test_a_foreign_host_is_refused(client: TestClient, host: str) -> None:
    answer = client.get("/api/jobs", headers={"Host": host})
    assert answer.status_code == 421
    assert (
        host.split(":")[0] in answer.json()["detail"]
        and "--allowed-host" in answer.json()["detail"]
    )
    assert client.get("/", headers={"Host": host}).status_code == 421
    # Probes carry the pod IP as Host and reveal nothing: always answered.
    assert client.get("/healthz", headers={"Host": "10.1.2.3:8080"}).status_code == 200


@pytest.mark.parametrize(
    "host",
    ["localhost:8080", "127.0.0.1", "[::1]:8080", "eureka.example.com", "EUREKA.example.com."],
)
def test_loopback_and_configured_names_are_answered(client: TestClient, host: str) -> None:
    assert client.get("/api/jobs", headers={"Host": host}).status_code == 200


def test_allowed_hosts_of_the_cli() -> None:
    assert allowed_hosts("0.0.0.0", ["a.svc,b.svc", "c"]) == ["a.svc", "b.svc", "c"]
    assert allowed_hosts("10.0.0.5", []) == ["10.0.0.5"]
    assert host_name("[::1]:80") == "::1" and host_name("Example.COM:443") == "example.com"
    with TestClient(
        create_app(
            RecordingBackend(Path("/nonexistent")), LocalTokenAuth(TOKEN), allowed_hosts=["*"]
        ),
        base_url="http://anything.example",
    ) as client:
        assert client.get("/api/jobs").status_code == 200


def test_an_alias_bomb_is_refused_after_authentication(
    client: TestClient, backend: RecordingBackend
) -> None:
    body = laughs(9)
    assert client.post("/api/jobs", content=body).status_code == 401  # never parsed
    answer = client.post("/api/jobs", content=body, headers=AUTH)
    assert answer.status_code == 422
    assert "through aliases" in answer.json()["problems"][0]["message"]
    assert backend.created == []


def test_a_valid_submission_gets_the_queried_namespace(
    client: TestClient, backend: RecordingBackend
) -> None:
    text = laughs(2).replace("metadata: {name: a}", "metadata: {name: small}")
    answer = client.post("/api/jobs?namespace=team-a", content=text, headers=AUTH)
    assert answer.status_code == 201, answer.text
    assert backend.created[0]["metadata"]["namespace"] == "team-a"


def test_polls_that_changed_nothing_cost_a_304(client: TestClient) -> None:
    first = client.get("/api/jobs/local/demo/metrics")
    tag = first.headers["ETag"]
    assert tag.startswith('W/"')  # weak: one tag for the gzip and identity encodings
    again = client.get("/api/jobs/local/demo/metrics", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == tag
    other = client.get("/api/jobs/local/demo/metrics", headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200 and other.json() == first.json()


def test_answers_are_gzip_compressed(client: TestClient) -> None:
    raw = client.get("/api/jobs/local/demo/metrics", headers={"Accept-Encoding": "gzip"})
    assert raw.headers["Content-Encoding"] == "gzip"
    plain = client.get("/api/jobs/local/demo/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert len(gzip.compress(plain.content)) < len(plain.content) / 3


def test_job_detail_leaves_out_what_other_endpoints_serve(client: TestClient) -> None:
    detail = client.get("/api/jobs/local/demo").json()
    assert "curves" not in detail["status"] and "recentSamples" not in detail["status"]
    assert detail["status"]["progress"]["step"] == 30


def test_samples_by_step_and_kind(client: TestClient) -> None:
    url = "/api/jobs/local/demo/samples"
    everything = client.get(url, params={"limit": 1000}).json()
    assert everything["total"] == 60 and everything["steps"] == list(range(30, 0, -1))
    step = client.get(url, params={"step": 20}).json()
    assert [s["step"] for s in step["samples"]] == [20, 20] and step["total"] == 2
    reflective = client.get(url, params={"kind": "reflective", "limit": 5}).json()
    assert reflective["total"] == 15 and len(reflective["samples"]) == 5
    assert all("Wait" in s["response"] for s in reflective["samples"])
    assert client.get(url, params={"kind": "wrong"}).json()["total"] == 0  # accuracy 1.0 in all
    assert client.get(url, params={"kind": "correct"}).json()["total"] == 60
    assert client.get(url, params={"kind": "nonsense"}).status_code == 422


def test_a_silent_running_run_is_stale(tmp_path: Path) -> None:
    import os
    import time

    run = write_run(tmp_path, "quiet", steps=3, phase="Running")
    write_run(tmp_path, "busy", steps=3, phase="Running")
    write_run(tmp_path, "done", steps=3, phase="Succeeded")
    hour_ago = time.time() - 3600
    for name in ("metrics.jsonl", "status.json"):
        os.utime(run / name, (hour_ago, hour_ago))
        os.utime(tmp_path / "done" / name, (hour_ago, hour_ago))
    app = create_app(RecordingBackend(tmp_path), LocalTokenAuth(TOKEN))
    with TestClient(app, base_url=LOCAL) as client:
        jobs = {j["name"]: j for j in client.get("/api/jobs").json()}
    assert jobs["quiet"]["stale"] and jobs["quiet"]["phase"] == "Running"
    assert jobs["quiet"]["lastUpdate"].startswith(time.strftime("%Y-%m-%d", time.gmtime(hour_ago)))
    assert not jobs["busy"]["stale"] and not jobs["done"]["stale"]  # finished runs are quiet


def test_the_cluster_heartbeat_is_the_last_status_write() -> None:
    from eureka_service.kube import _summary

    obj = {
        "metadata": {
            "namespace": "ns",
            "name": "job",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [
                {"manager": "kubectl", "time": "2026-01-01T00:00:00Z"},
                {"manager": "eureka", "subresource": "status", "time": "2026-01-01T01:00:00Z"},
                {"manager": "operator", "subresource": "status", "time": "2026-01-01T00:30:00Z"},
            ],
        },
        "status": {"phase": "Running", "metrics": {"time/step": 5.0}},
    }
    summary = _summary(obj)
    assert summary.last_update == "2026-01-01T01:00:00Z" and summary.stale
    obj["status"]["phase"] = "Suspended"
    assert not _summary(obj).stale


def test_the_namespace_is_read_from_the_nodes_before_the_parse() -> None:
    from eureka_service.app import declared_namespace

    assert declared_namespace("metadata: {name: a, namespace: team-b}\nspec: {}\n") == "team-b"
    assert declared_namespace(laughs(9).replace("{name: a}", "{name: a, namespace: x}")) == "x"
    assert declared_namespace("metadata: {name: a}\n") is None
    assert declared_namespace("a: [1, 2") is None


def test_query_and_body_namespaces_must_agree(client: TestClient) -> None:
    text = laughs(2).replace("metadata: {name: a}", "metadata: {name: a, namespace: team-b}")
    answer = client.post("/api/jobs?namespace=team-a", content=text, headers=AUTH)
    assert answer.status_code == 422 and "team-b" in answer.json()["detail"]
