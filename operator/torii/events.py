"""Torii's Events go out through a few posters of its own, with bounded queues.

kopf posts `kopf.event` through one worker per object with no limit (up to 478 at once in a 3,000-object apply,
each with its queue and the event), and retries a refused Event for about 54 s inside that worker. Torii's
Events are best effort, as in client-go (its broadcaster drops events when its queue is full): a fixed number of
posters, each owning a bounded queue; the object's uid picks the poster, so one object's Events keep their order.
A refused Event is not retried for long (a namespace being deleted refuses every Event), and an Event that finds
its queue full is dropped and counted, never waited for: a handler never waits on an Event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from torii import kube

log = logging.getLogger("torii.events")

POSTERS = 8  # apiserver requests for Events at once
DEPTH = 512  # Events waiting per poster; beyond: dropped (a burst of 10,000 changes posts few: see record_outcome)
ATTEMPTS = 3  # a failed post is tried this many times, 0.5 s then 1 s apart (403/404 are not failures)
DROP_LOG_SECONDS = 60.0  # how often a drop is logged (each is counted)

Post = Callable[[dict[str, Any], str, str, str], Awaitable[None]]


class EventPoster:
    """`post()` queues an Event and returns at once; `POSTERS` tasks send them. Started in the running event loop
    on first use (and again in another loop: each test has its own)."""

    def __init__(self, posters: int = POSTERS, depth: int = DEPTH, post: Post | None = None) -> None:
        self._posters, self._depth, self._post = posters, depth, post
        self._queues: list[asyncio.Queue[tuple[dict[str, Any], str, str, str]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0
        self._dropped_logged_at = 0.0

    def post(self, reference: dict[str, Any], type_: str, reason: str, message: str) -> bool:
        """Queue an Event about `reference` (apiVersion, kind, metadata name/namespace/uid); False if dropped."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._start(loop)
        queue = self._queues[hash(reference["metadata"]["uid"]) % self._posters]
        try:
            queue.put_nowait((reference, type_, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1
            now = time.monotonic()
            if now - self._dropped_logged_at > DROP_LOG_SECONDS:
                self._dropped_logged_at = now
                log.warning("Events dropped: %d so far (more waiting than %d posters can send)",
                            self.dropped, self._posters)  # fmt: skip
            return False
        return True

    async def drained(self) -> None:
        """Until every queued Event has been sent (or given up)."""
        for queue in list(self._queues):
            await queue.join()

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks, self._queues, self._loop = [], [], None

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.close()  # tasks of a loop that is gone (or closing) are dropped with it
        self._loop = loop
        self._queues = [asyncio.Queue(self._depth) for _ in range(self._posters)]
        self._tasks = [loop.create_task(self._send(q), name=f"torii-event-poster-{i}")
                       for i, q in enumerate(self._queues)]  # fmt: skip

    async def _send(self, queue: asyncio.Queue[tuple[dict[str, Any], str, str, str]]) -> None:
        while True:
            reference, type_, reason, message = await queue.get()
            try:
                await self._attempts(reference, type_, reason, message)
            finally:
                queue.task_done()

    async def _attempts(self, reference: dict[str, Any], type_: str, reason: str, message: str) -> None:
        post = self._post or kube.post_event  # looked up on each use: tests replace kube.post_event
        for attempt in range(ATTEMPTS):
            try:
                await post(reference, type_, reason, message)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if attempt + 1 == ATTEMPTS:
                    meta = reference["metadata"]
                    log.warning("an Event %s about %s/%s was not posted: %s", reason, meta["namespace"],
                                meta["name"], error)  # fmt: skip
                    return
                await asyncio.sleep(0.5 * 2**attempt)


poster = EventPoster()


def post(reference: dict[str, Any], type_: str, reason: str, message: str) -> bool:
    return poster.post(reference, type_, reason, message)
