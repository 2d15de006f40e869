"""The drift pass: every tracked object once per pass, busy ones left to whoever holds them."""

from __future__ import annotations

import asyncio

from torii.gateways.base import ObjectRef
from torii.handlers.drift import drift_pass
from torii.handlers.tracking import Tracked, Tracker
from torii.kube import Owner


def tracked(name: str) -> Tracked:
    return Tracked(ObjectRef("ns", name), Owner("torii.dev/v1alpha1", "GatewayAPI", name, f"uid-{name}"), 1, {}, {})


async def test_a_pass_checks_each_object_once_and_skips_busy_or_failing_ones() -> None:
    tracker = Tracker("GatewayAPI")
    for name in ("a", "b", "c", "d"):
        tracker.remember(tracked(name))
    seen: list[str] = []

    async def check(t: Tracker, obj: Tracked) -> None:
        seen.append(obj.ref.name)
        if obj.ref.name == "c":
            raise RuntimeError("a broken object")

    async with tracker.lock("uid-b"):  # a change handler is on b right now
        checked = await drift_pass([tracker], check)
    assert sorted(seen) == ["a", "c", "d"] and checked == 3  # c's failure stopped nothing


async def test_a_slow_check_does_not_hold_up_its_pass_nor_the_next() -> None:
    tracker = Tracker("GatewayAPI")
    tracker.remember(tracked("slow"))
    tracker.remember(tracked("fast"))
    release, slow_started = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def check(t: Tracker, obj: Tracked) -> None:
        async with t.lock(obj.owner.uid):
            seen.append(obj.ref.name)
            if obj.ref.name == "slow":
                slow_started.set()
                await release.wait()

    # One worker: "slow" goes over its budget and is left running; the pass goes on to "fast" and ends.
    assert await drift_pass([tracker], check, concurrency=1, budget=0.05) == 2
    assert slow_started.is_set() and seen.count("fast") == 1
    assert await drift_pass([tracker], check, concurrency=1, budget=0.05) == 1  # the next skips the busy one
    assert seen.count("fast") == 2 and seen.count("slow") == 1
    release.set()
    await asyncio.sleep(0)


async def test_a_pass_of_many_objects_runs_only_its_pool_of_checks_at_once() -> None:
    tracker = Tracker("GatewayAPI")
    for i in range(500):
        tracker.remember(tracked(f"o{i}"))
    running = peak = 0

    async def check(t: Tracker, obj: Tracked) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1

    assert await drift_pass([tracker], check, concurrency=16) == 500
    assert peak <= 16
