"""Every object's handlers share the operator's one memo: kopf's per-object copy of it (a dict per object, for
the object's life) is not made."""

from __future__ import annotations

import kopf
from kopf._core.reactor.inventory import ResourceMemories

from torii.operator import SharedMemo


def raw(uid: str) -> dict[str, object]:
    return {"apiVersion": "torii.dev/v1alpha1", "kind": "GatewayAPI",
            "metadata": {"name": uid, "namespace": "n", "uid": uid}}  # fmt: skip


async def test_each_object_gets_the_operators_memo_itself() -> None:
    memo = SharedMemo()
    memo.gateways = "the drivers"
    memories = ResourceMemories()
    first = await memories.recall(raw("a"), memobase=memo)
    second = await memories.recall(raw("b"), memobase=memo)
    assert first is not second  # kopf still keeps its own record per object
    assert first.memo is memo and second.memo is memo
    plain = await memories.recall(raw("c"), memobase=kopf.Memo(gateways="x"))
    assert plain.memo.gateways == "x"  # what kopf does with its own Memo: a copy per object
