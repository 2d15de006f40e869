"""What kopf remembers of each object between its events (`ResourceMemory`), lean.

kopf keeps one record per object for the object's life: the record, an error throttler, an indexing record and a
daemons record with its own set and dict, each a dataclass with a `__dict__`: about 720 bytes per object, 7 MB at
10,000 objects, all of it there while nothing happens. Torii registers no daemons, timers or indexes, so here the
record and its throttler are slotted, and every object shares one empty, read-only indexing record and daemons
record (kopf only reads them without such handlers; a write raises: an index or daemon added to Torii must
remove this).
kopf has no hook for this: `inventory.ResourceMemory` (looked up at call time by `ResourceMemories.recall`) is
replaced; a unit test runs kopf's own recall and fails if a kopf upgrade moves it (pinned below 1.46).
"""

from __future__ import annotations

import types
from typing import Any

from kopf._cogs.structs import ephemera
from kopf._core.engines import daemons, indexing
from kopf._core.reactor import inventory

KOPF_MEMORY = inventory.ResourceMemory  # what LeanMemory stands in for (its fields are checked by a unit test)


class Throttler:
    """kopf's `throttlers.Throttler`, slotted: set by an unexpected error in kopf's processing, reset after."""

    __slots__ = ("active_until", "last_used_delay", "source_of_delays")

    def __init__(self) -> None:
        self.source_of_delays: Any = None
        self.last_used_delay: float | None = None
        self.active_until: float | None = None


class NoDaemons(daemons.DaemonsMemory):
    """The daemons record of an object of an operator without daemons or timers: empty, shared, read-only."""

    def __init__(self) -> None:
        object.__setattr__(self, "live_fresh_body", None)
        object.__setattr__(self, "idle_reset_time", 0.0)
        object.__setattr__(self, "forever_stopped", frozenset())
        object.__setattr__(self, "running_daemons", types.MappingProxyType({}))

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"Torii runs no daemons: kopf wrote {name} of the shared daemons record (torii.memories)")


class NoIndexing(indexing.IndexingMemory):
    """The indexing record of an object of an operator without indexes: empty, shared, read-only."""

    def __init__(self) -> None:
        object.__setattr__(self, "indexing_state", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"Torii has no kopf index: kopf wrote {name} of the shared indexing record (torii.memories)")


NO_DAEMONS, NO_INDEXING = NoDaemons(), NoIndexing()


class LeanMemory:
    """kopf's `inventory.ResourceMemory`, with the same fields and constructor, slotted."""

    __slots__ = ("error_throttler", "fully_handled_once", "memo", "noticed_by_listing", "remaining_patch")

    def __init__(
        self, memo: ephemera.AnyMemo | None = None, noticed_by_listing: bool = False, fully_handled_once: bool = False
    ) -> None:
        self.memo = memo if memo is not None else ephemera.AnyMemo(ephemera.Memo())
        self.noticed_by_listing, self.fully_handled_once = noticed_by_listing, fully_handled_once
        self.remaining_patch: Any = None
        self.error_throttler = Throttler()

    @property
    def indexing_memory(self) -> indexing.IndexingMemory:
        return NO_INDEXING

    @property
    def daemons_memory(self) -> daemons.DaemonsMemory:
        return NO_DAEMONS


def install() -> None:
    """kopf records every object it sees as a LeanMemory (idempotent)."""
    inventory.ResourceMemory = LeanMemory  # type: ignore[misc,assignment]
