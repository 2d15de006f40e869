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


class CheckPool:
    """Checks of tracked objects started one by one by a loop (retries, resumes), at most `concurrency` running
    at once; each guarded: one object's failure is logged and stops none of the others (its check scheduled its
    own retry, and the next drift pass looks again)."""

    def __init__(self, concurrency: int, what: str) -> None:
        self._limit = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._what = what  # how the log names a check ("retry", "resume")

    async def start(self, check: Check, tracker: Tracker, uid: str) -> None:
        """Start the check of `uid` once a slot is free (nothing if it is no longer tracked: deleted)."""
        tracked = tracker.objects.get(uid)
        if tracked is None:
            return
        await self._limit.acquire()
        task = asyncio.create_task(self._guarded(check, tracker, tracked))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def running(self) -> int:
        return len(self._running)

    def cancel(self) -> None:
        for task in self._running:
            task.cancel()

    async def _guarded(self, check: Check, tracker: Tracker, tracked: Tracked) -> None:
        try:
            await check(tracker, tracked)
        except Exception:
            log.exception("%s of %s %s failed", self._what, tracker.kind, tracked.ref)
        finally:
            self._limit.release()


# Checks that outlived their pass's budget (a gateway answering slowly): they finish on their own, holding their
# object's lock, so the next pass skips those objects and checks every other one on time.
_detached: set[asyncio.Task[None]] = set()


async def drift_pass(trackers: list[Tracker], check: Check, *, concurrency: int = 64, budget: float = 30.0) -> int:
    """Check every tracked object once, `concurrency` at a time (a pool of workers, not a task per object: at
    10,000 objects that was 10,000 coroutines at once); the number checked. An object whose lock is held (a
    change handler on it, or a check still running from an earlier pass) is left to that; a check that takes
    longer than `budget` seconds is left running on its own, so one slow object never holds up the pass."""
    work = iter([(t, o) for t in trackers for o in list(t.objects.values())])
    checked = 0

    async def guarded(tracker: Tracker, tracked: Tracked) -> None:
        try:
            await check(tracker, tracked)
        except Exception:  # one object's failure never stops the pass
            log.exception("drift check of %s %s failed", tracker.kind, tracked.ref)

    async def worker() -> None:
        nonlocal checked
        for tracker, tracked in work:  # one iterator shared by the workers
            if tracker.objects.get(tracked.owner.uid) is not tracked or tracker.busy(tracked.owner.uid):
                continue  # changed, deleted or busy since the pass started: its handler has it
            task = asyncio.create_task(guarded(tracker, tracked))
            done, _ = await asyncio.wait({task}, timeout=budget)
            if not done:
                _detached.add(task)
                task.add_done_callback(_detached.discard)
            checked += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return checked


async def drift_loop(trackers: list[Tracker], check: Check, interval: float, wake: asyncio.Event | None = None) -> None:
    """A pass every `interval` seconds, or at once when `wake` is set (a gateway node came back empty). Passes
    never overlap (each holds its workers' memory): a tick during a pass starts the next one when it ends."""
    wake = wake or asyncio.Event()
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval)
        wake.clear()
        try:
            await drift_pass(trackers, check)
        except Exception:  # never expected (checks are guarded): the loop must outlive it
            log.exception("drift pass failed")
