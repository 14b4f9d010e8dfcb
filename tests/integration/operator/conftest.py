"""An API emulator with the RLJob and KubeRay CRDs, and the real kopf operator running against it."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import pytest
import pytest_asyncio
import yaml

from eureka_operator.crd import build_crd
from eureka_operator.main import Options, serve
from tests.integration.operator.emulator import RAYJOBS, RLJOBS, Emulator, kubeconfig, register_all

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
NS = "team-a"


def small_rljob(name: str, **overrides: Any) -> dict[str, Any]:
    """A valid RLJob: colocated CPU pool (hf rollout, torch learner) unless overridden."""
    spec: dict[str, Any] = {
        "model": {"name": "tiny/model", "family": "qwen2_vl", "dtype": "float32"},
        "data": {"trainFiles": ["/data/train.jsonl"]},
        "algorithm": {
            "estimator": "grpo",
            "samplesPerPrompt": 2,
            "rolloutBatchSize": 2,
            "trainBatchSize": 4,
        },
        "rollout": {"backend": "hf"},
        "learner": {"backend": "torch"},
        "checkpoint": {"storage": {"claimName": "ckpt", "path": "/ckpt"}},
    }
    for key, value in overrides.items():
        spec[key] = value
    return {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }


class Cluster:
    """Test-side access to the emulator: create and patch objects over HTTP, wait for state."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str | None = None
    ) -> Any:
        headers = {"Content-Type": content_type} if content_type else {}
        async with self.emu.request(method, path, json=body, headers=headers) as resp:
            data = await resp.json()
            assert resp.status < 400, (
                method,
                path,
                resp.status,
                data.get("message"),
                str(data.get("details"))[-600:],
            )
            return data

    async def create_rljob(self, obj: dict[str, Any]) -> Any:
        return await self.request("post", f"/apis/eureka.dev/v1alpha1/namespaces/{NS}/rljobs", obj)

    async def patch_rljob(self, name: str, body: dict[str, Any]) -> Any:
        path = f"/apis/eureka.dev/v1alpha1/namespaces/{NS}/rljobs/{name}"
        return await self.request("patch", path, body, "application/merge-patch+json")

    async def delete(self, path: str) -> Any:
        return await self.request("delete", path)

    async def set_rayjob_status(self, name: str, status: dict[str, Any]) -> Any:
        """What KubeRay would write."""
        path = f"/apis/ray.io/v1/namespaces/{NS}/rayjobs/{name}/status"
        return await self.request("patch", path, {"status": status}, "application/merge-patch+json")

    def rljob(self, name: str) -> dict[str, Any] | None:
        return self.emu.obj(RLJOBS, NS, name)

    def rayjob(self, name: str) -> dict[str, Any] | None:
        return self.emu.obj(RAYJOBS, NS, name)

    def status(self, name: str) -> dict[str, Any]:
        return (self.rljob(name) or {}).get("status") or {}

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        for cond in self.status(name).get("conditions") or []:
            if cond.get("type") == kind:
                return dict(cond)
        return {}

    def events(self, name: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.emu.objs("v1/events", NS)
            if e.get("involvedObject", {}).get("name") == name
            and e.get("involvedObject", {}).get("kind") == "RLJob"
        ]

    async def wait(self, what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.05)


@functools.cache
def rljob_crd() -> dict[str, Any]:
    return build_crd()


@pytest_asyncio.fixture
async def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Cluster]:
    async with Emulator() as emu, kmock.Server(emu) as server:
        register_all(emu, rljob_crd())
        monkeypatch.setenv(
            "KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", str(server.url).rstrip("/")))
        )
        yield Cluster(emu)


class OperatorRunner:
    """Starts and stops the real operator (kopf) in a thread with its own event loop.

    A thread, as kopf documents for embedding: at exit kopf cancels every task it did not start
    in its loop, which must not include the test's own tasks.
    """

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options(standalone=True, metrics_port=0)
        self.thread: threading.Thread | None = None
        self.stop_flag = threading.Event()

    async def start(self) -> None:
        self.stop_flag = threading.Event()
        ready = threading.Event()

        def main() -> None:
            asyncio.run(serve(self.options, stop_flag=self.stop_flag, ready_flag=ready))

        self.thread = threading.Thread(target=main, name="operator", daemon=True)
        self.thread.start()
        assert await asyncio.to_thread(ready.wait, 30), "the operator did not start"

    async def stop(self) -> None:
        if self.thread is None:
            return
        self.stop_flag.set()
        await asyncio.to_thread(self.thread.join, 30)
        assert not self.thread.is_alive(), "the operator did not stop"
        self.thread = None


@pytest_asyncio.fixture
async def operator(cluster: Cluster) -> AsyncIterator[OperatorRunner]:
    runner = OperatorRunner()
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def load_example(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "manifests" / "examples" / name).read_text())
    doc["metadata"]["namespace"] = NS
    return doc
