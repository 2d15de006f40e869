"""A Tyk connection with several nodes: definitions on every node, Ready only when all serve, and a node that
comes back or restarts empty is noticed at once. Each node is the verified Tyk model of test_tyk_driver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from test_tyk_driver import REF, SECRET, TykModel, spec

from torii.gateways.errors import ListenPathConflict, RetryableGatewayError
from torii.gateways.tyk import TykDriver
from torii.handlers.drift import drift_loop
from torii.handlers.tracking import Tracked, Tracker
from torii.kube import Owner
from torii.settings import GatewayConnection

URLS = ["http://node-0.tyk:8080", "http://node-1.tyk:8080", "http://node-2.tyk:8080"]


class Cluster:
    """Three Tyk nodes, each its own app directory; a node can be down (connection refused)."""

    def __init__(self) -> None:
        self.nodes = {u: TykModel() for u in URLS}
        self.down: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        if url in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/hello":
            return httpx.Response(200, json={"status": "pass", "version": "5.10.2"})
        return self.nodes[url](request)


def driver(cluster: Cluster, **options: Any) -> TykDriver:
    options.setdefault("nodes", URLS)
    return TykDriver("tyk", URLS[0], SECRET, transport=httpx.MockTransport(cluster), reload_quiet=0.01, **options)


async def test_every_node_gets_the_definition_and_reloads_once() -> None:
    cluster = Cluster()
    tyk = driver(cluster)
    result = await tyk.apis.converge_api(REF, spec())
    assert result.changed and result.created and result.nodes == (3, 3)
    for model in cluster.nodes.values():
        assert list(model.loaded) == ["torii.shop.orders"] and (model.writes, model.reloads) == (1, 1)
    assert not (await tyk.apis.converge_api(REF, spec())).changed  # in sync on every node: no write anywhere
    assert all(m.writes == 1 for m in cluster.nodes.values())
    assert await tyk.apis.delete_api(REF)
    assert all(m.loaded == {} for m in cluster.nodes.values())


async def test_a_node_that_differs_is_the_only_one_written() -> None:
    cluster = Cluster()
    tyk = driver(cluster)
    await tyk.apis.converge_api(REF, spec())
    cluster.nodes[URLS[1]].loaded["torii.shop.orders"]["proxy"]["target_url"] = "http://evil:80"  # by hand
    assert (await tyk.apis.converge_api(REF, spec())).changed
    assert [m.writes for m in cluster.nodes.values()] == [1, 2, 1]


async def test_a_node_down_is_named_and_the_others_still_serve() -> None:
    cluster = Cluster()
    tyk = driver(cluster)
    cluster.down.add(URLS[2])
    with pytest.raises(RetryableGatewayError, match=r"node http://node-2.tyk:8080: .*2/3 nodes done"):
        await tyk.apis.converge_api(REF, spec())
    assert all("torii.shop.orders" in cluster.nodes[u].loaded for u in URLS[:2])


async def test_a_path_held_on_one_node_is_a_conflict_for_the_connection() -> None:
    cluster = Cluster()
    foreign = {"api_id": "hand", "org_id": "x", "proxy": {"listen_path": "/orders/"}, "active": True}
    cluster.nodes[URLS[1]].loaded["hand"] = foreign
    with pytest.raises(ListenPathConflict, match=r"node http://node-1\.tyk:8080"):
        await driver(cluster).apis.converge_api(REF, spec())


async def test_a_node_restarted_empty_or_back_from_an_outage_wakes_the_drift_loop() -> None:
    cluster = Cluster()
    tyk = driver(cluster, node_check_seconds=0.01)
    await tyk.apis.converge_api(REF, spec())
    checked: list[str] = []
    filled = asyncio.Event()

    async def check(*_: Any) -> None:
        checked.append("pass")
        await tyk.apis.converge_api(REF, spec(), max_age=3600)  # a drift pass: any view is fresh enough
        filled.set()

    tracker = Tracker("GatewayAPI")
    tracker.remember(Tracked(REF, Owner("torii.dev/v1alpha1", "GatewayAPI", "orders", "uid-1"), 1, {}, {}))
    wake = asyncio.Event()
    watcher = asyncio.create_task(tyk.watch(wake.set))
    loop = asyncio.create_task(drift_loop([tracker], check, interval=3600, wake=wake))
    try:
        cluster.nodes[URLS[1]] = TykModel()  # restarted on an empty app directory
        await asyncio.wait_for(filled.wait(), 5)
        assert "torii.shop.orders" in cluster.nodes[URLS[1]].loaded  # refilled long before the drift interval
        filled.clear()
        cluster.down.add(URLS[2])
        await asyncio.sleep(0.05)
        cluster.nodes[URLS[2]] = TykModel()
        cluster.down.discard(URLS[2])
        await asyncio.wait_for(filled.wait(), 5)
        assert "torii.shop.orders" in cluster.nodes[URLS[2]].loaded
    finally:
        watcher.cancel()
        loop.cancel()
        await tyk.aclose()


async def test_one_node_is_not_watched() -> None:
    tyk = TykDriver("tyk", URLS[0], SECRET, transport=httpx.MockTransport(Cluster()))
    await asyncio.wait_for(tyk.watch(lambda: None), 1)  # returns at once
    assert (await tyk.apis.converge_api(REF, spec())).nodes is None  # no node count where there is one node


def test_node_urls_are_checked() -> None:
    base = {"name": "tyk", "type": "tyk", "url": URLS[0], "secretRef": {"namespace": "n", "name": "s", "key": "k"}}
    assert GatewayConnection.model_validate({**base, "nodes": URLS}).nodes == URLS
    with pytest.raises(ValueError, match="each node once"):
        GatewayConnection.model_validate({**base, "nodes": [URLS[0], URLS[0]]})
    with pytest.raises(ValueError, match="not an http"):
        GatewayConnection.model_validate({**base, "nodes": ["node-0:8080"]})


async def test_nodes_followed_from_a_service_are_filled_as_they_join() -> None:
    cluster = Cluster()
    endpoints: asyncio.Queue[list[str]] = asyncio.Queue()

    async def follow() -> AsyncIterator[list[str]]:
        while True:
            yield await endpoints.get()

    tyk = driver(cluster, nodes=(), follow=follow, follow_where="behind Service gw/tyk", node_check_seconds=60)
    refills: list[int] = []
    watcher = asyncio.create_task(tyk.watch(lambda: refills.append(1)))
    try:
        first = asyncio.create_task(tyk.apis.converge_api(REF, spec()))  # waits for the first endpoint list
        await endpoints.put(URLS[:2])
        assert (await first).nodes == (2, 2)
        assert [bool(m.loaded) for m in cluster.nodes.values()] == [True, True, False]
        await endpoints.put(URLS)  # a node joins: a drift pass is asked for at once, and fills it
        await asyncio.wait_for(_until(lambda: len(refills) == 2), 5)
        assert (await tyk.apis.converge_api(REF, spec(), max_age=3600)).nodes == (3, 3)
        assert "torii.shop.orders" in cluster.nodes[URLS[2]].loaded
        await endpoints.put(URLS[1:])  # a node leaves: not a failure, and nothing to fill
        await asyncio.wait_for(_until(lambda: len(tyk.nodes) == 2), 5)
        assert (await tyk.apis.converge_api(REF, spec())).nodes == (2, 2) and len(refills) == 2
        await endpoints.put([])
        await asyncio.wait_for(_until(lambda: len(tyk.nodes) == 0), 5)
        with pytest.raises(RetryableGatewayError, match="no ready node behind Service gw/tyk"):
            await tyk.apis.converge_api(REF, spec())
    finally:
        watcher.cancel()
        await tyk.aclose()


async def _until(condition: Any) -> None:
    """Poll a condition the driver changes from its own task (no event to await there)."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


def test_ready_endpoints_of_a_slice_become_urls() -> None:
    from torii.kube import slice_urls
    from torii.settings import NodeServiceRef

    def endpoint(address: str, ready: bool | None) -> dict[str, Any]:
        return {"addresses": [address], "conditions": {} if ready is None else {"ready": ready}}

    endpoint_slice = {
        "addressType": "IPv4", "metadata": {"name": "tyk-abc"},
        "ports": [{"name": "metrics", "port": 9090}, {"name": "admin", "port": 8080}],
        "endpoints": [endpoint("10.0.0.1", True), endpoint("10.0.0.2", False), endpoint("10.0.0.3", None),
                      endpoint("fd00::4", True)],
    }  # fmt: skip
    by_name = NodeServiceRef(namespace="gw", name="tyk", port="admin")
    assert slice_urls(endpoint_slice, by_name) == [
        "https://10.0.0.1:8080", "https://10.0.0.3:8080", "https://[fd00::4]:8080"
    ]  # fmt: skip
    by_number = NodeServiceRef(namespace="gw", name="tyk", port=9090, scheme="http")
    assert slice_urls(endpoint_slice, by_number)[0] == "http://10.0.0.1:9090"
    assert slice_urls(endpoint_slice, NodeServiceRef(namespace="gw", name="tyk", port="other")) == []


async def test_the_followed_nodes_are_admin_endpoints_before_any_api_is_checked() -> None:
    """Tenancy refuses upstreams pointing at the gateway's admin endpoints: with a followed Service those are
    the pods, so `ready` (awaited before the check) returns only once they are listed."""
    endpoints: asyncio.Queue[list[str]] = asyncio.Queue()

    async def follow() -> AsyncIterator[list[str]]:
        while True:
            yield await endpoints.get()

    tyk = driver(Cluster(), nodes=(), follow=follow, follow_where="behind Service gw/tyk", node_check_seconds=60)
    watcher = asyncio.create_task(tyk.watch(lambda: None))
    try:
        ready = asyncio.create_task(tyk.ready())
        await asyncio.sleep(0.05)
        assert not ready.done()  # not listed yet: no check may run on a partial list
        await endpoints.put(URLS[1:])
        await asyncio.wait_for(ready, 5)
        assert set(URLS[1:]) <= set(tyk.admin_urls)
    finally:
        watcher.cancel()
        await tyk.aclose()
