"""Objects found at start-up are converged by Torii's resume runner (torii.handlers.resumes), a bounded number
at a time, not each in a kopf worker: every submitted object is checked once, those deleted before their turn
not at all, and one failure stops none of the others."""

from __future__ import annotations

import asyncio

from torii.gateways.base import ObjectRef
from torii.handlers.resumes import Resumes
from torii.handlers.tracking import Tracked, Tracker
from torii.kube import Owner


def tracked(name: str) -> Tracked:
    return Tracked(ObjectRef("ns", name), Owner("torii.dev/v1alpha1", "GatewayAPI", name, f"uid-{name}"), 1, {}, {})


async def test_every_object_checked_once_never_more_than_the_limit_at_once() -> None:
    tracker, resumes = Tracker("GatewayAPI"), Resumes(concurrency=3)
    checked: list[str] = []
    running = peak = 0
    release, three_running, all_checked = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def check(_: Tracker, t: Tracked) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 3:
            three_running.set()
        await release.wait()  # like a check waiting for its burst to be confirmed
        checked.append(t.ref.name)
        running -= 1
        if len(checked) == 9:
            all_checked.set()
        if t.ref.name == "o-4":
            raise RuntimeError("one object's failure")

    for i in range(10):
        tracker.remember(tracked(f"o-{i}"))
        resumes.submit(tracker, f"uid-o-{i}")
    tracker.forget("uid-o-9")  # deleted before its turn
    runner = asyncio.create_task(resumes.run(check))
    await asyncio.wait_for(three_running.wait(), 5)
    for _ in range(20):  # let the runner go as far as it would
        await asyncio.sleep(0)
    assert running == 3 and resumes.pending() == 9  # three checks at once, the rest still queued
    release.set()
    await asyncio.wait_for(all_checked.wait(), 5)
    runner.cancel()
    assert sorted(checked) == [f"o-{i}" for i in range(9)] and peak == 3
