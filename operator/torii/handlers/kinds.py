"""kopf handlers for the three kinds: converge on create/update/resume, cleanup on delete; and the drift check
of every tracked object, one pass per interval (`torii.handlers.drift`). Each resolves the object's identity
and hands over to `torii.reconcile`."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import kopf

from torii import kube, metrics
from torii.gateways.base import GatewayDriver, ObjectRef
from torii.gateways.errors import GatewayError
from torii.handlers import cleanup
from torii.handlers.cleanup import Cleanup, Cleanups
from torii.handlers.common import apply, count, plain, ready_condition
from torii.handlers.drift import Check, drift_loop
from torii.handlers.resumes import Resumes
from torii.handlers.retries import Probe, Retries
from torii.handlers.tracking import Packed, Tracked, TrackedApis, Tracker, status_changes
from torii.handlers.wake import Waker
from torii.kube import Owner
from torii.models.common import API_VERSION, GROUP, VERSION
from torii.reconcile.context import ReconcileContext
from torii.reconcile.gatewayapi import delete_api, reconcile_api
from torii.reconcile.gatewaykey import delete_key, reconcile_key
from torii.reconcile.lifecycle import Delete, Reconcile
from torii.reconcile.oauthclient import delete_oauth_client, reconcile_oauth_client
from torii.reconcile.outcome import Cause, Outcome
from torii.retry import RetryPolicy
from torii.settings import OperatorSettings

log = logging.getLogger("torii")
T = TypeVar("T")
Job = Callable[[], Awaitable[None]]


def register_kind(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    tracker: Tracker,
    *,
    plural: str,
    reconcile: Reconcile,
    delete: Delete,
    waker: Waker,
    retries: Retries,
    resumes: Resumes,
    holding: Holding,
) -> None:
    kind = tracker.kind
    resource: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": plural, "registry": registry}

    def identity(body: kopf.Body) -> tuple[ObjectRef, Owner, int]:
        meta = body.metadata
        ref = ObjectRef(str(meta.namespace), str(meta.name), kind, str(meta.uid))
        return ref, Owner(API_VERSION, kind, str(meta.name), str(meta.uid)), int(meta.get("generation", 1))

    async def converge(cause: Cause, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
        ref, owner, generation = identity(body)
        change = Change(cause, generation, plain(body.spec), plain(body.status))
        tracker.changes[owner.uid] = change  # an older change, handed off and still going on, stops at its next step
        if holding.full():
            # Handed off: the reconcile goes on without kopf (the body, worker and handler state freed now) and
            # writes its own status and events; kopf records the change as handled.
            change.handed_off = True
            metrics.HANDED_OFF.labels(kind).inc()
            # One queue per gateway connection: an object naming the default connection and one leaving
            # spec.gateway empty wait in the same one.
            holding.hand_off(gateway_of(memo, change.spec, change.status), partial(alone, change, ref, owner, memo))
            return
        with holding:
            outcome = await settle(change, ref, owner, memo)
        if outcome is None:
            return
        # A retryable failure is tried again by Torii's timer, not by kopf sleeping in this worker with the body.
        apply(outcome, body, patch, kind=kind, cause=cause.value)
        retries.schedule(tracker, owner.uid, generation, outcome.retry_policy,
                         gateway_of(memo, change.spec, outcome.status))  # fmt: skip

    async def settle(change: Change, ref: ObjectRef, owner: Owner, memo: kopf.Memo) -> Outcome | None:
        """Reconcile one change; waiting for a GatewayAPI, look again whenever one of the namespace is Ready.
        Handed off, it writes its status, events and retries itself. None: superseded (a newer change of the
        object, or its deletion, came while it waited)."""
        spec, status, generation, cause = change.spec, change.status, change.generation, change.cause
        written, deadline = status, asyncio.get_running_loop().time() + WAKE_WAIT
        while True:
            since = waker.mark(ref.namespace)
            async with tracker.lock(owner.uid):
                if tracker.changes.get(owner.uid) is not change:
                    return None
                outcome = await reconcile(context(memo, settings, plural, ref), ref, owner, spec, generation, status,
                                          cause)  # fmt: skip
                if tracker.changes.get(owner.uid) is not change:
                    return None  # deleted (or changed again) while it reconciled: not to be tracked from this one
                # What the drift pass needs from now on: the status Torii is writing is the status it will see.
                tracker.remember(Tracked(ref, owner, generation, spec, {**status, **outcome.status}))
                final = outcome.retry_policy is not RetryPolicy.WAKE
                if final and change.handed_off:
                    # Under the lock: a newer change's status cannot land before this older one's.
                    await finish_alone(change, outcome, ref, owner, written, memo)
            if kind == "GatewayAPI" and is_ready(outcome):
                waker.wake(ref.namespace)  # keys and clients waiting for an API of this namespace look again
            if final:
                break
            # Waiting for a GatewayAPI: say so now, then look again as soon as an API of the namespace is Ready
            # (not on a timer). After WAKE_WAIT without one, Torii's retry takes over.
            if changed := status_changes(outcome, written):
                await kube.patch_status(plural, ref.namespace, ref.name, changed)
                written = {**written, **changed}
            if not await waker.wait(ref.namespace, since, deadline - asyncio.get_running_loop().time()):
                if change.handed_off:
                    await finish_alone(change, outcome, ref, owner, written, memo)
                break
            status = {**status, **outcome.status}
        if tracker.changes.get(owner.uid) is change and not change.handed_off:
            del tracker.changes[owner.uid]  # done: kopf writes the outcome
        return outcome

    async def alone(change: Change, ref: ObjectRef, owner: Owner, memo: kopf.Memo) -> None:
        """A handed-off change, run by its gateway's queue (`Holding.hand_off`)."""
        try:
            await settle(change, ref, owner, memo)
        except Exception as error:
            # A bug, not a gateway's answer (those are outcomes): logged, and tried again like any failure.
            log.error("%s %s: reconcile failed: %s: %s", kind, ref, type(error).__name__, error)
            if tracker.changes.get(owner.uid) is change:
                del tracker.changes[owner.uid]
                tracker.remember(Tracked(ref, owner, change.generation, change.spec, change.status))
                retries.schedule(tracker, owner.uid, change.generation, RetryPolicy.BACKOFF,
                                 gateway_of(memo, change.spec, {}))  # fmt: skip

    async def finish_alone(change: Change, outcome: Outcome, ref: ObjectRef, owner: Owner,
                           written: dict[str, Any], memo: kopf.Memo) -> None:  # fmt: skip
        """What kopf's patch would have written, for a handed-off change: its status, events and retry (unless a
        newer change of the object, or its deletion, came meanwhile: that one writes)."""
        if tracker.changes.get(owner.uid) is not change:
            return
        del tracker.changes[owner.uid]
        tracked = Tracked(ref, owner, change.generation, change.spec, written)
        # A change's warning is posted even when the status already said the same: it answers this change.
        await record_outcome(memo, tracker, retries, plural, tracked, outcome, change.cause, repeat_warnings=True)

    @kopf.on.create(**resource, id="converge-on-create")
    async def on_create(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        await converge(Cause.CREATE, body, patch, memo)

    @kopf.on.update(**resource, id="converge-on-update", field="spec")
    async def on_update(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        await converge(Cause.UPDATE, body, patch, memo)

    @kopf.on.resume(**resource, id="converge-on-resume")
    async def on_resume(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        # Handed over (torii.handlers.resumes): a restart finds every object at once, and converging each here
        # would hold every body and kopf worker until its burst is confirmed.
        ref, owner, generation = identity(body)
        if owner.uid in tracker.changes or (
            (known := tracker.objects.get(owner.uid)) and known.generation == generation
        ):
            return  # a change handler of this run has it already (an object changed while Torii was down)
        tracker.remember(Tracked(ref, owner, generation, plain(body.spec), plain(body.status)))
        resumes.submit(tracker, owner.uid)

    async def clean_up(job: Cleanup) -> float | None:
        """One attempt of a handed-over deletion (`torii.handlers.cleanup`): what kopf's patch and event queue
        would write, then Torii's finalizer released. The delay before the next attempt; None: done."""
        ref, owner, status = job.ref, job.owner, job.status
        if job.attempt and not await kube.still_there(plural, ref.namespace, ref.name, owner.uid):
            return None  # released by hand meanwhile (maybe another object under its name now): nothing to do
        async with tracker.lock(owner.uid):
            outcome = await delete(context(job.memo, settings, plural, ref), ref, owner, job.spec, job.generation,
                                   status)  # fmt: skip
        changed = status_changes(outcome, status)
        if changed and not await kube.patch_status(plural, ref.namespace, ref.name, changed):
            return None  # gone already
        job.status = {**status, **changed}
        for event in outcome.events:
            # A warning the status already says (a retry failing alike) is not posted again.
            if changed or event.type != "Warning":
                await kube.post_event(job.reference(), event.type, event.reason, event.message)
        count(outcome, kind, "delete", ref.namespace, ref.name)
        if outcome.retry:
            return outcome.retry_policy.delay(job.attempt)
        tracker.release(owner.uid)
        await kube.release_finalizer(plural, ref.namespace, ref.name, owner.uid, cleanup.RELEASED, known=job.held)
        return None

    cleanups = Cleanups(holding.hand_off, clean_up)

    def cleanup_of(body: kopf.Body, memo: kopf.Memo, *, attempt: int = 0,
                   status: dict[str, Any] | None = None) -> Cleanup:  # fmt: skip
        ref, owner, generation = identity(body)
        spec, status = plain(body.spec), plain(body.status) if status is None else status
        return Cleanup(ref, owner, generation, spec, status, gateway=gateway_of(memo, spec, status), memo=memo,
                       held=cleanup.held(body), attempt=attempt)  # fmt: skip

    @kopf.on.delete(**resource, id="cleanup")
    async def on_delete(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        ref, owner, generation = identity(body)
        spec = plain(body.spec)
        if cleanups.changed(owner.uid, spec) or owner.uid in cleanups.released:
            return  # an event of an object whose cleanup is pending here (or done): kopf leaves the finalizer to it
        tracker.forget(owner.uid)  # being deleted: a drift repair (or a retry) now would fight the cleanup
        tracker.changes.pop(owner.uid, None)  # a handed-off change still going on stops at its next step
        retries.clear(owner.uid)
        if holding.full():
            # Handed over: the handler returns (kopf's worker and the body go); the finalizer holds the object
            # until the gateway holds nothing of it, and Torii releases it.
            metrics.HANDED_OFF.labels(kind).inc()
            cleanups.submit(cleanup_of(body, memo))
            return
        status = plain(body.status)
        with holding:
            async with tracker.lock(owner.uid):
                outcome = await delete(context(memo, settings, plural, ref), ref, owner, spec, generation, status)
        if not outcome.retry:
            tracker.release(owner.uid)
        apply(outcome, body, patch, kind=kind, cause="delete")
        if outcome.retry:
            # Retried by Torii, not by kopf's worker sleeping with the body: a few deletions waiting for an
            # unreachable gateway took every worker of the kind. Pending, its finalizer stays.
            written = {**status, **status_changes(outcome, status)}
            cleanups.submit(cleanup_of(body, memo, attempt=1, status=written), outcome.retry_policy.delay(0) or 0.0)
            return
        # Done: kopf releases the finalizer in its patch.

    def news(body: kopf.Body, event: kopf.RawEvent, **_: Any) -> bool:
        """Anything for Torii in this event that kopf's deletion handler does not see? An object gone with its
        cleanup pending (its finalizers removed by hand), or one held by the older finalizer alone (not the echo
        of its own cleanup: unless its spec changed)."""
        uid = str(body.metadata.uid)
        job = cleanups.pending.get(uid)
        if event.get("type") == "DELETED":
            return job is not None
        done = uid in cleanups.released  # (a late event of it)
        return cleanup.left_behind(body) and not done and (job is None or job.spec != plain(body.spec))

    @kopf.on.event(**resource, id="cleanup-left-behind", when=news)
    async def on_left_behind(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
        uid = str(body.metadata.uid)
        if event.get("type") == "DELETED":
            cleanups.forget(uid)
            return
        if not cleanups.changed(uid, plain(body.spec)):  # (a change, e.g. `deletionPolicy: Orphan`, taken at once)
            tracker.forget(uid)
            cleanups.submit(cleanup_of(body, memo))


# Handed-off reconciles going on at once per gateway (`Holding.hand_off`); enough for big bursts (one batch, one
# reload), few enough to bound what they hold.
HANDED_OFF_CONCURRENCY = 512


def detached(work: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
    """A task that keeps nothing of its creator's context. A task copies the context it is created in, and a
    kopf handler's holds kopf's cause (the body, the patch, the diff, the logger) in its contextvars: 10,000
    changes handed off with a copy kept 10,000 bodies alive until each was served."""
    return asyncio.create_task(work, name=name, context=contextvars.Context())


class Change(Packed):
    """One change handler's work, as its reconcile (held by kopf's worker or handed off) sees it; thousands of
    handed-off changes may wait for their turn in a big burst, hence packed."""

    __slots__ = ("cause", "generation", "handed_off")

    def __init__(self, cause: Cause, generation: int, spec: dict[str, Any], status: dict[str, Any]) -> None:
        super().__init__(spec, status)
        self.cause, self.generation, self.handed_off = cause, generation, False


class Holding:
    """How many change handlers wait inside kopf's workers, against a limit (`maxHeldChanges`). Each holds its
    object's body, worker, logger and patch until its gateway's burst is confirmed: at 10,000 objects applied at
    once that was all of them, most of the operator's memory. Changes beyond the limit are handed off (their
    reconcile goes on without kopf and writes its own status: one more status patch). Under the limit a change's
    status goes in kopf's one patch, as always."""

    def __init__(self, limit: int, handed_off: int = HANDED_OFF_CONCURRENCY) -> None:
        self.limit, self.count = limit, 0
        self._handed_off = handed_off
        self._queues: dict[str, deque[Job]] = {}  # gateway -> its handed-off changes waiting for a worker
        self._running: dict[str, int] = {}  # gateway -> its workers
        self._workers: set[asyncio.Task[None]] = set()  # (a task nobody refers to may be collected mid-run)

    def hand_off(self, gateway: str, job: Job) -> None:
        """Queue a handed-off reconcile behind the others of its gateway. It waits as a small record (`job`: a
        partial over its change), not as a task and two coroutines: 10,000 objects applied at once were about
        5,000 of them waiting in each run. At most `handed_off` workers per gateway run the queue (without the
        bound, 10,000 reconciles in flight held their rendered gateway objects at once); one gateway's queue
        never delays another's."""
        queue = self._queues.setdefault(gateway, deque())
        queue.append(job)
        running = self._running.get(gateway, 0)
        if running < self._handed_off:
            self._running[gateway] = running + 1
            worker = detached(self._drain(gateway, queue), name=f"torii-handed-off-{gateway}")
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    async def _drain(self, gateway: str, queue: deque[Job]) -> None:
        try:
            while queue:
                job = queue.popleft()
                try:
                    await job()
                except Exception:  # the job reports its own failures; this is a bug in that report
                    log.exception("a handed-off change of gateway %s failed", gateway)
                del job  # not kept alive while the next one runs
        finally:
            self._running[gateway] -= 1
            if not self._running[gateway]:
                del self._running[gateway]
                if not queue:
                    del self._queues[gateway]

    def full(self) -> bool:
        return self.count >= self.limit

    def __enter__(self) -> None:
        self.count += 1

    def __exit__(self, *_: object) -> None:
        self.count -= 1


def gateway_of(memo: kopf.Memo, spec: dict[str, Any], status: dict[str, Any]) -> str:
    """The gateway connection an object's retries and handed-off changes wait for, as the key of their
    per-gateway state (`Gateways.key_of`: the resolved connection, never a tenant's made-up name)."""
    return str(memo.gateways.key_of(status.get("gateway") or spec.get("gateway") or None))


# Retries due at once (a gateway back after an outage) run this many at a time: enough for the gateway's burst
# sync to take many in one batch (and one reload), while each holds only its small tracked record, not kopf's
# body and worker.
RETRY_CONCURRENCY = 512

# A handler waiting for its API looks again on every wake of its namespace for WAKE_WAIT seconds in all; then it
# returns (a deletion of the object waits no longer than this) and Torii's retry (RetryPolicy.WAKE) calls it again.
WAKE_WAIT = 15.0


def is_ready(outcome: Outcome) -> bool:
    return (ready_condition(outcome) or {}).get("status") == "True"


def context(memo: kopf.Memo, settings: OperatorSettings, plural: str, ref: ObjectRef) -> ReconcileContext:
    async def record(fields: dict[str, Any]) -> None:
        await kube.patch_status(plural, ref.namespace, ref.name, fields)

    return ReconcileContext(
        memo.gateways, kube.KubeSecrets(), getattr(memo, "apis", None) or kube.KubeApis(), settings.id_prefix,
        drift_view_age=settings.drift_interval_seconds / 2, record=record,
        tenancy={conn.name: settings.tenancy_of(conn) for conn in settings.gateways},
    )  # fmt: skip


KINDS: tuple[tuple[str, str, Reconcile, Delete], ...] = (
    ("GatewayAPI", "gatewayapis", reconcile_api, delete_api),
    ("GatewayKey", "gatewaykeys", reconcile_key, delete_key),
    ("OAuthClient", "oauthclients", reconcile_oauth_client, delete_oauth_client),
)


def api_lookup(trackers: list[Tracker]) -> TrackedApis:
    """GatewayAPI lookups for the reconcilers (memo.apis): from the GatewayAPI tracker, else the apiserver."""
    [apis] = [t for t in trackers if t.kind == "GatewayAPI"]
    return TrackedApis(apis, kube.KubeApis())


@dataclass(frozen=True)
class Runtime:
    """What the handlers share with the loops beside kopf (`start_drift`): the objects each kind tracks, the
    waker of objects waiting for a GatewayAPI, the retries of failed changes, the resumes handed over and the
    count of change handlers held in kopf's workers."""

    trackers: list[Tracker]
    waker: Waker
    retries: Retries
    resumes: Resumes
    holding: Holding


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> Runtime:
    """The handlers of every kind, and what they share with the loops beside kopf."""
    runtime = Runtime([], Waker(), Retries(concurrency=RETRY_CONCURRENCY), Resumes(concurrency=RETRY_CONCURRENCY),
                      Holding(settings.max_held_changes))  # fmt: skip
    for kind, plural, reconcile, delete in KINDS:
        tracker = Tracker(kind)
        register_kind(registry, settings, tracker, plural=plural, reconcile=reconcile, delete=delete,
                      waker=runtime.waker, retries=runtime.retries, resumes=runtime.resumes,
                      holding=runtime.holding)  # fmt: skip
        runtime.trackers.append(tracker)
    return runtime


def drift_check(
    settings: OperatorSettings, memo: kopf.Memo, waker: Waker, retries: Retries, cause: Cause = Cause.DRIFT
) -> Check:
    """The check of one tracked object (a drift pass's, or a retry's): re-converge it, and write only the status
    fields that changed. A failure is tried again by its policy (a drift pass finding a gateway down included:
    else a gateway that comes back would be noticed only by the next pass, which may be minutes away)."""
    by_kind = {kind: (plural, reconcile) for kind, plural, reconcile, _ in KINDS}

    async def check(tracker: Tracker, tracked: Tracked) -> None:
        plural, reconcile = by_kind[tracker.kind]
        uid = tracked.owner.uid
        async with tracker.lock(uid):
            if tracker.objects.get(uid) is not tracked:
                return  # a change handler ran meanwhile: its result is newer than this check
            outcome = await reconcile(
                context(memo, settings, plural, tracked.ref), tracked.ref, tracked.owner, tracked.spec,
                tracked.generation,
                tracked.status, cause,
            )  # fmt: skip
            written = await record_outcome(memo, tracker, retries, plural, tracked, outcome, cause,
                                           repeat_warnings=False)  # fmt: skip
            if written is None:
                tracker.forget(uid)  # gone meanwhile
                return
            if written:  # (in sync, the usual case: the record is already what was written, nothing to repack)
                tracked.status = {**tracked.status, **outcome.status}
        if tracker.kind == "GatewayAPI" and written and is_ready(outcome):
            waker.wake(tracked.ref.namespace)  # served again (a gateway back): waiting keys look again

    return check


async def record_outcome(
    memo: kopf.Memo, tracker: Tracker, retries: Retries, plural: str, tracked: Tracked, outcome: Outcome,
    cause: Cause, *, repeat_warnings: bool,
) -> bool | None:  # fmt: skip
    """What kopf's patch and event queue write for a change handler, for a reconcile that ran without kopf (a
    handed-off change, a drift check, a retry, a resume): the status fields that differ from `tracked.status`
    (what was last written), the outcome's events, its metrics and its retry. None: the object is gone; else
    whether the status changed. Called under the object's lock: a newer reconcile's status cannot land first."""
    ref, written = tracked.ref, tracked.status  # decoded once (a packed record decodes on every read)
    changed = status_changes(outcome, written)
    if changed and not await kube.patch_status(plural, ref.namespace, ref.name, changed):
        return None
    retries.schedule(tracker, tracked.owner.uid, tracked.generation, outcome.retry_policy,
                     gateway_of(memo, tracked.spec, {**written, **outcome.status}))  # fmt: skip
    for event in outcome.events:
        # A warning repeated by a retry or a pass (the status did not change: same reason, same message) tells
        # nothing new: during an outage it would be one apiserver write per object per attempt.
        if changed or repeat_warnings or event.type != "Warning":
            await kube.post_event(tracked.reference(), event.type, event.reason, event.message)
    count(outcome, tracker.kind, cause.value, ref.namespace, ref.name)
    return bool(changed)


def probe_of(memo: kopf.Memo) -> Probe:
    """Does a gateway connection answer (its driver's `ping`)? For the retries' probe."""

    async def probe(gateway: str) -> bool:
        try:
            await memo.gateways.get(gateway or None).ping()
        except GatewayError:
            return False
        return True

    return probe


def start_drift(runtime: Runtime, settings: OperatorSettings, memo: kopf.Memo) -> asyncio.Task[None]:
    """The drift loop, woken early by any gateway that needs a pass now (`GatewayDriver.watch`), and the runners
    of retries and resumes."""
    waker, retries = runtime.waker, runtime.retries

    async def watch(driver: GatewayDriver, wake: asyncio.Event) -> None:
        # A watch that fails (a bug, an unexpected answer) is logged and started again: refills never stop.
        while True:
            try:
                await driver.watch(wake.set)
                return  # nothing to watch
            except Exception:
                log.exception("gateway %s: its watch failed; starting it again in 5 s", driver.name)
                await asyncio.sleep(5)

    async def drift() -> None:
        wake = asyncio.Event()
        loops = [asyncio.create_task(watch(d, wake), name=f"torii-watch-{d.name}") for d in memo.gateways]
        retry = drift_check(settings, memo, waker, retries, Cause.RETRY)
        loops.append(asyncio.create_task(retries.run(retry, probe_of(memo)), name="torii-retries"))
        resume = drift_check(settings, memo, waker, retries, Cause.RESUME)
        loops.append(asyncio.create_task(runtime.resumes.run(resume), name="torii-resumes"))
        try:
            await drift_loop(runtime.trackers, drift_check(settings, memo, waker, retries),
                             settings.drift_interval_seconds, wake)  # fmt: skip
        finally:
            for loop in loops:
                loop.cancel()

    return asyncio.create_task(drift(), name="torii-drift")
