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


async def test_a_slow_check_does_not_hold_up_the_next_pass() -> None:
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

    first = asyncio.create_task(drift_pass([tracker], check))
    await slow_started.wait()
    assert await drift_pass([tracker], check) == 1  # the second pass checks "fast" and skips the busy one
    assert seen.count("fast") == 2 and seen.count("slow") == 1
    release.set()
    assert await first == 2
