"""What kopf remembers of each object between its events (`ResourceMemory`), lean.

kopf keeps one record per object for the object's life: the record, an error throttler, an indexing record and a
daemons record with its own set and dict, each a dataclass with a `__dict__`: about 720 bytes per object, 7 MB at
10,000 objects, all of it there while nothing happens. Torii registers no daemons, timers or indexes, so here the
record and its throttler are slotted, and every object shares one empty, read-only indexing record and daemons
record (kopf only reads them without such handlers; `install` refuses a registry that has one, and a write
raises).
kopf has no hook for this: `inventory.ResourceMemory` (looked up at call time by `ResourceMemories.recall`) is
replaced; a unit test runs kopf's own recall and fails if a kopf upgrade moves it (pinned below 1.46).
"""

from __future__ import annotations

import types
from typing import Any

import kopf
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


class ReadOnly:
    """A record every object shares: its fields are set once here, and a write raises (`install` refuses a
    registry with daemons, timers or indexes, the only handlers kopf writes these records for)."""

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"kopf wrote {name} of a record all objects share (torii.memories): Torii has no daemon, "
                        "timer or index")  # fmt: skip


class NoDaemons(ReadOnly, daemons.DaemonsMemory):
    """The daemons record of an object of an operator without daemons or timers: empty."""


class NoIndexing(ReadOnly, indexing.IndexingMemory):
    """The indexing record of an object of an operator without indexes: empty."""


NO_DAEMONS = NoDaemons(live_fresh_body=None, idle_reset_time=0.0, forever_stopped=frozenset(),
                       running_daemons=types.MappingProxyType({}))  # fmt: skip
NO_INDEXING = NoIndexing(indexing_state=None)


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


def install(registry: kopf.OperatorRegistry) -> None:
    """kopf records every object it sees as a LeanMemory (idempotent). Called once every handler is registered:
    a daemon, timer or index would need the per-object records this shares, so it is refused here, at start-up."""
    extra = [*registry._spawning.get_all_handlers(), *registry._indexing.get_all_handlers()]
    if extra:
        raise RuntimeError(f"torii.memories shares kopf's daemons and indexing records, but handlers need them: "
                           f"{', '.join(str(h.id) for h in extra)}")  # fmt: skip
    inventory.ResourceMemory = LeanMemory  # type: ignore[misc,assignment]
