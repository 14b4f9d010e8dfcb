"""`eureka serve --runs DIR` as a user starts it: a process, a URL and a token on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.unit.service.rundir import write_run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_eureka_serve_runs(tmp_path: Path) -> None:
    write_run(tmp_path, "demo", steps=12)
    env = {k: v for k, v in os.environ.items() if k != "EUREKA_SERVICE_TOKEN"}
    command = [
        sys.executable,
        "-m",
        "eureka_operator.cli",
        "serve",
        "--runs",
        str(tmp_path),
        "--port",
        "0",  # a free port, chosen at bind time: the printed URL must be the bound one
        "--log-level",
        "warning",
        "--allowed-host",
        "runs.lab.example",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        lines = [proc.stdout.readline() for _ in range(4)]  # type: ignore[union-attr]
        url = lines[1].strip().removeprefix("dashboard: ")
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        token = lines[3].strip().removeprefix("write token: ")
        jobs = _get_json(f"http://127.0.0.1:{port}/api/jobs")
        assert [(j["name"], j["step"]) for j in jobs] == [("demo", 12)]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/jobs/local/demo/suspend",
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 405  # authenticated, but a local run cannot be suspended
        # --allowed-host reaches the app: that name is answered, any other is refused.
        named = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/jobs", headers={"Host": "runs.lab.example"}
        )
        with urllib.request.urlopen(named, timeout=5) as resp:
            assert resp.status == 200
        foreign = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/jobs", headers={"Host": "evil.example"}
        )
        with pytest.raises(urllib.error.HTTPError) as rebound:
            urllib.request.urlopen(foreign, timeout=5)
        assert rebound.value.code == 421
    finally:
        proc.terminate()
        proc.wait(10)


def _get_json(url: str) -> object:
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return json.loads(resp.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
