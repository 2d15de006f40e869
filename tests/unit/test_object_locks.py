"""One lock per object (`Tracker.lock`): two reconciles of one object never run at once, and an object nobody
is reconciling keeps no lock (at 10,000 objects, a lock each for their lifetime was 10,000 idle locks)."""

from __future__ import annotations

import asyncio

import pytest

from torii.handlers.tracking import Tracker


async def test_one_reconcile_of_an_object_at_a_time_and_no_lock_kept_after() -> None:
    tracker = Tracker("GatewayAPI")
    inside: list[str] = []
    peak = 0
    first_in, go_on = asyncio.Event(), asyncio.Event()

    async def reconcile(uid: str, n: int) -> None:
        nonlocal peak
        async with tracker.lock(uid):
            inside.append(uid)
            peak = max(peak, inside.count("a"))
            if n == 0:
                first_in.set()
                await go_on.wait()
            inside.remove(uid)

    tasks = [asyncio.create_task(reconcile("a", n)) for n in range(3)]
    other = asyncio.create_task(reconcile("b", 1))
    await asyncio.wait_for(first_in.wait(), 5)
    await asyncio.wait_for(other, 5)  # another object is never held up by this one
    assert tracker.busy("a") and not tracker.busy("b") and inside == ["a"]
    go_on.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert peak == 1 and tracker.locks == {} and not tracker.busy("a")


async def test_a_waiter_cancelled_leaves_no_lock_behind() -> None:
    tracker = Tracker("GatewayKey")
    held, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with tracker.lock("k"):
            held.set()
            await release.wait()

    async def waiter() -> None:
        async with tracker.lock("k"):
            pytest.fail("a cancelled waiter never gets the lock")

    first = asyncio.create_task(holder())
    await held.wait()
    second = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # it waits for the lock now
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert tracker.busy("k")  # still held by the first
    release.set()
    await first
    assert tracker.locks == {}
