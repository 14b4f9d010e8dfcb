"""Hostile requests against a real uvicorn server: they cost nothing and block nobody."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from eureka_service.app import create_app
from eureka_service.auth import LocalTokenAuth
from tests.integration.service.server import serve
from tests.unit.config.test_checks import laughs
from tests.unit.service.rundir import write_run
from tests.unit.service.writable import RecordingBackend

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]
TOKEN = "hostile-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    root = tmp_path_factory.mktemp("runs")
    write_run(root, "demo", steps=5)
    with serve(create_app(RecordingBackend(root), LocalTokenAuth(TOKEN))) as url:
        parts = urlsplit(url)
        yield str(parts.hostname), int(parts.port or 80)


def request(
    address: tuple[str, int], method: str, path: str, body: str | None = None, **headers: str
) -> tuple[int, bytes, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection(*address, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers)
        answer = conn.getresponse()
        return answer.status, answer.read(), time.perf_counter() - start
    finally:
        conn.close()


def test_an_alias_bomb_is_refused_within_a_second_and_healthz_stays_fast(
    address: tuple[str, int],
) -> None:
    body = laughs(9)  # < 1 KB, 10**9 values once expanded
    results: list[tuple[int, bytes, float]] = []
    bombs = [
        threading.Thread(
            target=lambda: results.append(
                request(address, "POST", "/api/jobs", body, Authorization=f"Bearer {TOKEN}")
            )
        )
        for _ in range(4)
    ]
    for thread in bombs:
        thread.start()
    health = [request(address, "GET", "/healthz") for _ in range(10)]
    for thread in bombs:
        thread.join(20)
    assert len(results) == 4
    for status, payload, seconds in results:
        assert status == 422 and b"through aliases" in payload
        assert seconds < 1.0, seconds
    assert all(status == 200 for status, _, _ in health)
    assert max(seconds for _, _, seconds in health) < 0.5


def test_a_foreign_host_is_refused(address: tuple[str, int]) -> None:
    # DNS rebinding: the attacker's name resolves to this loopback server.
    status, payload, _ = request(address, "GET", "/api/jobs", Host="attacker.example:8080")
    assert status == 421 and b"attacker.example" in payload
    assert request(address, "GET", "/api/jobs")[0] == 200  # Host: 127.0.0.1:<port>
    assert request(address, "GET", "/api/jobs", Host=f"localhost:{address[1]}")[0] == 200


def test_an_anonymous_bomb_is_never_read(address: tuple[str, int]) -> None:
    status, _, seconds = request(address, "POST", "/api/jobs", laughs(9))
    assert status == 401 and seconds < 0.5


def test_the_token_passes_on_a_real_server(address: tuple[str, int]) -> None:
    small = laughs(2).replace("metadata: {name: a}", "metadata: {name: small}")
    status, payload, _ = request(
        address, "POST", "/api/jobs", small, Authorization=f"Bearer {TOKEN}"
    )
    assert status == 201, payload
