"""The Kubernetes backend: RLJobs from a watch-fed cache, writes straight to the API server.

One list, then one long watch (resumed from the last resourceVersion; a relist only when the
server says the version expired), so reading the job table costs no API call. Events are read
per job page, filtered to the job. The reflection rate is accumulated from every version of
`status.recentSamples` the watch delivers, so it covers more steps than the status holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from typing import Any

from eureka_service.backend import (
    BackendError,
    Conflict,
    JobDetail,
    JobEvent,
    JobSummary,
    Metrics,
    NotFound,
    NotReady,
    Samples,
    Series,
    detail_status,
    summary_of,
)
from eureka_service.kubeclient import KubeApiError, KubeClient
from eureka_service.reflection import ReflectionRate
from eureka_trainer.config import GROUP, KIND, PLURAL, VERSION

log = logging.getLogger(__name__)

Key = tuple[str, str]
SEEN_SAMPLES = 5000
"""Sample identities remembered per job so a sample is counted once across status versions."""
KEPT_SAMPLES = 500
"""Samples kept per job from every status version the watch delivered (the status holds 8)."""


class _Expired(Exception):
    """The watch's resourceVersion is too old: list again."""


class _JobReflection:
    """What the watch has shown of a job's samples: the reflection rate and the newest samples."""

    def __init__(self) -> None:
        self.rate = ReflectionRate()
        self.seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self.kept: deque[dict[str, Any]] = deque(maxlen=KEPT_SAMPLES)

    def add(self, samples: Any) -> None:
        for sample in samples if isinstance(samples, list) else []:
            if not isinstance(sample, dict):
                continue
            key = (sample.get("step"), str(sample.get("prompt"))[:200], sample.get("response"))
            if key in self.seen:
                continue
            self.seen[key] = None
            if len(self.seen) > SEEN_SAMPLES:
                self.seen.popitem(last=False)
            self.rate.add(sample)
            self.kept.append(sample)


class KubeBackend:
    """`JobBackend` over `rljobs.eureka.dev` (all namespaces, or the one given)."""

    kind = "kubernetes"
    writable = True

    def __init__(
        self,
        client: KubeClient,
        namespace: str | None = None,
        default_namespace: str = "default",
        watch_timeout: float = 300.0,
        retry_delay: float = 2.0,
        ready_timeout: float = 10.0,
    ):
        self.client = client
        self.namespace = namespace
        self.default_namespace = namespace or default_namespace
        self.watch_timeout = watch_timeout
        self.retry_delay = retry_delay
        self.ready_timeout = ready_timeout
        self._jobs: dict[Key, dict[str, Any]] = {}
        self._reflection: dict[Key, _JobReflection] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _collection(self, namespace: str | None) -> str:
        scope = f"/namespaces/{namespace}" if namespace else ""
        return f"/apis/{GROUP}/{VERSION}{scope}/{PLURAL}"

    def _object_path(self, namespace: str, name: str) -> str:
        return f"{self._collection(namespace)}/{name}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._sync_forever(), name="rljob-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()

    def ready(self) -> bool:
        return self._ready.is_set()

    async def _sync_forever(self) -> None:
        while True:
            try:
                version = await self._list()
                while True:
                    version = await self._watch(version)
            except asyncio.CancelledError:
                raise
            except _Expired:
                log.info("watch of RLJobs expired; listing again")
            except Exception as err:  # the cache must outlive any API hiccup
                log.warning("RLJob watch failed (%s); retrying in %.0fs", err, self.retry_delay)
                await asyncio.sleep(self.retry_delay)

    async def _list(self) -> str:
        listing = await self.client.request("GET", self._collection(self.namespace))
        fresh: dict[Key, dict[str, Any]] = {}
        for item in listing.get("items") or []:
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", KIND)
            fresh[_key(item)] = item
        self._jobs = fresh
        for key, item in fresh.items():
            self._note_samples(key, item)
        self._ready.set()
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        params = {"allowWatchBookmarks": "true"}
        if version:
            params["resourceVersion"] = version
        path = self._collection(self.namespace)
        async for event in self.client.watch(path, params, self.watch_timeout):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Expired()
                raise KubeApiError(str(obj.get("message", "watch error")), status=obj.get("code"))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind == "BOOKMARK":
                continue
            if kind == "DELETED":
                self._jobs.pop(_key(obj), None)
                self._reflection.pop(_key(obj), None)
            elif kind in ("ADDED", "MODIFIED"):
                self._put(obj)
        return version

    def _put(self, obj: dict[str, Any]) -> None:
        key = _key(obj)
        self._jobs[key] = obj
        self._note_samples(key, obj)

    def _note_samples(self, key: Key, obj: dict[str, Any]) -> None:
        samples = (obj.get("status") or {}).get("recentSamples")
        self._reflection.setdefault(key, _JobReflection()).add(samples)

    async def _synced(self) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), self.ready_timeout)
        except TimeoutError:
            raise NotReady("not yet synchronised with the Kubernetes API server") from None

    async def _get(self, namespace: str, name: str) -> dict[str, Any]:
        await self._synced()
        obj = self._jobs.get((namespace, name))
        if obj is None:
            raise NotFound(f"RLJob {namespace}/{name} not found")
        return obj

    async def list_jobs(self) -> list[JobSummary]:
        await self._synced()
        rows = [_summary(obj) for obj in list(self._jobs.values())]
        return sorted(rows, key=lambda row: row.created or "", reverse=True)

    async def get_job(self, namespace: str, name: str) -> JobDetail:
        obj = await self._get(namespace, name)
        status = obj.get("status") or {}
        conditions = status.get("conditions")
        return JobDetail(
            namespace=namespace,
            name=name,
            summary=_summary(obj),
            spec=obj.get("spec") or {},
            status=detail_status(status),
            conditions=conditions if isinstance(conditions, list) else [],
            events=await self._events(namespace, name),
        )

    async def _events(self, namespace: str, name: str) -> list[JobEvent]:
        selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
        try:
            listing = await self.client.request(
                "GET", f"/api/v1/namespaces/{namespace}/events", params={"fieldSelector": selector}
            )
        except (BackendError, OSError) as err:  # events are a courtesy: the page works without
            log.warning("events of %s/%s unavailable: %s", namespace, name, err)
            return []
        events = [
            _event(item)
            for item in (listing or {}).get("items") or []
            if (item.get("involvedObject") or {}).get("name") == name
            and (item.get("involvedObject") or {}).get("kind") == KIND
        ]
        return sorted(events, key=lambda e: e.last_timestamp or "", reverse=True)

    async def get_metrics(self, namespace: str, name: str) -> Metrics:
        obj = await self._get(namespace, name)
        curves = (obj.get("status") or {}).get("curves") or {}
        series: dict[str, Series] = {}
        for metric, curve in curves.items():
            steps, values = curve.get("steps") or [], curve.get("values") or []
            if len(steps) == len(values):
                series[metric] = Series(steps=steps, values=values)
        steps, rates = self._reflection.get((namespace, name), _JobReflection()).rate.series()
        if steps and "reflection/rate" not in series:  # trainers before the rate was a metric
            series["reflection/rate"] = Series(steps=steps, values=rates)
        return Metrics(series=dict(sorted(series.items())))

    async def get_samples(self, namespace: str, name: str) -> Samples:
        obj = await self._get(namespace, name)
        kept = self._reflection.get((namespace, name))
        if kept is not None and kept.kept:  # every sample the watch showed, newest step first
            ordered = sorted(kept.kept, key=_step_of, reverse=True)
            return Samples(samples=ordered)
        samples = (obj.get("status") or {}).get("recentSamples") or []
        return Samples(samples=[s for s in samples if isinstance(s, dict)])

    async def create(self, job: dict[str, Any]) -> JobSummary:
        metadata = job.setdefault("metadata", {})
        namespace = metadata.get("namespace") or self.default_namespace
        if self.namespace and namespace != self.namespace:
            raise BackendError(f"this service manages namespace {self.namespace!r} only", 403)
        metadata["namespace"] = namespace
        job.pop("status", None)  # the status is the operator's and the trainer's
        try:
            created = await self.client.request("POST", self._collection(namespace), job)
        except KubeApiError as err:
            if err.status == 409:
                raise Conflict(f"RLJob {namespace}/{metadata.get('name')} already exists") from None
            raise
        self._put(created)  # visible at once, before the watch delivers it
        return _summary(created)

    async def set_suspend(self, namespace: str, name: str, suspend: bool) -> JobSummary:
        patch = {"spec": {"runPolicy": {"suspend": suspend}}}
        path = self._object_path(namespace, name)
        try:
            updated = await self.client.request(
                "PATCH", path, patch, content_type="application/merge-patch+json"
            )
        except KubeApiError as err:
            raise _not_found(err, namespace, name) from None
        self._put(updated)
        return _summary(updated)

    async def delete(self, namespace: str, name: str) -> None:
        try:
            await self.client.request("DELETE", self._object_path(namespace, name))
        except KubeApiError as err:
            raise _not_found(err, namespace, name) from None


def _step_of(sample: dict[str, Any]) -> int:
    step = sample.get("step")
    return step if isinstance(step, int) else -1


def _key(obj: dict[str, Any]) -> Key:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _summary(obj: dict[str, Any]) -> JobSummary:
    namespace, name = _key(obj)
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    return summary_of(namespace, name, obj.get("status") or {}, created, _status_written(obj))


def _status_written(obj: dict[str, Any]) -> str | None:
    """When the status subresource was last written (its managedFields entry): the heartbeat."""
    times = [
        str(entry.get("time"))
        for entry in (obj.get("metadata") or {}).get("managedFields") or []
        if isinstance(entry, dict) and entry.get("subresource") == "status" and entry.get("time")
    ]
    return max(times) if times else None


def _event(item: dict[str, Any]) -> JobEvent:
    when = item.get("lastTimestamp") or item.get("eventTime") or item.get("firstTimestamp")
    return JobEvent(
        type=str(item.get("type") or "Normal"),
        reason=str(item.get("reason") or ""),
        message=str(item.get("message") or ""),
        count=int(item.get("count") or 1),
        last_timestamp=when,
    )


def _not_found(err: KubeApiError, namespace: str, name: str) -> BackendError:
    return NotFound(f"RLJob {namespace}/{name} not found") if err.status == 404 else err
