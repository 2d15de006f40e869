"""GatewayAPI lookups from memory: what the apiserver would answer, without a read per key."""

from __future__ import annotations

from typing import Any

from torii.gateways.base import ObjectRef
from torii.handlers.tracking import Tracked, TrackedApis, Tracker
from torii.kube import Owner
from torii.reconcile.references import api_serving


class Apiserver:
    def __init__(self) -> None:
        self.reads: list[str] = []

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(f"{namespace}/{name}")
        return None

    async def in_group(self, namespace: str, group: str) -> list[dict[str, Any]]:
        self.reads.append(f"{namespace} group {group}")
        return []


def tracked(name: str, uid: str, generation: int, observed: int) -> Tracked:
    ready = {"type": "Ready", "status": "True", "observedGeneration": observed}
    return Tracked(ObjectRef("shop", name, "GatewayAPI", uid), Owner("torii.dev/v1alpha1", "GatewayAPI", name, uid),
                   generation, {"auth": "key"}, {"gatewayId": f"torii.shop.{name}", "conditions": [ready]})  # fmt: skip


async def test_a_handled_api_is_answered_from_memory_and_a_forgotten_one_from_the_apiserver() -> None:
    tracker, apiserver = Tracker("GatewayAPI"), Apiserver()
    apis = TrackedApis(tracker, apiserver)
    tracker.remember(tracked("orders", "u1", 2, 2))
    obj = await apis.get("shop", "orders")
    assert obj is not None and apiserver.reads == []
    assert api_serving(obj) and obj["spec"]["auth"] == "key" and obj["metadata"]["uid"] == "u1"
    tracker.remember(tracked("orders", "u1", 3, 2))  # a new generation not handled yet: not serving it
    assert not api_serving(await apis.get("shop", "orders") or {})
    assert await apis.get("other", "orders") is None and apiserver.reads == ["other/orders"]  # namespaces apart
    # Recreated under the same name: the old object's forget never drops the new one.
    tracker.remember(tracked("orders", "u2", 1, 1))
    tracker.forget("u1")
    assert (await apis.get("shop", "orders") or {})["metadata"]["uid"] == "u2"
    tracker.forget("u2")  # being deleted: the apiserver says how it stands
    assert await apis.get("shop", "orders") is None and apiserver.reads[-1] == "shop/orders"
    await apis.in_group("shop", "payments")
    assert apiserver.reads[-1] == "shop group payments"  # members are listed, memory may lack some


async def test_a_record_read_and_changed_by_its_reader_stays_what_was_written() -> None:
    # Records are kept packed (compact JSON): each read is a fresh copy, so a reconcile that edits the spec or
    # status it was handed (or a key editing its API's) cannot change what the next drift check starts from.
    record = tracked("orders", "u1", 2, 2)
    spec, status = record.spec, record.status
    spec["auth"], status["gatewayId"] = "keyless", "someone-else"
    status["conditions"][0]["status"] = "False"
    assert record.spec == {"auth": "key"}
    assert record.status["gatewayId"] == "torii.shop.orders"
    assert record.status["conditions"][0]["status"] == "True"
    record.status = {**record.status, "gatewayId": "torii.shop.orders-2"}  # what a drift check writes back
    assert record.status["gatewayId"] == "torii.shop.orders-2" and record.spec == {"auth": "key"}
    tracker, apiserver = Tracker("GatewayAPI"), Apiserver()
    tracker.remember(record)
    first = await TrackedApis(tracker, apiserver).get("shop", "orders")
    assert first is not None
    first["spec"]["auth"] = "keyless"
    assert (await TrackedApis(tracker, apiserver).get("shop", "orders") or {})["spec"] == {"auth": "key"}
