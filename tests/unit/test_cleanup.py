"""Deletions handed over to Torii (`torii.handlers.cleanup`): kopf leaves the finalizer of a handed-over deletion
to Torii, the older finalizer goes with it, an object held by the older one alone is found, and the handed-over
cleanups are retried on a timer, taken at once when their spec changes, and forgotten once done. The deletion
handler, run again on each event of an object being deleted, leaves a pending or done cleanup alone. The e2e side
(real apiserver and Tyk) is in tests/e2e/test_handoff.py and tests/e2e/test_cleanup_restart.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import kopf
from kopf._cogs.structs import bodies, finalizers, patches

from torii import kube
from torii.gateways.base import ObjectRef
from torii.gateways.registry import Gateways
from torii.handlers import cleanup
from torii.handlers.cleanup import FINALIZER, LEGACY_FINALIZER, Cleanup, Cleanups
from torii.handlers.kinds import Holding, register_kind
from torii.handlers.resumes import Resumes
from torii.handlers.retries import Retries
from torii.handlers.tracking import Tracker
from torii.handlers.wake import Waker
from torii.kube import Owner
from torii.reconcile.outcome import Outcome
from torii.settings import OperatorSettings


def raw(finalizers_: list[str] | None = None, deleting: bool = False, uid: str = "u-1") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "a", "namespace": "ns", "uid": uid, "resourceVersion": "7"}
    if finalizers_ is not None:
        meta["finalizers"] = finalizers_
    if deleting:
        meta["deletionTimestamp"] = "2026-12-04T00:00:00Z"
    return {"apiVersion": "torii.dev/v1alpha1", "kind": "GatewayAPI", "metadata": meta, "spec": {"gateway": "tyk"}}


def kopf_releases(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The ops of kopf's patch after its deletion handlers (`finalizers.allow_deletion`, as its processing adds)."""
    patch = patches.Patch(body=bodies.Body(body))
    patch.fns.append(partial(finalizers.allow_deletion, finalizer=FINALIZER))
    return patch.as_json_patch()


async def test_kopf_leaves_a_handed_over_deletions_finalizer_to_torii_and_takes_the_older_one_with_its_own() -> None:
    cleanup.install()
    cleanup.install()  # twice: still one wrapper
    uid = "u-kopf"  # (not another test's: their Cleanups may still be alive)
    deleting = raw([LEGACY_FINALIZER, "example.com/other", FINALIZER], deleting=True, uid=uid)
    # Not handed over: kopf releases its finalizer and the older one, not a third party's (ops in turn: the
    # older one at 0, then kopf's, now at 1).
    assert kopf_releases(deleting) == [{"op": "remove", "path": "/metadata/finalizers/0"},
                                       {"op": "remove", "path": "/metadata/finalizers/1"}]  # fmt: skip
    assert kopf_releases(raw([FINALIZER], deleting=True, uid=uid)) == [{"op": "remove", "path": "/metadata/finalizers"}]
    answers = iter([3600.0, None])  # an unreachable gateway, then done
    queue = Queue()
    cleanups = Cleanups(queue, lambda j: asyncio.sleep(0, next(answers)))
    cleanups.submit(job(uid=uid))
    await queue.drained()
    assert cleanup.handed_over(uid) and not cleanup.handed_over("u-other")
    assert kopf_releases(deleting) == []  # handed over: Torii releases it when the gateway holds nothing
    timer = cleanups.pending[uid].timer
    assert timer is not None
    timer.cancel()
    cleanups._queue(cleanups.pending[uid])  # the retry's timer fires: done, Torii released the finalizer
    await queue.drained()
    # An event of the object that kopf processes only now (the last status patch) changes nothing either.
    assert uid not in cleanups.pending and uid in cleanups.released and kopf_releases(deleting) == []


async def test_cleanups_done_are_remembered_up_to_a_bound_oldest_dropped_first() -> None:
    queue = Queue()
    cleanups = Cleanups(queue, lambda j: asyncio.sleep(0, None))
    for i in range(cleanup.RELEASED_MEMORY + 2):
        cleanups.submit(job(uid=f"u-bound-{i}"))
    await queue.drained()
    assert len(cleanups.released) == cleanup.RELEASED_MEMORY and not cleanups.pending
    assert "u-bound-0" not in cleanups.released and "u-bound-1" not in cleanups.released
    assert f"u-bound-{cleanup.RELEASED_MEMORY + 1}" in cleanups.released


def test_an_object_held_by_the_older_finalizer_alone_is_found() -> None:
    assert cleanup.left_behind(raw(["example.com/other", LEGACY_FINALIZER], deleting=True))
    assert not cleanup.left_behind(raw([LEGACY_FINALIZER, FINALIZER], deleting=True))  # kopf's handler runs
    assert not cleanup.left_behind(raw([LEGACY_FINALIZER]))  # not being deleted (kopf adds its own)
    assert not cleanup.left_behind(raw([], deleting=True))


def job(spec: dict[str, Any] | None = None, uid: str = "u-1") -> Cleanup:
    return Cleanup(ObjectRef("ns", "a", "GatewayAPI", uid), Owner("torii.dev/v1alpha1", "GatewayAPI", "a", uid), 1,
                   spec or {"gateway": "tyk"}, {}, gateway="tyk", memo=None)  # fmt: skip


class Queue:
    """Holding.hand_off, running each job at once as a task."""

    def __init__(self) -> None:
        self.handed: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []

    def __call__(self, gateway: str, run: Callable[[], Awaitable[None]]) -> None:
        self.handed.append(gateway)
        self.tasks.append(asyncio.ensure_future(run()))

    async def drained(self) -> None:
        """Every job handed so far has run to its end."""
        await asyncio.gather(*self.tasks)


async def test_retried_on_its_delay_then_forgotten_once_done() -> None:
    seen: list[tuple[int, dict[str, Any]]] = []
    answers = iter([0.01, 0.01, None])
    last = asyncio.Event()

    async def attempt(j: Cleanup) -> float | None:
        seen.append((j.attempt, j.spec))
        answer = next(answers)
        if answer is None:
            last.set()
        return answer

    queue = Queue()
    cleanups = Cleanups(queue, attempt)
    cleanups.submit(job())
    await asyncio.wait_for(last.wait(), 5)
    await queue.drained()
    assert [a for a, _ in seen] == [0, 1, 2] and queue.handed == ["tyk"] * 3
    assert not cleanups.changed("u-1", {"gateway": "tyk"})  # done: nothing pending any more


async def test_a_spec_change_is_taken_at_once_not_after_the_backoff() -> None:
    seen: list[dict[str, Any]] = []

    async def attempt(j: Cleanup) -> float | None:
        seen.append(j.spec)
        return None if j.spec.get("deletionPolicy") == "Orphan" else 3600.0  # an unreachable gateway

    queue = Queue()
    cleanups = Cleanups(queue, attempt)
    cleanups.submit(job())
    await queue.drained()
    assert cleanups.changed("u-1", {"gateway": "tyk"})  # pending, unchanged: still waits for its timer
    assert len(queue.tasks) == 1 and cleanups.pending["u-1"].timer is not None
    assert cleanups.changed("u-1", {"gateway": "tyk", "deletionPolicy": "Orphan"})
    await queue.drained()
    assert "u-1" not in cleanups.pending
    assert seen == [{"gateway": "tyk"}, {"gateway": "tyk", "deletionPolicy": "Orphan"}]


async def test_a_failed_attempt_is_retried_and_one_object_runs_once_at_a_time() -> None:
    running, peak, calls = 0, 0, 0
    gate = asyncio.Event()

    async def attempt(j: Cleanup) -> float | None:
        nonlocal running, peak, calls
        calls += 1
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        if calls == 1:
            raise RuntimeError("apiserver hiccup")
        return None

    queue = Queue()
    cleanups = Cleanups(queue, attempt)
    first = job()
    cleanups.submit(first)
    cleanups.submit(first)  # found again from its watch event while queued: not a second run
    gate.set()
    await queue.drained()
    # One run (not two), and its retry waits for the backoff, not at once.
    assert len(queue.tasks) == 1 and calls == 1 and peak == 1 and first.timer is not None
    first.timer.cancel()
    cleanups._queue(first)  # the timer fires
    await queue.drained()
    assert calls == 2 and peak == 1 and "u-1" not in cleanups.pending


class FakeKube(kube.Kube):
    """The apiserver's answers to a finalizer removal: the list moved once (a test op fails), then removed."""

    def __init__(self) -> None:
        super().__init__(lambda: None)  # type: ignore[arg-type,return-value]
        self.calls: list[tuple[str, Any]] = []
        self.finalizers = ["example.com/first", FINALIZER]

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if method == "GET":
            self.calls.append(("GET", None))
            return httpx.Response(200, json={"metadata": {"uid": "u-1", "finalizers": self.finalizers}})
        ops = json.loads(kwargs["content"])
        self.calls.append(("PATCH", ops))
        after = list(self.finalizers)
        for op in ops[1:]:  # (the uid test first)
            at = int(op["path"].rsplit("/", 1)[1])
            if op["op"] == "test" and (at >= len(after) or after[at] != op["value"]):
                return httpx.Response(422, json={"message": "test failed"})
            if op["op"] == "remove":
                del after[at]
        self.finalizers = after
        return httpx.Response(200, json={})


async def test_the_finalizer_is_removed_at_its_index_reading_again_when_the_list_moved() -> None:
    fake = FakeKube()
    kube.use(fake)
    try:
        await kube.release_finalizer("gatewayapis", "ns", "a", "u-1", [FINALIZER], known=[FINALIZER])
    finally:
        kube.use(None)
    assert [c[0] for c in fake.calls] == ["PATCH", "GET", "PATCH"]  # the guess was wrong: read, then removed
    assert fake.calls[2][1][0] == {"op": "test", "path": "/metadata/uid", "value": "u-1"}
    assert fake.finalizers == ["example.com/first"]


async def test_an_object_already_gone_needs_nothing() -> None:
    class Gone(FakeKube):
        async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
            self.calls.append((method, None))
            return httpx.Response(404, json={})

    fake = Gone()
    kube.use(fake)
    try:
        await kube.release_finalizer("gatewayapis", "ns", "a", "u-1", [FINALIZER])
    finally:
        kube.use(None)
    assert fake.calls == [("GET", None)]


async def test_both_finalizers_are_removed_in_one_patch_at_their_indexes_the_last_first() -> None:
    fake = FakeKube()
    fake.finalizers = [LEGACY_FINALIZER, "example.com/first", FINALIZER]
    kube.use(fake)
    try:
        await kube.release_finalizer("gatewayapis", "ns", "a", "u-1", [FINALIZER, LEGACY_FINALIZER],
                                     known=list(fake.finalizers))  # fmt: skip
    finally:
        kube.use(None)
    assert [c[0] for c in fake.calls] == ["PATCH"] and fake.finalizers == ["example.com/first"]
    assert [op["path"] for op in fake.calls[0][1] if op["op"] == "remove"] == [
        "/metadata/finalizers/2", "/metadata/finalizers/0"]  # fmt: skip


async def test_an_object_gone_drops_its_pending_cleanup() -> None:
    calls = 0

    async def attempt(j: Cleanup) -> float | None:
        nonlocal calls
        calls += 1
        return 3600.0  # an unreachable gateway

    queue = Queue()
    cleanups = Cleanups(queue, attempt)
    cleanups.submit(job())
    await queue.drained()
    timer = cleanups.pending["u-1"].timer
    assert timer is not None
    cleanups.forget("u-1")  # its finalizers removed by hand: DELETED
    assert "u-1" not in cleanups.pending and timer.cancelled() and calls == 1


async def test_a_job_submitted_while_another_of_its_object_runs_gets_its_turn() -> None:
    gate = asyncio.Event()
    ran: list[int] = []

    async def attempt(j: Cleanup) -> float | None:
        ran.append(id(j))
        await gate.wait()
        return None

    queue = Queue()
    cleanups = Cleanups(queue, attempt)
    first, second = job(), job()
    cleanups.submit(first)
    await asyncio.sleep(0)  # the first is running
    cleanups.submit(second)
    gate.set()
    await queue.drained()
    await queue.drained()  # (the second, queued when the first ended)
    assert ran == [id(first), id(second)] and "u-1" not in cleanups.pending


class ApiserverForCleanups(kube.Kube):
    """What a handed-over cleanup asks the apiserver: Events posted, the finalizer released (recorded)."""

    def __init__(self) -> None:
        super().__init__(lambda: None)  # type: ignore[arg-type,return-value]
        self.calls: list[tuple[str, str]] = []
        self.released = asyncio.Event()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self.calls.append((method, path))
        if method == "PATCH":
            self.released.set()
        return httpx.Response(200, json={})


async def test_the_deletion_handler_hands_over_once_and_leaves_a_pending_or_done_cleanup_alone() -> None:
    """kopf runs the deletion handler again on each event of an object being deleted: for one whose cleanup is
    pending, or done (an event kopf processes after the release), it must not delete again."""
    deletes: list[dict[str, Any]] = []
    started, gate = asyncio.Event(), asyncio.Event()

    async def delete(ctx: Any, ref: Any, owner: Any, spec: dict[str, Any], generation: int,
                     status: dict[str, Any]) -> Outcome:  # fmt: skip
        deletes.append(spec)
        started.set()
        await gate.wait()
        return Outcome(status)

    registry = kopf.OperatorRegistry()
    register_kind(registry, OperatorSettings(), Tracker("GatewayAPI"), plural="gatewayapis",
                  reconcile=None, delete=delete, waker=Waker(), retries=Retries(),  # type: ignore[arg-type]
                  resumes=Resumes(concurrency=1), holding=Holding(limit=0))  # fmt: skip
    (on_delete,) = [h.fn for h in registry._changing.get_all_handlers() if h.id == "cleanup"]
    memo = kopf.Memo()
    memo.gateways = Gateways({"tyk": object()}, "tyk")  # type: ignore[dict-item]
    apiserver = ApiserverForCleanups()
    kube.use(apiserver)
    try:
        body = raw([FINALIZER], deleting=True, uid="u-handler")

        async def event(spec: dict[str, Any] | None = None) -> None:
            seen = {**body, "spec": spec or body["spec"]}
            await on_delete(body=kopf.Body(seen), patch=kopf.Patch(), memo=memo)  # type: ignore[call-arg]

        await event()  # handed over (no room for held deletions): its cleanup starts
        await started.wait()
        await event()  # an event while it runs: nothing more
        await event({"gateway": "tyk", "deletionPolicy": "Orphan"})  # a spec change: for the next attempt
        assert len(deletes) == 1 and cleanup.handed_over("u-handler")
        gate.set()
        await apiserver.released.wait()  # the finalizer released: the cleanup is done
        await event()  # kopf processes the last event only now: still nothing
        # (a cleanup wrongly started by it would run in a handed-off worker: wait for every other task)
        await asyncio.gather(*(t for t in asyncio.all_tasks() if t is not asyncio.current_task()))
    finally:
        kube.use(None)
    assert len(deletes) == 1 and cleanup.handed_over("u-handler")
