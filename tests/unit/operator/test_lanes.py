"""The operator's two work lanes: urgent work (creating RayJobs) before deferred work."""

from __future__ import annotations

import asyncio

import pytest

from eureka_operator.lanes import Lanes

pytestmark = pytest.mark.timeout(10)


async def test_deferred_work_waits_for_urgent_work_and_the_grace_after_it() -> None:
    lanes = Lanes(grace=0.3, max_wait=5)
    order: list[str] = []
    release = asyncio.Event()

    async def urgent(name: str) -> None:
        async with lanes.urgent():
            await release.wait()
            order.append(name)

    async def deferred() -> None:
        async with lanes.deferred():
            order.append("deferred")

    tasks = [asyncio.create_task(urgent("u1"))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(deferred()))
    await asyncio.sleep(0.02)
    assert order == [] and not lanes.calm
    release.set()
    await asyncio.sleep(0.01)
    assert order == ["u1"]  # urgent done, but the lane stays closed for the grace period
    tasks.append(asyncio.create_task(urgent("u2")))  # arrives within the grace: goes first
    await asyncio.sleep(0.03)
    assert order == ["u1", "u2"]
    await asyncio.gather(*tasks)
    assert order == ["u1", "u2", "deferred"] and lanes.calm


async def test_deferred_work_runs_without_urgent_work_and_at_most_width_at_once() -> None:
    lanes = Lanes(width=2, grace=0.01)
    running, peak = 0, 0

    async def deferred() -> None:
        nonlocal running, peak
        async with lanes.deferred():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.wait_for(asyncio.gather(*(deferred() for _ in range(6))), 2)
    assert peak == 2


async def test_max_wait_bounds_the_deferral() -> None:
    lanes = Lanes(grace=0.01, max_wait=0.1)
    hold = asyncio.Event()

    async def urgent() -> None:
        async with lanes.urgent():
            await hold.wait()

    task = asyncio.create_task(urgent())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    async with lanes.deferred():
        waited = loop.time() - start
    assert 0.09 <= waited < 1.0 and not lanes.calm  # ran although urgent work is still going
    hold.set()
    await task


async def test_deferred_work_inside_deferred_work_keeps_its_slot() -> None:
    lanes = Lanes(width=1, grace=0.01)

    async def nested() -> str:
        # The second would deadlock on a width-1 lane if the lane were not re-entrant.
        async with lanes.deferred(), lanes.deferred():
            return "done"

    assert await asyncio.wait_for(nested(), 1) == "done"
