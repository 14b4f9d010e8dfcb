"""A small asyncio client of the Kubernetes API: JSON requests and line-delimited watch streams.

The connection settings (server, token, TLS) come from `eureka_trainer.reporting.kube`, which
reads the in-cluster service account or a kubeconfig with the standard library only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from eureka_service.backend import BackendError
from eureka_trainer.reporting.kube import ClusterConfig

MAX_EVENT_BYTES = 64 << 20
"""Largest watch event accepted (etcd caps an object near 1.5 MiB; JSON is larger, not 40x)."""


class KubeApiError(BackendError):
    """The API server refused a request; carries its status code and message."""


class KubeClient:
    """JSON over HTTP to one API server (one aiohttp session, opened lazily)."""

    def __init__(self, config: ClusterConfig, timeout: float = 15.0):
        self.config = config
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            ssl = self.config.ssl_context()
            connector = aiohttp.TCPConnector(ssl=ssl if ssl is not None else False)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self.config.headers()
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """One call; the decoded answer or `KubeApiError` with the server's status and message."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._client().request(
            method,
            self.config.server + path,
            data=data,
            params=params,
            headers=headers,
            timeout=self._timeout,
        ) as resp:
            payload = await resp.read()
            if resp.status >= 400:
                raise KubeApiError(_message(payload, resp.reason), status=resp.status)
            return json.loads(payload) if payload else None

    async def watch(
        self, path: str, params: dict[str, str], timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """Events of a watch request (`{type, object}`), until the server ends the stream."""
        stream_timeout = aiohttp.ClientTimeout(total=None, sock_read=timeout + 30)
        query = {**params, "watch": "true", "timeoutSeconds": str(int(timeout))}
        async with self._client().get(
            self.config.server + path, params=query, timeout=stream_timeout
        ) as resp:
            if resp.status >= 400:
                raise KubeApiError(_message(await resp.read(), resp.reason), status=resp.status)
            # Not `async for line in resp.content`: aiohttp caps a line (512 KiB in 3.14), and
            # an RLJob with many 500-point curves can be larger.
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                if len(buffer) > MAX_EVENT_BYTES:
                    raise KubeApiError(f"watch event larger than {MAX_EVENT_BYTES} bytes", 502)
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    event = json.loads(line) if line.strip() else None
                    if isinstance(event, dict):
                        yield event


def _message(payload: bytes, reason: str | None) -> str:
    try:
        decoded = json.loads(payload)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and decoded.get("message"):
        return str(decoded["message"])
    return payload.decode(errors="replace")[:300] or str(reason)
