"""The operator's garbage-collector settings (torii.heap)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable

from torii import heap


def test_settle_freezes_what_start_up_made_and_spaces_out_young_collections() -> None:
    threshold = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_freeze_count() > 1000  # the imported code, out of the collector's sight
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


class Cycle:
    """Like what is still left in cycles (jsonpatch's linked lists): freed only by the cyclic collector."""

    def __init__(self) -> None:
        self.me = self


async def test_dead_cycles_are_collected_while_busy_and_an_idle_operator_is_left_alone() -> None:
    enabled = gc.isenabled()
    gc.disable()  # only the collections this test makes
    try:
        gc.collect()
        runner = asyncio.create_task(heap.collect_cycles(every=0.05))
        await asyncio.sleep(0)
        cycle = Cycle()
        dead = weakref.ref(cycle)
        gc.collect(1)  # still in use (its handler waits for its gateway): promoted to the old generation
        del cycle  # done with: now only a full collection frees it
        full = gc.get_stats()[2]["collections"]
        await asyncio.sleep(0.2)  # idle: no young collection meanwhile
        assert dead() is not None and gc.get_stats()[2]["collections"] == full
        gc.collect(0)  # busy: allocations made the young generation collect, which does not reach it
        assert dead() is not None
        await wait_for(lambda: dead() is None)
        runner.cancel()
    finally:
        if enabled:
            gc.enable()


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not collected"
        await asyncio.sleep(0.01)
