"""What kopf remembers of each object between its events is Torii's lean record (`torii.memories`): kopf's own
recall makes it, it has every field kopf's record has, kopf's error throttling works on it, and the shared
records of an operator without daemons or indexes refuse writes."""

from __future__ import annotations

import dataclasses
import logging

import kopf
import pytest
from kopf._core.actions import throttlers
from kopf._core.reactor.inventory import ResourceMemories

from torii import memories
from torii.operator import SharedMemo


def raw(uid: str) -> dict[str, object]:
    return {"apiVersion": "torii.dev/v1alpha1", "kind": "GatewayAPI",
            "metadata": {"name": uid, "namespace": "n", "uid": uid}}  # fmt: skip


def test_the_lean_record_has_every_field_of_kopfs() -> None:
    fields = {f.name for f in dataclasses.fields(memories.KOPF_MEMORY)}
    assert fields == {
        "memo",
        "error_throttler",
        "indexing_memory",
        "daemons_memory",
        "remaining_patch",
        "noticed_by_listing",
        "fully_handled_once",
    }  # fmt: skip (a kopf upgrade that adds one fails)
    lean = memories.LeanMemory()
    assert all(hasattr(lean, name) for name in fields)
    throttler_fields = {f.name for f in dataclasses.fields(throttlers.Throttler)}
    assert throttler_fields == set(memories.Throttler.__slots__)


async def test_kopfs_recall_makes_lean_records_that_keep_kopfs_state() -> None:
    memories.install(kopf.OperatorRegistry())
    memo = SharedMemo()
    store = ResourceMemories()
    first = await store.recall(raw("a"), memobase=memo, noticed_by_listing=True)
    assert isinstance(first, memories.LeanMemory) and first.memo is memo and first.noticed_by_listing
    first.fully_handled_once = True
    assert (await store.recall(raw("a"), memobase=memo)) is first and first.fully_handled_once
    second = await store.recall(raw("b"), memobase=memo)
    assert second.error_throttler is not first.error_throttler  # each object's own throttling
    assert second.daemons_memory is first.daemons_memory is memories.NO_DAEMONS  # shared, empty
    assert first.daemons_memory.live_fresh_body is None and not first.daemons_memory.forever_stopped


async def test_kopfs_error_throttling_works_on_the_slotted_throttler() -> None:
    throttler = memories.Throttler()
    async with throttlers.throttled(throttler=throttler, delays=[0.0], logger=logging.getLogger("t")) as run:
        assert run
        raise RuntimeError("an unexpected error in kopf's processing")
    assert throttler.last_used_delay == 0.0  # throttling took its delay from the sequence
    async with throttlers.throttled(throttler=throttler, delays=[0.0], logger=logging.getLogger("t")) as run:
        assert run
    assert throttler.source_of_delays is None and throttler.last_used_delay is None  # and reset after a success


def test_the_shared_records_refuse_writes() -> None:
    with pytest.raises(TypeError, match="live_fresh_body of a record all objects share"):
        memories.NO_DAEMONS.live_fresh_body = None
    with pytest.raises(TypeError, match="indexing_state of a record all objects share"):
        memories.NO_INDEXING.indexing_state = None


def test_a_registry_with_a_daemon_or_an_index_is_refused_at_start_up() -> None:
    for decorator in (kopf.daemon, kopf.timer, kopf.index):
        registry = kopf.OperatorRegistry()
        decorator("torii.dev", "v1alpha1", "gatewayapis", registry=registry, id="needs-its-record")(lambda **_: None)
        with pytest.raises(RuntimeError, match="needs-its-record"):
            memories.install(registry)
