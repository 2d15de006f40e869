"""Several real Tyk 5.10.2 nodes sharing one Redis, each with its own app directory (no shared volume): every
node serves every API, Ready says how many nodes do, a node restarted empty is refilled without waiting for a
drift pass, a node down is named, and a deleted key is refused by every node.

The stack grows to three Tyk nodes for this module (`TORII_TYK_NODES=3 stack.py up` adds nodes to a running
stack). The operator's drift interval is 600 s: anything repaired here is repaired by the node monitor.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from support.kube import namespace
from support.operator import Operator, running_operator, stack_gateways
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import World

NODES = 3


@pytest.fixture(scope="module")
def nodes(tyk_nodes: list[str]) -> list[str]:
    return tyk_nodes


@pytest.fixture(scope="module")
def live(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory, nodes: list[str]
) -> Iterator[Operator]:
    gateways, secret = stack_gateways(crds, "torii-gateways-nodes")
    tyk = next(g for g in gateways if g["name"] == "tyk") | {"nodes": nodes, "nodeCheckSeconds": 1}
    with running_operator(
        crds, admin, tmp_path_factory.mktemp("nodes"), gateways=[tyk], secret_data=secret, namespaces=[ns],
        secret_name="torii-gateways-nodes", drift_interval=600,
    ) as op:  # fmt: skip
        yield op
        World(admin, ns, crds).delete_all()


def through(node: str, path: str, key: str | None = None) -> httpx.Response:
    return httpx.get(f"{node}{path}", headers={"Authorization": key} if key else {}, timeout=5)


def test_every_node_serves_every_api_and_every_key(world: World, nodes: list[str]) -> None:
    names = [f"n{i}-{uuid.uuid4().hex[:5]}" for i in range(3)]
    with upstream("nodes") as up:
        for name in names:
            world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/", "upstream": {"url": up.url},
                                             "auth": "key"})  # fmt: skip
        world.apply("GatewayKey", "k", {"gateway": "tyk", "apis": [{"name": n} for n in names]})
        for name in names:
            obj = world.ready("GatewayAPI", name)
            assert obj["status"]["nodes"] == f"{NODES}/{NODES}"
            assert f"on {NODES}/{NODES} nodes" in world.condition(obj)["message"]
        world.ready("GatewayKey", "k")
        key = world.secret("k")["key"]
        for node in nodes:  # each node asked directly, as a load balancer would
            for name in names:
                assert through(node, f"/{name}/x").status_code == 401  # served, and keyed
                assert through(node, f"/{name}/x", key).json()["upstream"] == "nodes"

        # A deleted key is refused by every node (each caches sessions for 10 s: Ready waits that out).
        world.delete("GatewayKey", "k")
        for node in nodes:
            assert through(node, f"/{names[0]}/x", key).status_code in (401, 403), node


def test_a_node_restarted_empty_is_refilled_at_once(stack: Stack, world: World, nodes: list[str]) -> None:
    name = f"refill-{uuid.uuid4().hex[:5]}"
    with upstream("refill") as up:
        world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/", "upstream": {"url": up.url}})
        world.ready("GatewayAPI", name)
        started = time.monotonic()
        stack.stack_command("restart-tyk", "--node", "2", "--empty")  # a pod rescheduled without its app directory
        # Filled by the node monitor: the drift interval (600 s) is far longer than this wait.
        wait_until(lambda: through(nodes[2], f"/{name}/x").status_code == 200, timeout=60,
                   what="the restarted node serves the API again")  # fmt: skip
        print(f"node restarted empty: serving again {time.monotonic() - started:.1f}s after the restart began")
        assert all(through(n, f"/{name}/x").status_code == 200 for n in nodes)


def test_a_node_down_is_named_and_caught_up_when_it_returns(stack: Stack, world: World, nodes: list[str]) -> None:
    name = f"down-{uuid.uuid4().hex[:5]}"
    with upstream("before") as before, upstream("after") as after:
        world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/", "upstream": {"url": before.url}})
        world.ready("GatewayAPI", name)
        stack.stack_command("stop", "tyk-1")
        try:
            world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/",
                                             "upstream": {"url": after.url}})  # fmt: skip
            condition = world.reason("GatewayAPI", name, "GatewayUnavailable")
            assert f"node {nodes[1]}" in condition["message"] and "2/3 nodes done" in condition["message"]
            # The other nodes took the change meanwhile.
            for node in (nodes[0], nodes[2]):
                wait_until(lambda node=node: through(node, f"/{name}/x").json().get("upstream") == "after",
                           what=f"{node} serves the change")  # fmt: skip
        finally:
            stack.stack_command("start", "tyk-1")
        obj = world.ready("GatewayAPI", name, timeout=90)
        assert obj["status"]["nodes"] == "3/3"
        assert through(nodes[1], f"/{name}/x").json()["upstream"] == "after"


def test_a_deleted_key_with_a_quota_is_refused_by_every_node_under_traffic(world: World, nodes: list[str]) -> None:
    """Tyk caches sessions per node and a request in flight writes a quota'd session back after its delete:
    Torii deletes again what comes back and evicts every node's cache. Traffic runs on every node throughout;
    once the GatewayKey is gone, no node accepts the key again (watched for longer than Tyk's 10 s cache)."""
    name = f"revoke-{uuid.uuid4().hex[:5]}"
    with upstream("revoke") as up:
        world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/", "upstream": {"url": up.url},
                                         "auth": "key"})  # fmt: skip
        world.apply("GatewayKey", name, {"gateway": "tyk", "apis": [{"name": name}],
                                         "quota": {"max": 1_000_000, "period": "day"}})  # fmt: skip
        world.ready("GatewayKey", name)
        key = world.secret(name)["key"]
        answers: list[tuple[float, str, int]] = []
        stop = threading.Event()

        def traffic(node: str) -> None:
            with httpx.Client(timeout=5) as http:
                while not stop.is_set():
                    status = http.get(f"{node}/{name}/x", headers={"Authorization": key}).status_code
                    answers.append((time.monotonic(), node, status))
                    stop.wait(0.1)

        threads = [threading.Thread(target=traffic, args=(n,), daemon=True) for n in nodes]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: {n for _, n, s in answers if s == 200} == set(nodes), what="the key works everywhere")
            deleting = time.monotonic()
            world.delete("GatewayKey", name)
            deleted = time.monotonic()
            wait_until(lambda: time.monotonic() > deleted + 12 and all(
                any(t > deleted + 12 for t, n, _ in answers if n == node) for node in nodes
            ), timeout=60, what="traffic on every node beyond the cache time")  # fmt: skip
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
        accepted_after = [(round(t - deleted, 2), n) for t, n, s in answers if t > deleted and s == 200]
        assert not accepted_after, f"a node accepted the key after its GatewayKey was deleted: {accepted_after[:5]}"
        last = max((t for t, _, s in answers if s == 200), default=deleting)
        print(
            f"revocation under traffic on {len(nodes)} nodes: last accepted {last - deleting:.2f}s after the "
            f"delete began; the GatewayKey was gone after {deleted - deleting:.2f}s"
        )


def test_moving_from_one_url_to_a_node_list_needs_only_the_configuration(
    crds: Stack, admin: client.ApiClient, tmp_path: Path, nodes: list[str]
) -> None:
    """A site that ran Torii with one `url` adds `nodes` and restarts Torii: the same APIs (same ids) reach every
    node, the keys keep their credentials, nothing else is touched."""
    gateways, secret = stack_gateways(crds, "torii-gateways-move")
    single = next(g for g in gateways if g["name"] == "tyk")
    with namespace(admin, "nodes-move") as ns, upstream("move") as up:
        world = World(admin, ns, crds)
        name = f"move-{uuid.uuid4().hex[:5]}"
        with running_operator(crds, admin, tmp_path / "one", gateways=[single], secret_data=secret, namespaces=[ns],
                              secret_name="torii-gateways-move", drift_interval=600):  # fmt: skip
            world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/", "auth": "key",
                                             "upstream": {"url": up.url}})  # fmt: skip
            world.apply("GatewayKey", name, {"gateway": "tyk", "apis": [{"name": name}]})
            api_id = world.ready("GatewayAPI", name)["status"]["gatewayId"]
            world.ready("GatewayKey", name)
            key = world.secret(name)["key"]
        assert through(nodes[2], f"/{name}/x", key).status_code == 404  # one node only, so far
        with running_operator(crds, admin, tmp_path / "all", gateways=[single | {"nodes": nodes}], secret_data=secret,
                              namespaces=[ns], secret_name="torii-gateways-move", drift_interval=600):  # fmt: skip
            wait_until(lambda: all(through(n, f"/{name}/x", key).status_code == 200 for n in nodes), timeout=90,
                       what="every node serves the API with the same key")  # fmt: skip
            assert world.get("GatewayAPI", name)["status"]["gatewayId"] == api_id
            assert world.secret(name)["key"] == key
            world.delete_all()
