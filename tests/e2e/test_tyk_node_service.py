"""Tyk nodes discovered from a Service on the real apiserver: Torii follows the Service's EndpointSlices
(watched), fills a node that joins at once, and does not fail when a node leaves.

The "pods" are the stack's three real Tyk nodes, each reached through a forwarder on this machine's own address
(an EndpointSlice may not hold a loopback address); each node has its own EndpointSlice (as during a rolling
update, the port number differs per slice). The drift interval is 600 s: what is filled here is filled by
following the endpoints.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from kubernetes import client

from support.forward import forwarder, host_address
from support.operator import Operator, running_operator, stack_gateways
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import World

SERVICE = "tyk-nodes"


@pytest.fixture(scope="module")
def nodes(tyk_nodes: list[str]) -> list[str]:
    return tyk_nodes


@pytest.fixture(scope="module")
def pods(nodes: list[str]) -> Iterator[list[tuple[str, int]]]:
    """(address, port) of each node as a Service endpoint."""
    address = host_address()
    with ExitStack() as stack:
        yield [(address, stack.enter_context(forwarder(int(n.rsplit(":", 1)[1]), address))) for n in nodes]


@pytest.fixture(scope="module")
def live(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory, pods: list[Any]
) -> Iterator[Operator]:
    client.CoreV1Api(admin).create_namespaced_service(ns, {
        "metadata": {"name": SERVICE}, "spec": {"ports": [{"name": "admin", "port": 8080}]},  # no selector
    })  # fmt: skip
    gateways, secret = stack_gateways(crds, "torii-gateways-service")
    tyk = next(g for g in gateways if g["name"] == "tyk") | {
        "nodeService": {"namespace": ns, "name": SERVICE, "port": "admin", "scheme": "http"}, "nodeCheckSeconds": 1,
    }  # fmt: skip
    with running_operator(
        crds, admin, tmp_path_factory.mktemp("service"), gateways=[tyk], secret_data=secret, namespaces=[ns],
        secret_name="torii-gateways-service", drift_interval=600,
    ) as op:  # fmt: skip
        yield op
        World(admin, ns, crds).delete_all()


def endpoint_slice(admin: client.ApiClient, ns: str, index: int, pod: tuple[str, int], *, ready: bool = True) -> None:
    """Create or replace the EndpointSlice of node `index`."""
    body = {
        "metadata": {"name": f"{SERVICE}-{index}", "labels": {"kubernetes.io/service-name": SERVICE}},
        "addressType": "IPv4", "ports": [{"name": "admin", "port": pod[1], "protocol": "TCP"}],
        "endpoints": [{"addresses": [pod[0]], "conditions": {"ready": ready}}],
    }  # fmt: skip
    api = client.DiscoveryV1Api(admin)
    try:
        api.replace_namespaced_endpoint_slice(f"{SERVICE}-{index}", ns, body)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        api.create_namespaced_endpoint_slice(ns, body)


def serves(node: str, path: str) -> bool:
    try:
        return httpx.get(f"{node}{path}", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_nodes_follow_the_services_endpoints(
    admin: client.ApiClient, ns: str, world: World, nodes: list[str], pods: list[tuple[str, int]]
) -> None:
    endpoint_slice(admin, ns, 0, pods[0])
    endpoint_slice(admin, ns, 1, pods[1])
    name = f"svc-{uuid.uuid4().hex[:5]}"
    with upstream("svc") as up:
        world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/", "upstream": {"url": up.url}})
        assert world.ready("GatewayAPI", name)["status"]["nodes"] == "2/2"
        assert serves(nodes[0], f"/{name}/x") and serves(nodes[1], f"/{name}/x")
        assert not serves(nodes[2], f"/{name}/x")  # not an endpoint of the Service: Torii never wrote there

        endpoint_slice(admin, ns, 2, pods[2])  # a pod joins: filled without any change to the GatewayAPI
        wait_until(lambda: serves(nodes[2], f"/{name}/x"), timeout=60, what="the joining node serves the API")
        wait_until(lambda: world.get("GatewayAPI", name)["status"].get("nodes") == "3/3", what="status 3/3")

        endpoint_slice(admin, ns, 1, pods[1], ready=False)  # a pod leaves (not ready): nothing fails
        with upstream("svc-v2") as v2:
            world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/",
                                             "upstream": {"url": v2.url}})  # fmt: skip
            assert world.ready("GatewayAPI", name)["status"]["nodes"] == "2/2"
            for node in (nodes[0], nodes[2]):
                assert httpx.get(f"{node}/{name}/x").json()["upstream"] == "svc-v2"
