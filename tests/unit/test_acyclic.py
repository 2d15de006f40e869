"""No reference cycles per kopf event or per admin call (torii.acyclic): freed by reference counting alone."""

from __future__ import annotations

import gc
import json
import weakref
from collections.abc import Iterator
from typing import Any

import httpx
import kopf
import pytest
from kopf._cogs.structs import bodies, patches

from torii import acyclic
from torii.gateways.http import AdminClient
from torii.gateways.otoroshi import OtoroshiDriver
from torii.kube import Kube

RAW: dict[str, Any] = {
    "apiVersion": "torii.dev/v1alpha1",
    "kind": "GatewayAPI",
    "metadata": {
        "name": "a",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"team": "x"},
        "annotations": {"n": "1"},
        "finalizers": ["torii.dev/finalizer"],
    },
    "spec": {"listenPath": "/a/"},
    "status": {"conditions": []},
}


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Only reference counting frees anything while the test runs."""
    acyclic.install()
    acyclic.install()  # idempotent
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def test_kopf_bodies_and_patches_are_freed_without_the_cyclic_collector(no_collector: None) -> None:
    body = bodies.Body(json.loads(json.dumps(RAW)))
    patch = patches.Patch(body=body)
    # Used as kopf and the handlers use them (every view built on the way).
    assert (body.meta.name, body.metadata.namespace, body.meta.labels["team"], body.meta.annotations["n"]) == (
        "a", "ns", "x", "1")  # fmt: skip
    patch.status["ready"] = True
    patch.meta.annotations["torii.dev/x"] = "y"
    dead_body, dead_patch, dead_raw = weakref.ref(body), weakref.ref(patch), weakref.ref(body.spec._src)
    del body, patch
    assert dead_body() is None and dead_patch() is None and dead_raw() is None


def test_kopf_views_behave_as_before(no_collector: None) -> None:
    body = bodies.Body(json.loads(json.dumps(RAW)))
    assert body.spec["listenPath"] == "/a/" and dict(body.status) == {"conditions": []}
    assert dict(body.meta.labels) == {"team": "x"} and body.meta.uid == "u-1"
    assert dict(bodies.Body({}).meta.annotations) == {} and bodies.Body({}).spec.get("x") is None
    # A replaced source (kopf's live bodies) is seen through views taken before.
    spec = body.spec
    body._replace_with({"spec": {"listenPath": "/b/"}})
    assert spec["listenPath"] == "/b/" and body.spec["listenPath"] == "/b/"

    patch = patches.Patch(body=body)
    assert not patch
    patch.spec["x"] = 1
    patch.status["ready"] = True
    patch.metadata.labels["l"] = None
    patch.meta.annotations["a"] = "b"
    assert patch == {"spec": {"x": 1}, "status": {"ready": True}, "metadata": {"labels": {"l": None},
                                                                                "annotations": {"a": "b"}}}  # fmt: skip
    assert patch.status["ready"] is True and patch.meta.annotations["a"] == "b"
    del patch.status["ready"]
    assert patch["status"] == {}

    def drop_finalizers(raw: Any) -> None:
        raw["metadata"]["finalizers"] = []

    moved = patches.Patch(patches.Patch({"spec": {"x": 2}}, fns=[drop_finalizers]))
    assert moved == {"spec": {"x": 2}} and moved.fns == [drop_finalizers]
    original = bodies.Body(json.loads(json.dumps(RAW)))
    ops = patches.Patch({"status": {"ready": True}}, body=original, fns=[drop_finalizers]).as_json_patch()
    assert {"op": "add", "path": "/status/ready", "value": True} in ops
    assert {"op": "remove", "path": "/metadata/finalizers/0"} in ops


async def test_admin_responses_are_freed_without_the_cyclic_collector(no_collector: None) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"api_id": "a"}] if request.url.path == "/list" else {"ok": True})

    admin = AdminClient("gw", "http://gw.test", transport=httpx.MockTransport(answer))
    await admin.request("GET", "/one", op="get")  # the pool's first connection
    gc.collect()
    response = await admin.request("GET", "/one", op="get")
    assert response.json() == {"ok": True}  # the body stays readable once cut from its stream
    assert await response.aread() == b'{"ok":true}'
    dead = weakref.ref(response)
    del response
    assert dead() is None
    assert await admin.list_items("/list", op="list", keep=lambda item: item["api_id"]) == ["a"]
    assert gc.collect() == 0  # nothing of either call was left in a cycle


async def test_requests_and_streams_of_the_client_are_freed_without_the_cyclic_collector(no_collector: None) -> None:
    client = acyclic.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True})))
    await client.get("http://gw.test/warm")
    gc.collect()
    dead = weakref.ref(await client.get("http://gw.test/one"))
    assert dead() is None
    async with client.stream("GET", "http://gw.test/two") as response:
        assert await response.aread() == b'{"ok":true}'
    dead = weakref.ref(response)
    del response
    assert dead() is None
    assert gc.collect() == 0


def test_every_client_the_operator_makes_is_one() -> None:
    login = kopf.ConnectionInfo(server="https://apiserver.test", token="t")
    assert isinstance(Kube(lambda: login).client, acyclic.Client)
    assert isinstance(AdminClient("gw", "http://gw.test")._client, acyclic.Client)
    oto = OtoroshiDriver("otoroshi", "http://oto.test", "id", "secret")
    assert isinstance(oto._proxy, acyclic.Client)
