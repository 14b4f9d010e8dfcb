"""The Kubernetes status sink: the trainer's progress merged into `RLJob.status`.

`KubeStatusSink` patches (JSON merge patch, `status` subresource) only the fields the trainer
owns: `progress`, `metrics` (latest values), `curves` (bounded, see `curves.py`) and
`recentSamples` (text truncated). The operator owns `phase` and `conditions` and learns the end
of training from the RayJob, so the sink never writes them, not even in `finished()`.

Patches are sent by a background thread (the training loop only updates in-memory state, so a
slow or unreachable API server never stalls a step), at most one per `min_interval` seconds;
`finished()` always flushes the final state (waiting at most `final_timeout`). A failed patch is
retried a few times, then counted and logged: the sink never raises into the training loop.

The cluster connection comes from the pod's service account (token and CA under
/var/run/secrets/kubernetes.io/serviceaccount) or from a kubeconfig (`KUBECONFIG`, for tests and
e2e). Plain standard-library HTTP: no Kubernetes client is needed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eureka_trainer.config.loader import GROUP, PLURAL, VERSION
from eureka_trainer.config.status import Progress, Sample
from eureka_trainer.reporting.base import FinalPhase
from eureka_trainer.reporting.curves import CurveSet

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
MAX_SAMPLE_TEXT = 2000
"""Characters kept of a sample's prompt and response in the status."""
RECENT_SAMPLES = 4
"""Samples kept in `status.recentSamples`."""
RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})
"""HTTP statuses worth a retry; other errors are counted at once."""


class ClusterConfigError(RuntimeError):
    """No usable cluster connection (neither in-cluster nor a kubeconfig)."""


@dataclass(frozen=True)
class ClusterConfig:
    """How to reach the API server: base URL, bearer token and TLS material."""

    server: str
    token: str | None = None
    namespace: str = "default"
    ca_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    insecure: bool = False

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS context for https servers (None for plain http, e.g. the test emulator)."""
        if not self.server.startswith("https"):
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert_file:
            context.load_cert_chain(self.client_cert_file, self.client_key_file)
        return context

    def headers(self) -> dict[str, str]:
        """Authorization header when a token is configured."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def load_cluster_config(kubeconfig: str | None = None) -> ClusterConfig:
    """In-cluster service account first, else the kubeconfig (argument, `KUBECONFIG`, ~/.kube/config)."""
    host, port = (
        os.environ.get("KUBERNETES_SERVICE_HOST"),
        os.environ.get("KUBERNETES_SERVICE_PORT"),
    )
    token_file = SERVICE_ACCOUNT_DIR / "token"
    if kubeconfig is None and host and port and token_file.exists():
        namespace_file = SERVICE_ACCOUNT_DIR / "namespace"
        return ClusterConfig(
            server=f"https://{host}:{port}",
            token=token_file.read_text().strip(),
            namespace=namespace_file.read_text().strip() if namespace_file.exists() else "default",
            ca_file=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
        )
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = path or str(Path.home() / ".kube" / "config")
    if not Path(path).exists():
        raise ClusterConfigError(f"no in-cluster service account and no kubeconfig at {path}")
    return parse_kubeconfig(Path(path).read_text(encoding="utf-8"), base_dir=Path(path).parent)


def parse_kubeconfig(text: str, base_dir: Path = Path()) -> ClusterConfig:
    """The current context of a kubeconfig: server, token or client certificate, CA."""
    doc = yaml.safe_load(text) or {}
    current = doc.get("current-context")
    context = _named(doc.get("contexts"), current, "context")
    cluster = _named(doc.get("clusters"), context.get("cluster"), "cluster")
    user = _named(doc.get("users"), context.get("user"), "user") if context.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise ClusterConfigError(
            "kubeconfig users with exec/auth-provider plugins are not supported"
        )
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base_dir / user["tokenFile"]).read_text().strip()
    if "server" not in cluster:
        raise ClusterConfigError(f"kubeconfig cluster {context.get('cluster')!r} has no server")
    return ClusterConfig(
        server=str(cluster["server"]).rstrip("/"),
        token=token,
        namespace=str(context.get("namespace") or "default"),
        ca_file=_material(cluster, "certificate-authority", base_dir),
        client_cert_file=_material(user, "client-certificate", base_dir),
        client_key_file=_material(user, "client-key", base_dir),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
    )


def _named(items: Any, name: Any, what: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return dict(item.get(what) or {})
    raise ClusterConfigError(f"kubeconfig: no {what} named {name!r}")


def _material(section: Mapping[str, Any], key: str, base_dir: Path) -> str | None:
    """A file path for `key` or `key-data` (inline base64 is written to a private temp file)."""
    if section.get(key):
        return str(base_dir / section[key])
    data = section.get(f"{key}-data")
    if not data:
        return None
    handle = tempfile.NamedTemporaryFile(prefix="eureka-kube-", delete=False)  # noqa: SIM115
    with handle:
        handle.write(base64.b64decode(data))
    return handle.name


class ApiError(RuntimeError):
    """The API server answered with an error status."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(f"HTTP {status}: {message}")


def request_json(
    config: ClusterConfig,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    timeout: float = 10.0,
) -> Any:
    """One API call; the decoded JSON answer, or `ApiError` with the server's message."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Accept": "application/json", **config.headers()}
    if data is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(
        config.server + path, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=config.ssl_context()) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        detail = err.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = json.loads(detail).get("message", detail)
        raise ApiError(err.code, str(detail)[:500]) from None


def truncate(text: str, limit: int = MAX_SAMPLE_TEXT) -> str:
    """At most `limit` characters, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class KubeStatusSink:
    """`StatusSink` that merges progress, metrics, curves and samples into `RLJob.status`."""

    name: str | None = None
    namespace: str | None = None
    config: ClusterConfig | None = None
    min_interval: float = 10.0
    """Seconds between two patches (the final state is always sent)."""
    retries: int = 3
    """Attempts per patch before it is counted as failed."""
    backoff: float = 0.5
    """Seconds before the first retry (doubles each time)."""
    timeout: float = 5.0
    """Seconds one HTTP request may take."""
    background: bool = True
    """Send patches from a worker thread (False: synchronously, in the caller; for tests)."""
    final_timeout: float = 30.0
    """Seconds `finished()` waits for the final patch."""
    heartbeat_seconds: float = 60.0
    """With no step reported for this long, the worker still patches `progress.heartbeatTime`
    (a slow step is not a dead trainer)."""
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    failures: int = 0
    """Patches that failed after every retry."""
    patches: int = 0
    """Patches the API server accepted."""
    _curves: CurveSet = field(default_factory=CurveSet)
    _progress: Progress = field(default_factory=Progress)
    _metrics: dict[str, float] = field(default_factory=dict)
    _samples: list[dict[str, Any]] = field(default_factory=list)
    _last_patch: float | None = None
    _dirty: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _wake: threading.Event = field(default_factory=threading.Event, repr=False)
    _finish: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.name = self.name or os.environ.get("EUREKA_RLJOB_NAME")
        if not self.name:
            raise ClusterConfigError("KubeStatusSink needs a job name (or EUREKA_RLJOB_NAME)")
        if self.config is None:
            self.config = load_cluster_config()
        env_namespace = os.environ.get("EUREKA_RLJOB_NAMESPACE")
        self.namespace = self.namespace or env_namespace or self.config.namespace

    @property
    def path(self) -> str:
        """URL path of the RLJob's status subresource."""
        base = f"/apis/{GROUP}/{VERSION}/namespaces/{self.namespace}/{PLURAL}/{self.name}"
        return base + "/status"

    def started(self, total_steps: int | None, progress: Progress | None = None) -> None:
        with self._lock:
            base = progress if progress is not None else self._progress
            self._progress = base.model_copy(update={"total_steps": total_steps})
            self._dirty = True
        self._kick()

    def report(
        self, progress: Progress, metrics: Mapping[str, float], samples: Sequence[Sample]
    ) -> None:
        with self._lock:
            self._progress = progress
            self._metrics.update({k: float(v) for k, v in metrics.items() if _finite(v)})
            self._curves.add(progress.step, metrics)
            recent = [_sample_dict(s) for s in samples] + self._samples
            self._samples = recent[:RECENT_SAMPLES]
            self._dirty = True
        self._kick()

    def finished(self, phase: FinalPhase, message: str = "", reason: str = "") -> None:
        # The phase is the operator's (it watches the RayJob end); only the final data is ours.
        log.info(
            "training %s%s%s; flushing the final status",
            phase,
            f" ({reason})" if reason else "",
            f": {message}" if message else "",
        )
        if not self.background:
            self._flush(force=True)
            return
        self._finish.set()
        self._wake.set()
        if self._thread is None:
            self._flush(force=True)
            return
        self._thread.join(self.final_timeout)
        if self._thread.is_alive():
            log.error("final status of %s not sent within %.0fs", self.path, self.final_timeout)

    def _kick(self) -> None:
        """A patch is due: send it now when the interval allows (synchronous mode), or wake the worker."""
        if not self.background:
            if self._last_patch is None or self.clock() - self._last_patch >= self.min_interval:
                self._flush()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kube-status-sink", daemon=True)
            self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        """Worker: one patch per wake-up, no sooner than `min_interval` after the previous one."""
        while not self._finish.is_set():
            if not self._wake.wait(self.heartbeat_seconds):
                with self._lock:
                    self._dirty = True  # nothing new: a heartbeat-only patch
            self._wake.clear()
            if self._last_patch is not None:
                due = self._last_patch + self.min_interval - self.clock()
                self._finish.wait(max(0.0, due))  # finished() cuts the wait short
            if not self._finish.is_set():
                self._flush()
        self._flush(force=True)

    def status_patch(self) -> dict[str, Any]:
        """The merge patch: only trainer-owned fields, never phase or conditions."""
        with self._lock:
            return self._status_patch()

    def _status_patch(self) -> dict[str, Any]:
        progress = self._progress.model_dump(by_alias=True, mode="json", exclude_none=True)
        progress["heartbeatTime"] = _now_rfc3339()
        return {
            "status": {
                "progress": progress,
                "metrics": dict(sorted(self._metrics.items())),
                "curves": self._curves.to_status(),
                "recentSamples": self._samples,
            }
        }

    def _flush(self, force: bool = False) -> None:
        assert self.config is not None
        with self._lock:
            if not (self._dirty or force):
                return
            body, self._dirty = self._status_patch(), False
        delay, content_type = self.backoff, "application/merge-patch+json"
        for attempt in range(1, self.retries + 1):
            try:
                request_json(self.config, "PATCH", self.path, body, content_type, self.timeout)
            except (OSError, ApiError, ValueError) as err:
                log.warning(
                    "status patch %d/%d of %s failed: %s", attempt, self.retries, self.path, err
                )
                if isinstance(err, ApiError) and err.status not in RETRYABLE:
                    break  # e.g. 403/404/422: asking again cannot help
                if attempt < self.retries:
                    self.sleep(delay)
                    delay *= 2
                continue
            self.patches += 1
            self._last_patch = self.clock()
            return
        with self._lock:
            self._dirty = True  # the next flush sends this state again (with whatever came since)
        self.failures += 1
        self._last_patch = self.clock()  # wait a full interval before trying again
        log.error("status of %s not updated (%d failed patches so far)", self.path, self.failures)


def _now_rfc3339() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finite(value: float) -> bool:
    number = float(value)
    return number == number and abs(number) != float("inf")


def _sample_dict(sample: Sample) -> dict[str, Any]:
    data = sample.model_dump(by_alias=True, mode="json", exclude={"image"})  # etcd: keep small
    data["prompt"] = truncate(data["prompt"])
    data["response"] = truncate(data["response"])
    data["answer"] = truncate(data["answer"], 500)
    return data
