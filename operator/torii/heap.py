"""The operator process's cyclic garbage collector, tuned for bursts.

A 1000-object burst spent 8% of the operator's CPU in the cyclic collector (py-spy). Two reasons, two settings:
- The imported code (kopf, aiohttp, pydantic, httpx: about 60 MiB of objects) never becomes garbage, but every
  full collection walks all of it. `gc.freeze()` after start-up moves it out of the collector's sight.
- A burst allocates millions of short-lived dicts and lists (watch events, bodies, patches) that reference
  counting frees on its own; collecting the young generation every 700 allocations mostly finds nothing. A
  bigger first threshold collects as surely (cycles are still found), less often.

Some garbage only the cyclic collector frees. kopf's bodies and patches and httpx's responses used to be most of
it: each event left its whole body in a cycle (in a 10,000-object burst over 10,000 dead patches waited for a
full collection at once), so `collect_cycles` ran one every 5 s while busy, each walking every live object (0.1-0.5
s at 3000 objects; 16% of the operator's CPU at N=1000). `torii.acyclic` now removes those cycles at the source.
What is left in cycles is small (jsonpatch's linked lists of kopf's finalizer patches: about 2,000 small objects
per full collection in the middle of a 1000-object apply), so a full collection every 30 s while busy is enough:
measured at N=1000, the same peak RSS as every 5 s (86-94 MiB against 85-88) for 14.2-15.6 CPU s against
17.0-17.9.
"""

from __future__ import annotations

import asyncio
import gc

YOUNG_THRESHOLD = 20_000  # allocations minus deallocations between young collections (CPython: 700)
FULL_COLLECTION_EVERY = 30.0  # seconds between full collections while busy (what is left in cycles is small)


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
