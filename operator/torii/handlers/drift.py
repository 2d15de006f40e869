"""Drift correction: one pass over every object per interval, not one kopf timer per object.

A kopf timer is an asyncio task per object that holds the object's whole body (managedFields included) for as
long as the object exists: at 10,000 objects that was most of the operator's memory. Instead the change
handlers record what a drift check needs (`Tracked`: identity, spec, generation, the status Torii last wrote)
and one loop re-converges every tracked object each interval. The drivers answer those checks from one shared
view of the gateway (list calls), so a pass costs a constant number of admin calls and writes nothing when
nothing drifted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from torii.handlers.tracking import Tracked, Tracker

log = logging.getLogger("torii.drift")


Check = Callable[[Tracker, Tracked], Awaitable[None]]


async def drift_pass(trackers: list[Tracker], check: Check, *, concurrency: int = 256) -> int:
    """Check every tracked object once (at most `concurrency` at a time); the number checked. An object whose
    lock is held (a change handler on it, or a check of an earlier pass still waiting on a slow gateway) is left
    to that: one slow object never holds up the others, nor the next pass."""
    limit = asyncio.Semaphore(concurrency)

    async def one(tracker: Tracker, tracked: Tracked) -> bool:
        async with limit:
            if tracker.objects.get(tracked.owner.uid) is not tracked or tracker.lock(tracked.owner.uid).locked():
                return False  # changed, deleted or busy since the pass started: its handler has it
            try:
                await check(tracker, tracked)
            except Exception:  # one object's failure never stops the pass
                log.exception("drift check of %s %s failed", tracker.kind, tracked.ref)
            return True

    work = [(t, o) for t in trackers for o in list(t.objects.values())]
    return sum(await asyncio.gather(*(one(t, o) for t, o in work)))


async def drift_loop(trackers: list[Tracker], check: Check, interval: float, wake: asyncio.Event | None = None) -> None:
    """A pass every `interval` seconds, or at once when `wake` is set (a gateway node came back empty). A pass
    is not awaited by the next one: objects it is still busy with are skipped by the next pass, every other
    object is checked on time."""
    passes: set[asyncio.Task[int]] = set()
    wake = wake or asyncio.Event()
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
            wake.clear()
            task = asyncio.create_task(drift_pass(trackers, check), name="torii-drift-pass")
            passes.add(task)
            task.add_done_callback(passes.discard)
    finally:
        for task in passes:
            task.cancel()
