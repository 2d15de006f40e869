"""Deletions that go on without a kopf worker, held by Torii's finalizer until the gateway holds nothing.

A deletion kopf's worker waits for holds the object's body, the worker and kopf's handler state until the gateway
holds nothing of the object. Deleting 10,000 objects at once, kopf ran 1,024 of them at a time like that and the
others waited in its queues: on Tyk the operator grew from its 146 MiB apply peak to about 230 MiB. And a deletion
a gateway refused (unreachable) slept its retry inside a worker, so a few of them took every worker of the kind.

So a deletion beyond `maxHeldChanges`, and the retry of any deletion that failed, is handed over: the deletion
handler returns at once (kopf's worker and the body go), the cleanup waits in its gateway's queue
(`Holding.hand_off`) as a small packed record, its retries on a timer, and Torii removes the finalizer once the
gateway serves nothing of the object (`Cleanups`). The finalizer is kopf's own (`torii.dev/cleanup`): kopf adds it
to every object and releases it after a deletion handler, except for an object whose cleanup is handed over
(`install`). Session 20 gave objects a second finalizer beside kopf's; one is enough and saves a patch and its watch
event per handed-over deletion. kopf runs the deletion handler again on each event of an object being deleted:
one whose cleanup is pending here only passes on its spec (`deletionPolicy: Orphan`, the escape from an
unreachable gateway, is taken at once: `Cleanups.changed`). An operator restarted in between finds the object from
its watch event like any deletion. The older finalizer (`torii.dev/finalizer`) goes with the new one; an object
being deleted that holds only the older one (deleted while an older Torii was stopped) is cleaned up from its watch
event (`left_behind`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from kopf._cogs.structs import finalizers

from torii.gateways.base import ObjectRef
from torii.handlers.tracking import Tracked
from torii.kube import Owner
from torii.models.common import GROUP
from torii.retry import RetryPolicy

log = logging.getLogger("torii")
FINALIZER = f"{GROUP}/cleanup"  # kopf's (settings.persistence.finalizer), Torii's to release for a handed-over one
LEGACY_FINALIZER = f"{GROUP}/finalizer"  # kopf's until session 20: released with FINALIZER, never added
RELEASED = (FINALIZER, LEGACY_FINALIZER)  # what a cleanup removes when it is done


def install() -> None:
    """kopf releases its finalizer after the deletion handlers with `finalizers.allow_deletion`, looked up on its
    module each time: not for an object whose cleanup is handed over (Torii releases it when done), and the
    older finalizer with it."""
    original = finalizers.allow_deletion
    if getattr(original, "torii_cleanup", False):
        return

    def allow_deletion(body: Any, finalizer: str) -> None:
        if finalizer == FINALIZER:
            if handed_over(str((body.get("metadata") or {}).get("uid"))):
                return
            original(body, LEGACY_FINALIZER)
        original(body, finalizer)

    allow_deletion.torii_cleanup = True  # type: ignore[attr-defined]
    finalizers.allow_deletion = allow_deletion


def held(body: Mapping[str, Any]) -> list[str]:
    """The object's finalizers."""
    return list((body.get("metadata") or {}).get("finalizers") or [])


def left_behind(body: Mapping[str, Any]) -> bool:
    """Being deleted, held by the older finalizer alone: kopf sees no finalizer of its own, so runs no deletion
    handler for it."""
    finalizers_ = held(body)
    deleting = bool((body.get("metadata") or {}).get("deletionTimestamp"))
    return deleting and LEGACY_FINALIZER in finalizers_ and FINALIZER not in finalizers_


class Cleanup(Tracked):
    """One handed-over deletion: the object as its cleanup needs it, the gateway whose queue it waits in, the
    attempts made, and the timer of its next one."""

    __slots__ = ("attempt", "gateway", "held", "memo", "timer")

    def __init__(
        self, ref: ObjectRef, owner: Owner, generation: int, spec: dict[str, Any], status: dict[str, Any], *,
        gateway: str, memo: Any, held: list[str] | None = None, attempt: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(ref, owner, generation, spec, status)
        self.gateway, self.memo, self.attempt = gateway, memo, attempt
        self.held = held  # the object's finalizers as last seen (a guess for the release; None: read them)
        self.timer: asyncio.TimerHandle | None = None


def handed_over(uid: str) -> bool:
    """Is a cleanup of this object pending here, or done (kopf must leave the finalizer to Torii)?"""
    return any(uid in cleanups.pending or uid in cleanups.released for cleanups in _ALL)


# Cleanups done, remembered (uids, oldest dropped first) for the events of their objects that kopf's worker still
# has to process: the status patch of the last attempt comes back after the release under load, and a deletion
# handler run for it must not delete again (an object since re-created under the name would lose its API).
RELEASED_MEMORY = 4096


Hand = Callable[[str, Callable[[], Awaitable[None]]], None]  # Holding.hand_off
Attempt = Callable[[Cleanup], Awaitable[float | None]]  # one attempt; the delay before the next (None: done)


class Cleanups:
    """The handed-over deletions of one kind, by uid, from hand-over to release (queued, running, or waiting for
    their retry). At most one attempt of an object is queued or running at a time."""

    def __init__(self, hand_off: Hand, attempt: Attempt) -> None:
        self._hand_off, self._attempt = hand_off, attempt
        _ALL.add(self)
        self.pending: dict[str, Cleanup] = {}
        self.released: dict[str, None] = {}  # uids done, in order (at most RELEASED_MEMORY)
        self._queued: set[str] = set()  # uids queued or running

    def submit(self, job: Cleanup, delay: float = 0.0) -> None:
        uid = job.owner.uid
        if (old := self.pending.get(uid)) is not None and old is not job and old.timer is not None:
            old.timer.cancel()
        self.pending[uid] = job
        if delay > 0:
            job.timer = asyncio.get_running_loop().call_later(delay, self._queue, job)
        else:
            self._queue(job)

    def forget(self, uid: str) -> None:
        """The object is gone (finalizers removed by hand): its pending cleanup is dropped, never run against an
        object created since under the same name."""
        job = self.pending.pop(uid, None)
        if job is not None and job.timer is not None:
            job.timer.cancel()

    def changed(self, uid: str, spec: dict[str, Any]) -> bool:
        """The object changed while its cleanup is pending (e.g. `deletionPolicy: Orphan`): the next attempt uses
        the new spec, now rather than after its backoff. False: no cleanup of it is pending."""
        job = self.pending.get(uid)
        if job is None:
            return False
        if spec != job.spec:
            job.spec = spec
            if job.timer is not None:
                job.timer.cancel()
                self._queue(job)
        return True

    def _queue(self, job: Cleanup) -> None:
        job.timer = None
        uid = job.owner.uid
        if self.pending.get(uid) is not job or uid in self._queued:
            return
        self._queued.add(uid)
        self._hand_off(job.gateway, partial(self._run, job))

    async def _run(self, job: Cleanup) -> None:
        uid = job.owner.uid
        spec = job.spec
        try:
            delay = await self._attempt(job)
        except Exception as error:  # a bug or the apiserver, not a gateway's answer (those are outcomes)
            log.error("%s %s: cleanup failed: %s: %s", job.owner.kind, job.ref, type(error).__name__, error)
            delay = RetryPolicy.BACKOFF.delay(job.attempt)
        finally:
            self._queued.discard(uid)
        if (current := self.pending.get(uid)) is not job:
            if current is not None and current.timer is None:
                self._queue(current)  # submitted while this one ran: its turn now
            return
        if delay is None:
            del self.pending[uid]
            self.released[uid] = None
            if len(self.released) > RELEASED_MEMORY:
                del self.released[next(iter(self.released))]
            return
        job.attempt += 1
        self.submit(job, 0.0 if job.spec != spec else delay)  # changed while it ran: at once


_ALL: weakref.WeakSet[Cleanups] = weakref.WeakSet()  # every kind's, for `handed_over`
