"""The operator process's cyclic garbage collector, tuned for bursts.

A 1000-object burst spent 8% of the operator's CPU in the cyclic collector (py-spy). Two reasons, two settings:
- The imported code (kopf, aiohttp, pydantic, httpx: about 60 MiB of objects) never becomes garbage, but every
  full collection walks all of it. `gc.freeze()` after start-up moves it out of the collector's sight.
- A burst allocates millions of short-lived dicts and lists (watch events, bodies, patches) that reference
  counting frees on its own; collecting the young generation every 700 allocations mostly finds nothing. A
  bigger first threshold collects as surely (cycles are still found), less often.

But some of a burst's garbage only the cyclic collector frees: every kopf `Patch` (one per handled event) and
its meta/spec/status views point at each other. A patch still in use when a young collection runs (its handler
waiting for its gateway) is promoted, and once the heap is big CPython runs full collections rarely (only when
the objects promoted since the last one reach a quarter of the old generation). In a 10,000-object burst over
10,000 dead patches were waiting for one at once. `collect_cycles` runs a full collection every few seconds
while the operator is busy.
"""

from __future__ import annotations

import asyncio
import gc

YOUNG_THRESHOLD = 20_000  # allocations minus deallocations between young collections (CPython: 700)
FULL_COLLECTION_EVERY = 5.0  # seconds between full collections while busy (each ~0.1 s at 10,000 objects)


def settle() -> None:
    """Freeze what start-up made and space out young collections (call once, when imports are done)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def _young_collections() -> int:
    return int(gc.get_stats()[0]["collections"])


async def collect_cycles(every: float = FULL_COLLECTION_EVERY) -> None:
    """A full collection every `every` seconds, skipped while idle (no young collection since the last look:
    nothing was allocated to speak of, so nothing is waiting to be freed)."""
    seen = _young_collections()
    while True:
        await asyncio.sleep(every)
        if _young_collections() != seen:
            gc.collect()
        seen = _young_collections()
