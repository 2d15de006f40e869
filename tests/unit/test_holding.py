"""How many changes wait in kopf's workers (`torii.handlers.kinds.Holding`): beyond the limit a change is handed
off to its gateway's queue, whose workers run a bounded number at a time, so one slow gateway's queue never
delays another gateway's changes."""

from __future__ import annotations

import asyncio
import contextvars
from functools import partial

from torii.handlers.kinds import Holding, detached


def test_full_at_the_limit_and_free_again_when_a_held_change_ends() -> None:
    holding = Holding(2)
    with holding:
        assert not holding.full()
        with holding:
            assert holding.full()
        assert not holding.full()
    assert Holding(0).full()  # maxHeldChanges: 0 hands off every change


async def test_handed_off_reconciles_take_turns_per_gateway() -> None:
    holding = Holding(0, handed_off=2)
    slow = asyncio.Event()
    running: dict[str, int] = {"slow": 0, "fast": 0}
    peak: dict[str, int] = {"slow": 0, "fast": 0}
    done: dict[str, list[int]] = {"slow": [], "fast": []}
    all_fast = asyncio.Event()

    async def reconcile(gateway: str, n: int) -> None:
        running[gateway] += 1
        peak[gateway] = max(peak[gateway], running[gateway])
        if gateway == "slow":
            await slow.wait()  # a gateway that does not answer
        else:
            await asyncio.sleep(0)  # a gateway that answers: the others get their turn meanwhile
        running[gateway] -= 1
        done[gateway].append(n)
        if len(done["fast"]) == 4:
            all_fast.set()

    for n in range(5):
        holding.hand_off("slow", partial(reconcile, "slow", n))
    # The slow gateway's workers are all busy; the other gateway's changes still go through at once.
    for n in range(4):
        holding.hand_off("fast", partial(reconcile, "fast", n))
    await asyncio.wait_for(all_fast.wait(), 5)
    assert done["fast"] == [0, 1, 2, 3] and peak["fast"] == 2
    assert running["slow"] == 2 and done["slow"] == []  # two at a time, three waiting their turn
    slow.set()
    await asyncio.wait_for(asyncio.gather(*holding._workers), 5)
    assert sorted(done["slow"]) == [0, 1, 2, 3, 4] and peak["slow"] == 2


async def test_a_failing_change_does_not_stop_its_queue_and_drained_queues_are_dropped() -> None:
    holding = Holding(0, handed_off=1)
    ran: list[int] = []
    finished = asyncio.Event()

    async def reconcile(n: int) -> None:
        ran.append(n)
        if n == 0:
            raise RuntimeError("a bug in a report")
        if n == 2:
            finished.set()

    for n in range(3):
        holding.hand_off("gw", partial(reconcile, n))
    await asyncio.wait_for(finished.wait(), 5)
    await asyncio.wait_for(asyncio.gather(*holding._workers), 5)
    assert ran == [0, 1, 2]
    assert holding._queues == {} and holding._running == {}  # nothing kept per gateway once drained


async def test_a_handed_off_reconcile_keeps_nothing_of_the_handlers_context() -> None:
    handler_state: contextvars.ContextVar[list[int]] = contextvars.ContextVar("handler_state")
    handler_state.set([0] * 1000)  # what kopf keeps per handler call (its cause: the body, the patch, ...)

    async def reconcile() -> list[int] | None:
        return handler_state.get(None)

    assert await detached(reconcile(), name="t") is None
    assert await asyncio.create_task(reconcile()) is not None  # what a plain task would have kept
