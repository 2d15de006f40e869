"""Objects found at start-up, converged by Torii a few hundred at a time instead of each in its kopf worker.

A restart finds every object at once: kopf lists them all and starts a worker per object, and a resume handler
that converged in its worker held the object's body, worker, logger and patch until its gateway's burst was
confirmed. With 10,000 objects that was all of them in memory at once (the peak of a cold restart). The resume
handler now records the object (`Tracked`, what a drift check needs anyway) and hands it over here; kopf's
worker ends at once. A check writes only the status fields that changed, so objects still in sync (the usual
restart) cost no apiserver write at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from torii.handlers.drift import Check
from torii.handlers.tracking import Tracked, Tracker

log = logging.getLogger("torii.resumes")


class Resumes:
    """A queue of (tracker, uid) converged through `check`, at most `concurrency` at once."""

    def __init__(self, *, concurrency: int) -> None:
        self._queue: deque[tuple[Tracker, str]] = deque()
        self._queued = asyncio.Event()
        self._limit = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()

    def submit(self, tracker: Tracker, uid: str) -> None:
        self._queue.append((tracker, uid))
        self._queued.set()

    def pending(self) -> int:
        return len(self._queue) + len(self._running)

    async def run(self, check: Check) -> None:
        """Forever: converge what was submitted. Cancelled (the operator stops): the checks in flight too."""
        try:
            while True:
                await self._queued.wait()
                self._queued.clear()
                while self._queue:
                    tracker, uid = self._queue.popleft()
                    tracked = tracker.objects.get(uid)
                    if tracked is None:
                        continue  # deleted meanwhile
                    await self._limit.acquire()
                    task = asyncio.create_task(self._one(check, tracker, tracked))
                    self._running.add(task)
                    task.add_done_callback(self._running.discard)
        finally:
            for task in self._running:
                task.cancel()

    async def _one(self, check: Check, tracker: Tracker, tracked: Tracked) -> None:
        try:
            await check(tracker, tracked)  # a failure schedules its own retry (the check's policy)
        except Exception:  # one object's failure never stops the others; the next drift pass looks again
            log.exception("resume of %s %s failed", tracker.kind, tracked.ref)
        finally:
            self._limit.release()
