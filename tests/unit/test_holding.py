"""How many changes wait in kopf's workers (`torii.handlers.kinds.Holding`): beyond the limit a change is handed
off, and handed-off reconciles run a bounded number at a time per gateway, so one slow gateway's queue never
delays another gateway's changes."""

from __future__ import annotations

import asyncio
import contextvars

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

    async def reconcile(gateway: str) -> str:
        running[gateway] += 1
        peak[gateway] = max(peak[gateway], running[gateway])
        if gateway == "slow":
            await slow.wait()  # a gateway that does not answer
        else:
            await asyncio.sleep(0)  # a gateway that answers: the others get their turn meanwhile
        running[gateway] -= 1
        return gateway

    stuck = [asyncio.create_task(holding.in_turn("slow", reconcile("slow"))) for _ in range(5)]
    # The slow gateway's queue is full; the other gateway's changes still go through at once.
    done = await asyncio.wait_for(asyncio.gather(*(holding.in_turn("fast", reconcile("fast")) for _ in range(4))), 5)
    assert done == ["fast"] * 4 and peak["fast"] == 2
    assert running["slow"] == 2 and not any(t.done() for t in stuck)  # two at a time, three waiting their turn
    slow.set()
    assert await asyncio.wait_for(asyncio.gather(*stuck), 5) == ["slow"] * 5 and peak["slow"] == 2


async def test_a_handed_off_reconcile_keeps_nothing_of_the_handlers_context() -> None:
    handler_state: contextvars.ContextVar[list[int]] = contextvars.ContextVar("handler_state")
    handler_state.set([0] * 1000)  # what kopf keeps per handler call (its cause: the body, the patch, ...)

    async def reconcile() -> list[int] | None:
        return handler_state.get(None)

    assert await detached(reconcile(), name="t") is None
    assert await asyncio.create_task(reconcile()) is not None  # what a plain task would have kept
