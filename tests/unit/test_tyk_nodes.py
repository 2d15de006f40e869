"""A Tyk connection with several nodes: definitions on every node, Ready only when all serve, and a node that
comes back or restarts empty is noticed at once. Each node is the verified Tyk model of test_tyk_driver."""

from __future__ import annotations

import asyncio
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
    return TykDriver(
        "tyk", URLS[0], SECRET, nodes=URLS, transport=httpx.MockTransport(cluster), reload_quiet=0.01, **options
    )


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
    assert (await tyk.apis.converge_api(REF, spec())).nodes == (1, 1)


def test_node_urls_are_checked() -> None:
    base = {"name": "tyk", "type": "tyk", "url": URLS[0], "secretRef": {"namespace": "n", "name": "s", "key": "k"}}
    assert GatewayConnection.model_validate({**base, "nodes": URLS}).nodes == URLS
    with pytest.raises(ValueError, match="each node once"):
        GatewayConnection.model_validate({**base, "nodes": [URLS[0], URLS[0]]})
    with pytest.raises(ValueError, match="not an http"):
        GatewayConnection.model_validate({**base, "nodes": ["node-0:8080"]})
