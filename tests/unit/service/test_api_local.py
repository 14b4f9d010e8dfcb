"""The REST API over local run directories (FastAPI TestClient, no network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from eureka_service.app import create_app
from eureka_service.auth import LocalTokenAuth
from eureka_service.local import LocalBackend
from tests.unit.service.rundir import write_run

LOCAL = "http://127.0.0.1"  # the service answers loopback Host names only (hosts.py)

TOKEN = "s3cret-token-of-the-test-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VALID = """\
apiVersion: eureka.dev/v1alpha1
kind: RLJob
metadata: {name: new-job}
spec:
  model: {name: m}
  data: {trainFiles: [a.jsonl]}
  rollout: {backend: hf}
"""


@pytest.fixture()
def runs(tmp_path: Path) -> Path:
    write_run(tmp_path, "demo", steps=30, partial_tail=True)
    write_run(tmp_path, "second", steps=4, phase="Running")
    return tmp_path


@pytest.fixture()
def client(runs: Path) -> Iterator[TestClient]:
    with TestClient(
        create_app(LocalBackend(runs), LocalTokenAuth(TOKEN)), base_url=LOCAL
    ) as test_client:
        yield test_client


def test_list_and_detail(client: TestClient) -> None:
    jobs = client.get("/api/jobs").json()
    assert {j["name"]: j["phase"] for j in jobs} == {"demo": "Succeeded", "second": "Running"}
    demo = next(j for j in jobs if j["name"] == "demo")
    assert demo["namespace"] == "local" and demo["step"] == 30 and demo["totalSteps"] == 30
    assert demo["accuracy"] == pytest.approx(0.2 + 0.6 * (1 - 2.718281828 ** (-30 / 20)), 1e-6)
    assert demo["ageSeconds"] > 0
    detail = client.get("/api/jobs/local/demo").json()
    assert detail["spec"]["model"]["name"] == "tiny-vlm"
    assert detail["status"]["completionTime"] == "2026-11-24T05:09:00Z"
    assert detail["conditions"] == [] and detail["events"] == []


def test_metrics_survive_a_half_written_line(client: TestClient, runs: Path) -> None:
    series = client.get("/api/jobs/local/demo/metrics").json()["series"]
    assert len(series) == 17  # 16 metrics of the trainer + the reflection rate
    assert series["reward/accuracy"]["steps"] == list(range(1, 31))  # the partial line 31 waits
    assert series["reflection/rate"]["values"][:15] == [0.0] * 15
    assert series["reflection/rate"]["values"][15:] == [0.5] * 15
    with (runs / "demo" / "metrics.jsonl").open("a") as out:
        out.write('5, "reward/accuracy": 0.9}\n')  # the trainer finishes line 31
    series = client.get("/api/jobs/local/demo/metrics").json()["series"]
    assert series["reward/accuracy"]["steps"][-1] == 31
    assert series["reward/accuracy"]["values"][-1] == 0.9


def test_metrics_downsampled_on_request(client: TestClient) -> None:
    series = client.get("/api/jobs/local/demo/metrics?maxPoints=7").json()["series"]
    steps = series["reward/total"]["steps"]
    assert len(steps) <= 7 and steps[0] == 1 and steps[-1] == 30
    assert client.get("/api/jobs/local/demo/metrics?maxPoints=1").status_code == 422


def test_samples_newest_first(client: TestClient) -> None:
    samples = client.get("/api/jobs/local/second/samples").json()["samples"]
    assert [s["step"] for s in samples] == [4, 4, 3, 3, 2, 2, 1, 1]
    assert samples[0]["rewards"]["total"] == 2.0


def test_a_run_appears_while_serving(client: TestClient, runs: Path) -> None:
    assert client.get("/api/jobs/local/late").status_code == 404
    write_run(runs, "late", steps=2, phase="Running")
    assert client.get("/api/jobs/local/late").json()["summary"]["step"] == 2


def test_single_run_directory(runs: Path) -> None:
    with TestClient(
        create_app(LocalBackend(runs / "demo"), LocalTokenAuth(TOKEN)), base_url=LOCAL
    ) as client:
        assert [j["name"] for j in client.get("/api/jobs").json()] == ["demo"]


def test_errors_and_input_validation(client: TestClient) -> None:
    missing = client.get("/api/jobs/local/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert client.get("/api/jobs/other-ns/demo").status_code == 404
    assert client.get("/api/jobs/local/bad%20name").status_code == 422
    assert client.get("/api/jobs/local/%2E%2E").status_code == 422
    assert client.get("/api/jobs/local/" + "a" * 300).status_code == 422


def test_writes_need_the_token(client: TestClient) -> None:
    for method, path in [
        ("POST", "/api/jobs"),
        ("POST", "/api/jobs/local/demo/suspend"),
        ("POST", "/api/jobs/local/demo/resume"),
        ("DELETE", "/api/jobs/local/demo"),
    ]:
        anonymous = client.request(method, path, content=VALID)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["WWW-Authenticate"] == "Bearer"
        wrong = client.request(method, path, content=VALID, headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
        refused = client.request(method, path, content=VALID, headers=AUTH)
        assert refused.status_code == 405  # the local backend is read-only, and says so
        assert "eureka run" in refused.json()["detail"]


def test_submitted_yaml_is_validated_like_eureka_validate(client: TestClient) -> None:
    bad = VALID.replace("{backend: hf}", "{backend: hf, temprature: 1.0}")
    answer = client.post("/api/jobs", content=bad, headers=AUTH)
    assert answer.status_code == 422
    (problem,) = answer.json()["problems"]
    assert problem == {
        "file": "<request>",
        "line": 7,
        "document": 1,
        "path": "spec.rollout.temprature",
        "message": "unknown field (check its spelling; fields are camelCase)",
    }
    syntax = client.post("/api/jobs", content="a: [1, 2", headers=AUTH)
    assert syntax.status_code == 422 and "YAML syntax" in syntax.json()["problems"][0]["message"]
    two = client.post("/api/jobs", content=VALID + "---\n" + VALID, headers=AUTH)
    assert two.status_code == 422 and "expected 1 RLJob, found 2" in two.json()["detail"]
    binary = client.post("/api/jobs", content=b"\xff\xfe", headers=AUTH)
    assert binary.status_code == 400


def test_body_size_limit(runs: Path) -> None:
    app = create_app(LocalBackend(runs), LocalTokenAuth(TOKEN), max_body_bytes=1000)
    with TestClient(app, base_url=LOCAL) as client:
        big = client.post("/api/jobs", content="#" * 2000, headers=AUTH)
        assert big.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: the stream is counted instead
            yield from [b"#" * 600, b"#" * 600]

        chunked = client.post("/api/jobs", content=chunks(), headers=AUTH)
        assert chunked.status_code == 413


def test_protected_reads(runs: Path) -> None:
    app = create_app(LocalBackend(runs), LocalTokenAuth(TOKEN), protect_reads=True)
    with TestClient(app, base_url=LOCAL) as client:
        assert client.get("/api/jobs").status_code == 401
        assert client.get("/api/jobs", headers=AUTH).status_code == 200
        assert client.get("/api/jobs/local/demo/metrics").status_code == 401


def test_openapi_dashboard_and_headers(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert {
        "/api/jobs",
        "/api/jobs/{namespace}/{name}",
        "/api/jobs/{namespace}/{name}/metrics",
        "/api/jobs/{namespace}/{name}/samples",
        "/api/jobs/{namespace}/{name}/suspend",
        "/api/jobs/{namespace}/{name}/resume",
    } <= set(spec["paths"])
    assert set(spec["paths"]["/api/jobs"]) == {"get", "post"}
    assert "delete" in spec["paths"]["/api/jobs/{namespace}/{name}"]
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/static/vendor/uplot/uPlot.iife.min.js").status_code == 200
    assert client.get("/api").json() == {
        "backend": "local",
        "writable": False,
        "protect_reads": False,
    }
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"ready": True}
    assert json.loads(client.get("/api/jobs").content)
    # Kept by the browser but revalidated each time (ETag), never stored by a shared cache.
    assert client.get("/api/jobs").headers["Cache-Control"] == "private, no-cache"
