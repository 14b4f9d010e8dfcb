"""Two priorities for the work on the operator's one event loop: urgent, then deferred.

What a user waits for after `kubectl apply` is the RayJob: KubeRay can only start the Ray cluster
once it exists. Creating the RayJob of a new RLJob is therefore *urgent*. The rest of a job's
work (its ConfigMap, ServiceAccount, Role and RoleBinding, its status and Events, and kopf's own
bookkeeping patch after the handler returns) is *deferred*: it waits while urgent work is in
flight, then runs at most `width` jobs at a time.

asyncio runs ready tasks first come, first served. Without lanes, a burst of N new RLJobs
interleaves N x 8 API calls and the median job gets its RayJob only after about half of all
that work; with them, every RayJob of the burst comes first and the rest follows the burst.

`grace` keeps the deferred lane closed through the short gaps between the urgent calls of a
burst; `max_wait` bounds each deferral, so that a steady stream of new jobs never starves the
status of older ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar

# The Lanes whose deferred slot the current task (and the tasks it started) holds.
_holder: ContextVar[Lanes | None] = ContextVar("eureka_lanes_holder", default=None)


class Lanes:
    """An urgent lane that always goes first, and a deferred lane, `width` wide."""

    def __init__(self, *, width: int = 16, grace: float = 0.05, max_wait: float = 10.0) -> None:
        self.grace = grace
        self.max_wait = max_wait
        self.urgent_in_flight = 0
        self._slots = asyncio.Semaphore(width)
        self._calm = asyncio.Event()
        self._calm.set()
        self._reopen: asyncio.TimerHandle | None = None

    @contextlib.asynccontextmanager
    async def urgent(self) -> AsyncIterator[None]:
        """Urgent work: closes the deferred lane until `grace` seconds after the last one ends."""
        self.urgent_in_flight += 1
        self._calm.clear()
        if self._reopen is not None:
            self._reopen.cancel()
            self._reopen = None
        try:
            yield
        finally:
            self.urgent_in_flight -= 1
            if not self.urgent_in_flight:
                loop = asyncio.get_running_loop()
                self._reopen = loop.call_later(self.grace, self._open)

    def _open(self) -> None:
        self._reopen = None
        if not self.urgent_in_flight:
            self._calm.set()

    @contextlib.asynccontextmanager
    async def deferred(self) -> AsyncIterator[None]:
        """Deferred work: waits for calm (at most `max_wait` seconds), then for a free slot.

        Re-entrant: deferred work that calls more deferred work (a status sync inside a
        reconcile) keeps its slot instead of waiting for a second one.
        """
        if _holder.get() is self:
            yield
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while True:
            if not self._calm.is_set() and loop.time() < deadline:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._calm.wait(), deadline - loop.time())
            await self._slots.acquire()
            # Urgent work may have arrived while this waited for a slot: it goes first.
            if self._calm.is_set() or loop.time() >= deadline:
                break
            self._slots.release()
        token = _holder.set(self)
        try:
            yield
        finally:
            _holder.reset(token)
            self._slots.release()

    @property
    def calm(self) -> bool:
        """No urgent work in flight, none within the last `grace` seconds."""
        return self._calm.is_set()
