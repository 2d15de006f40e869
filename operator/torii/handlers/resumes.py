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
from collections import deque

from torii.handlers.drift import Check, CheckPool
from torii.handlers.tracking import Tracker


class Resumes:
    """A queue of (tracker, uid) converged through `check`, at most `concurrency` at once."""

    def __init__(self, *, concurrency: int) -> None:
        self._queue: deque[tuple[Tracker, str]] = deque()
        self._queued = asyncio.Event()
        self._pool = CheckPool(concurrency, "resume")

    def submit(self, tracker: Tracker, uid: str) -> None:
        self._queue.append((tracker, uid))
        self._queued.set()

    def pending(self) -> int:
        return len(self._queue) + self._pool.running()

    async def run(self, check: Check) -> None:
        """Forever: converge what was submitted. Cancelled (the operator stops): the checks in flight too."""
        try:
            while True:
                await self._queued.wait()
                self._queued.clear()
                while self._queue:
                    await self._pool.start(check, *self._queue.popleft())
        finally:
            self._pool.cancel()
