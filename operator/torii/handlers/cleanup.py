"""Deletions that go on without a kopf worker, guarded by Torii's own finalizer.

A deletion kopf's worker waits for holds the object's body, the worker and kopf's handler state until the gateway
holds nothing of the object. Deleting 10,000 objects at once, kopf ran 1,024 of them at a time like that and the
others waited in its queues: on Tyk the operator grew from its 146 MiB apply peak to about 230 MiB. And a deletion
a gateway refused (unreachable) slept its retry inside a worker, so a few of them took every worker of the kind.

So every object carries two finalizers: kopf's (`torii.dev/finalizer`) and Torii's (`torii.dev/cleanup`), both
added by the patch kopf makes when it first sees the object (no extra apiserver write). A deletion beyond
`maxHeldChanges`, and the retry of any deletion that failed, is handed over: kopf releases its finalizer at once
(its worker and the body go), Torii's stays until the cleanup is done, then Torii removes it (`Cleanups`). The
handed-over cleanup waits in its gateway's queue (`Holding.hand_off`) as a small packed record, its retries on a
timer. An operator restarted in between finds such an object from its watch event (`left_behind`), and a change
of its spec (`deletionPolicy: Orphan`, the escape from an unreachable gateway) is taken at once (`Cleanups.changed`).
An object from before this finalizer existed is deleted as before, inside kopf's worker (it gets Torii's finalizer
at its next change or resume).
"""

from __future__ import annotations

import asyncio
import logging
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
KOPF_FINALIZER = f"{GROUP}/finalizer"  # kopf's (settings.persistence.finalizer)
CLEANUP_FINALIZER = f"{GROUP}/cleanup"  # Torii's: released only when the gateway holds nothing of the object


def install() -> None:
    """Torii's finalizer goes in the patch that adds kopf's. kopf builds that patch from
    `finalizers.block_deletion`, looked up on its module each time."""
    original = finalizers.block_deletion
    if getattr(original, "torii_cleanup", False):
        return

    def block_deletion(body: Any, finalizer: str) -> None:
        original(body, finalizer)
        if finalizer == KOPF_FINALIZER:
            original(body, CLEANUP_FINALIZER)

    block_deletion.torii_cleanup = True  # type: ignore[attr-defined]
    finalizers.block_deletion = block_deletion


def held(body: Mapping[str, Any]) -> list[str]:
    """The object's finalizers."""
    return list((body.get("metadata") or {}).get("finalizers") or [])


def guarded(body: Mapping[str, Any]) -> bool:
    """Does Torii's finalizer hold the object (its deletion may be handed over)?"""
    return CLEANUP_FINALIZER in held(body)


def left_behind(body: Mapping[str, Any], **_: Any) -> bool:
    """Being deleted, kopf's finalizer released, Torii's still there: a handed-over cleanup (of this run, or of
    an operator that stopped before finishing it)."""
    finalizers_ = held(body)
    deleting = bool((body.get("metadata") or {}).get("deletionTimestamp"))
    return deleting and CLEANUP_FINALIZER in finalizers_ and KOPF_FINALIZER not in finalizers_


def ensure(body: Mapping[str, Any], patch: Any) -> None:
    """Add Torii's finalizer with the handler's patch to an object made before it existed (new objects get it
    with kopf's). Never to one being deleted: the apiserver refuses new finalizers then."""
    if not guarded(body) and not (body.get("metadata") or {}).get("deletionTimestamp"):
        patch.fns.append(_unless_deleted)


def _unless_deleted(body: Any) -> None:
    # kopf applies a patch's functions to the freshest body it has, and again after a conflict: an object deleted
    # meanwhile must not get the finalizer (refused, so kopf would replay it on every event and run no handler).
    if not (body.get("metadata") or {}).get("deletionTimestamp"):
        finalizers.block_deletion(body, CLEANUP_FINALIZER)


def release(patch: Any) -> None:
    """Remove Torii's finalizer in the patch kopf writes when its deletion handler is done."""
    patch.fns.append(partial(finalizers.allow_deletion, finalizer=CLEANUP_FINALIZER))


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
        self.held = held  # the object's finalizers as last seen (None: read them before removing Torii's)
        self.timer: asyncio.TimerHandle | None = None


Hand = Callable[[str, Callable[[], Awaitable[None]]], None]  # Holding.hand_off
Attempt = Callable[[Cleanup], Awaitable[float | None]]  # one attempt; the delay before the next (None: done)


class Cleanups:
    """The handed-over deletions of one kind, by uid, from hand-over to release (queued, running, or waiting for
    their retry). At most one attempt of an object is queued or running at a time."""

    def __init__(self, hand_off: Hand, attempt: Attempt) -> None:
        self._hand_off, self._attempt = hand_off, attempt
        self.pending: dict[str, Cleanup] = {}
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
            return
        job.attempt += 1
        self.submit(job, 0.0 if job.spec != spec else delay)  # changed while it ran: at once
