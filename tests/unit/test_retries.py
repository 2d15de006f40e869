"""Torii's own retries of failed changes (torii.handlers.retries): the failure's policy sets the delay, the
attempt count grows per object and generation, a success or a deletion clears it, and the runner re-converges
only what is due, a few at a time, without a kopf worker per waiting object."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from torii.gateways.base import ObjectRef
from torii.gateways.errors import ConfigurationError
from torii.gateways.registry import UNKNOWN, Gateways
from torii.handlers import kinds
from torii.handlers.retries import Retries
from torii.handlers.tracking import Tracked, Tracker
from torii.handlers.wake import Waker
from torii.kube import Owner
from torii.reconcile.outcome import Cause, Event, Outcome
from torii.retry import RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tracked(name: str, generation: int = 1, gateway: str | None = None) -> Tracked:
    return Tracked(ObjectRef("ns", name), Owner("torii.dev/v1alpha1", "GatewayAPI", name, f"uid-{name}"), generation,
                   {} if gateway is None else {"gateway": gateway}, {})  # fmt: skip


def memo_with(*connections: str) -> Any:
    """A memo whose gateway connections are `connections` (the first is the default); only looked up by name."""
    return SimpleNamespace(gateways=Gateways(dict.fromkeys(connections, cast(Any, None)), connections[0]))


def test_delays_follow_the_policy_and_grow_per_attempt_until_cleared() -> None:
    clock, tracker = Clock(), Tracker("GatewayAPI")
    retries = Retries(clock=clock)
    assert [retries.schedule(tracker, "u", 1, RetryPolicy.UNAVAILABLE) for _ in range(4)][:1] == [5.0]
    assert retries.attempts("u", 1) == 4  # 5, 10, 20, 20 s: an earlier due attempt is kept, the count grows
    assert retries.schedule(tracker, "u", 2, RetryPolicy.UNAVAILABLE) == 5.0  # a new generation starts again
    assert retries.attempts("u", 1) == 0
    retries.clear("u")
    assert retries.pending() == 0 and retries.attempts("u", 2) == 0
    assert retries.schedule(tracker, "u", 2, RetryPolicy.NONE) is None and retries.pending() == 0


def test_only_due_objects_are_taken_each_once_and_a_cleared_one_never() -> None:
    clock, tracker = Clock(), Tracker("GatewayAPI")
    retries = Retries(clock=clock)
    retries.schedule(tracker, "a", 1, RetryPolicy.WAITING)  # due in 5 s
    retries.schedule(tracker, "b", 1, RetryPolicy.BACKOFF)  # due in 5 s
    retries.schedule(tracker, "c", 1, RetryPolicy.BACKOFF)
    retries.clear("c")  # converged meanwhile (a spec change, a drift pass)
    assert retries.take_due() == []
    clock.now += 5
    assert sorted(uid for _, uid in retries.take_due()) == ["a", "b"]
    assert retries.take_due() == [] and retries.pending() == 0


async def test_the_runner_reconverges_what_is_due_and_forgets_deleted_objects() -> None:
    tracker = Tracker("GatewayAPI")
    for name in ("a", "b", "gone"):
        tracker.remember(tracked(name))
    retries = Retries(concurrency=1)
    checked: list[str] = []
    done = asyncio.Event()

    async def check(t: Tracker, obj: Tracked) -> None:
        checked.append(obj.ref.name)
        if len(checked) == 2:
            done.set()

    for name in ("a", "b", "gone"):
        retries.schedule(tracker, f"uid-{name}", 1, RetryPolicy.WAITING)
    tracker.forget("uid-gone")
    # Due at once (a clock moved past every delay): the runner picks them up as soon as it starts.
    retries._clock = lambda: 10**9
    runner = asyncio.create_task(retries.run(check))
    await asyncio.wait_for(done.wait(), 5)
    runner.cancel()
    assert sorted(checked) == ["a", "b"]  # the deleted one is not tried


async def test_a_schedule_wakes_a_runner_that_waits_for_a_later_attempt() -> None:
    tracker = Tracker("GatewayAPI")
    tracker.remember(tracked("late"))
    tracker.remember(tracked("soon"))
    clock = Clock()
    retries = Retries(clock=clock)
    seen: list[str] = []
    retries.schedule(tracker, "uid-late", 1, RetryPolicy.BACKOFF)  # due in 5 s of the fake clock

    async def check(t: Tracker, obj: Tracked) -> None:
        seen.append(obj.ref.name)

    runner = asyncio.create_task(retries.run(check))
    await asyncio.sleep(0.05)
    assert seen == []
    clock.now += 5  # both due now; the schedule of "soon" wakes the runner, which finds both
    retries.schedule(tracker, "uid-soon", 1, RetryPolicy.WAITING)
    clock.now += 5
    for _ in range(100):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.01)
    runner.cancel()
    assert sorted(seen) == ["late", "soon"]


def test_a_gateway_that_answers_again_makes_everything_waiting_for_it_due_at_once() -> None:
    clock, tracker = Clock(), Tracker("GatewayAPI")
    retries = Retries(clock=clock)
    waiting = {"a": "tyk", "b": "tyk", "c": "tyk", "other": "otoroshi"}  # an outage of both gateways
    for uid, gateway in waiting.items():
        retries.schedule(tracker, uid, 1, RetryPolicy.UNAVAILABLE, gateway)
    clock.now += 5
    assert sorted(uid for _, uid in retries.take_due()) == sorted(waiting)
    for uid in ("b", "c", "other"):  # still down: the next attempts are due 10 s later
        assert retries.schedule(tracker, uid, 1, RetryPolicy.UNAVAILABLE, waiting[uid]) == 10.0
    assert retries.take_due() == []
    assert retries.schedule(tracker, "a", 1, RetryPolicy.NONE, "tyk") is None  # Tyk answered "a"
    assert sorted(uid for _, uid in retries.take_due()) == ["b", "c"]  # due now, not in 10 s
    assert retries.pending() == 1  # "other" waits for its own gateway
    retries.schedule(tracker, "b", 1, RetryPolicy.NONE, "tyk")  # nothing left waiting for Tyk: no sweep
    assert retries.take_due() == []


async def test_a_drift_check_that_finds_the_gateway_down_is_retried_before_the_next_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The drift check is the only one to notice an outage of an object already served (nothing else wakes a
    # pass with one fixed Tyk node): its failure must be retried by its policy, not wait for the next pass.
    causes: list[Cause] = []
    outcomes = [Outcome({}, retry_policy=RetryPolicy.UNAVAILABLE), Outcome({})]

    async def reconcile(*args: Any) -> Outcome:
        causes.append(args[-1])
        return outcomes.pop(0)

    async def patch_status(*_: Any) -> bool:
        return True

    monkeypatch.setattr(kinds, "KINDS", [("GatewayAPI", "gatewayapis", reconcile, None)])
    monkeypatch.setattr(kinds, "context", lambda *_: None)
    monkeypatch.setattr(kinds.kube, "patch_status", patch_status)
    tracker, retries, obj = Tracker("GatewayAPI"), Retries(), tracked("served")
    tracker.remember(obj)
    settings, memo = cast(Any, None), memo_with("tyk")  # settings only handed to `context`, replaced above
    await kinds.drift_check(settings, memo, Waker(), retries)(tracker, obj)
    assert retries.pending() == 1 and retries.attempts("uid-served", 1) == 1
    retries._clock = lambda: 10**9
    assert retries.take_due() == [(tracker, "uid-served")]
    await kinds.drift_check(settings, memo, Waker(), retries, Cause.RETRY)(tracker, obj)  # the gateway is back
    assert causes == [Cause.DRIFT, Cause.RETRY]
    assert retries.pending() == 0 and retries.attempts("uid-served", 1) == 0


async def test_a_probe_that_finds_the_gateway_back_makes_its_waiting_objects_due_then_keeps_quiet() -> None:
    clock, tracker = Clock(), Tracker("GatewayAPI")
    retries = Retries(clock=clock)
    for uid, gateway in {"a": "tyk", "b": "tyk", "x": "otoroshi"}.items():
        retries.schedule(tracker, uid, 1, RetryPolicy.UNAVAILABLE, gateway)
    retries.schedule(tracker, "bad", 1, RetryPolicy.BACKOFF, "tyk")  # not waiting for Tyk to come back
    up = {"tyk": False, "otoroshi": False}
    asked: list[str] = []

    async def probe(gateway: str) -> bool:
        asked.append(gateway)
        return up[gateway]

    assert await retries.probe_once(probe) == [] and sorted(asked) == ["otoroshi", "tyk"]
    assert retries.take_due() == []  # nobody answered: nothing moves
    up["tyk"] = True
    assert await retries.probe_once(probe) == ["tyk"]
    assert sorted(uid for _, uid in retries.take_due()) == ["a", "b"]  # now, not 5 s later; "bad" keeps its time
    # Tyk answered the probe but its objects still fail as unavailable: no probe of it for PROBE_QUIET, so they
    # are not pulled forward every few seconds.
    for uid in ("a", "b"):
        retries.schedule(tracker, uid, 1, RetryPolicy.UNAVAILABLE, "tyk")
    asked.clear()
    assert await retries.probe_once(probe) == [] and asked == ["otoroshi"]
    clock.now += 20
    asked.clear()
    await retries.probe_once(probe)
    assert sorted(asked) == ["otoroshi", "tyk"]


async def test_a_probe_that_hangs_is_a_no_and_does_not_hold_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    from torii.handlers import retries as module

    monkeypatch.setattr(module, "PROBE_TIMEOUT", 0.05)
    tracker, retries = Tracker("GatewayAPI"), Retries()
    retries.schedule(tracker, "a", 1, RetryPolicy.UNAVAILABLE, "blackholed")
    retries.schedule(tracker, "b", 1, RetryPolicy.UNAVAILABLE, "tyk")

    async def probe(gateway: str) -> bool:
        if gateway == "blackholed":
            await asyncio.sleep(3600)
        return True

    assert await asyncio.wait_for(retries.probe_once(probe), 5) == ["tyk"]
    assert retries.waiting_for() == ["blackholed"]


async def test_a_warning_repeated_by_retries_is_posted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # During an outage every waiting object is retried several times with the same failure: one event each,
    # not one per attempt (each is an apiserver write); a new failure (another message) is posted again.
    from torii.reconcile.outcome import Event

    def failure(message: str) -> Outcome:
        status = {"conditions": [{"type": "Ready", "status": "False", "reason": "GatewayUnavailable",
                                  "message": message}]}  # fmt: skip
        return Outcome(status, [Event("Warning", "GatewayUnavailable", message)],
                       retry_policy=RetryPolicy.UNAVAILABLE)  # fmt: skip

    outcomes = [failure("tyk is down"), failure("tyk is down"), failure("tyk answers 503")]
    posted: list[str] = []

    async def reconcile(*_: Any) -> Outcome:
        return outcomes.pop(0)

    async def patch_status(*_: Any) -> bool:
        return True

    async def post_event(_ref: Any, type_: str, reason: str, message: str) -> None:
        posted.append(message)

    monkeypatch.setattr(kinds, "KINDS", [("GatewayAPI", "gatewayapis", reconcile, None)])
    monkeypatch.setattr(kinds, "context", lambda *_: None)
    monkeypatch.setattr(kinds.kube, "patch_status", patch_status)
    monkeypatch.setattr(kinds.kube, "post_event", post_event)
    tracker, retries, obj = Tracker("GatewayAPI"), Retries(), tracked("waiting")
    tracker.remember(obj)
    check = kinds.drift_check(cast(Any, None), memo_with("tyk"), Waker(), retries, Cause.RETRY)
    for _ in range(3):
        await check(tracker, obj)
    assert posted == ["tyk is down", "tyk answers 503"]


async def test_an_outcome_recorded_without_kopf_writes_what_changed_and_repeats_a_warning_only_for_a_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One function records the outcome of every reconcile kopf does not write for (drift checks, retries,
    # resumes, handed-off changes). A check that finds the same failure again writes nothing (during an outage
    # that would be a patch and an event per object per attempt); a change answers with its warning even so.
    patched: list[dict[str, Any]] = []
    posted: list[str] = []
    gone = False

    async def patch_status(_plural: str, _ns: str, _name: str, fields: dict[str, Any]) -> bool:
        patched.append(fields)
        return not gone

    async def post_event(_reference: Any, type_: str, reason: str, _message: str) -> None:
        posted.append(f"{type_}/{reason}")

    monkeypatch.setattr(kinds.kube, "patch_status", patch_status)
    monkeypatch.setattr(kinds.kube, "post_event", post_event)
    refused = {"type": "Ready", "status": "False", "reason": "Rejected", "message": "spec.proxy: refused"}
    outcome = Outcome({"conditions": [refused]}, [Event("Warning", "Rejected", "spec.proxy: refused")],
                      RetryPolicy.BACKOFF)  # fmt: skip
    tracker, retries, obj = Tracker("GatewayAPI"), Retries(), tracked("refused")

    async def record(repeat_warnings: bool) -> bool | None:
        return await kinds.record_outcome(memo_with("tyk"), tracker, retries, "gatewayapis", obj, outcome, Cause.DRIFT,
                                          repeat_warnings=repeat_warnings)  # fmt: skip

    assert await record(False) is True
    assert patched == [{"conditions": [refused]}] and posted == ["Warning/Rejected"]
    assert retries.attempts("uid-refused", 1) == 1  # tried again by its policy
    obj.status = dict(outcome.status)  # what was written
    assert await record(False) is False and len(patched) == 1 and posted == ["Warning/Rejected"]
    assert await record(True) is False and len(patched) == 1 and posted == ["Warning/Rejected"] * 2
    obj.status, gone = {}, True
    assert await record(True) is None and posted == ["Warning/Rejected"] * 2  # deleted meanwhile: nothing posted


async def test_objects_wait_per_resolved_connection_and_made_up_names_share_one_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The retries' per-gateway waits (and the handed-off queues) are keyed by the connection an object reaches:
    # one naming the default connection and one leaving spec.gateway empty wait for the same gateway (one probe,
    # and both pulled forward when it answers); names a tenant makes up add no entry of their own.
    async def patch_status(*_: Any) -> bool:
        return True

    monkeypatch.setattr(kinds.kube, "patch_status", patch_status)
    memo, tracker, retries = memo_with("tyk", "otoroshi"), Tracker("GatewayAPI"), Retries()
    down = Outcome({}, retry_policy=RetryPolicy.UNAVAILABLE)
    objects = [tracked("empty"), tracked("named", gateway="tyk"), tracked("other", gateway="otoroshi"),
               *(tracked(f"made-up-{i}", gateway=f"nowhere-{i}") for i in range(3))]  # fmt: skip
    for obj in objects:
        await kinds.record_outcome(memo, tracker, retries, "gatewayapis", obj, down, Cause.DRIFT,
                                   repeat_warnings=False)  # fmt: skip
    assert sorted(retries.waiting_for()) == sorted(["tyk", "otoroshi", UNKNOWN])
    assert kinds.gateway_of(memo, {}, {}) == kinds.gateway_of(memo, {"gateway": "tyk"}, {}) == "tyk"
    assert kinds.gateway_of(memo, {"gateway": "nowhere"}, {"gateway": "otoroshi"}) == "otoroshi"  # as resolved


def test_a_connection_whose_set_up_failed_keeps_its_own_key() -> None:
    # Its objects wait for it to be repaired (a restart with a fixed Secret), not with the made-up names.
    gateways = Gateways({}, "tyk", broken={"tyk": ConfigurationError("adminSecret: no key 'token'")})
    assert gateways.key_of(None) == gateways.key_of("tyk") == "tyk" and gateways.key_of("nope") == UNKNOWN
