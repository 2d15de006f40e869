"""OtoroshiDriver logic over httpx.MockTransport: service descriptors, create/update, errors."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest

from torii.gateways.base import ObjectRef
from torii.gateways.errors import AuthenticationError, PermanentGatewayError, RetryableGatewayError, Unsupported
from torii.gateways.otoroshi import OtoroshiDriver
from torii.gateways.otoroshi_render import render_service
from torii.models.gatewayapi import GatewayAPISpec

REF = ObjectRef("shop", "catalog")
CLIENT_ID, CLIENT_SECRET = "admin-id", "admin-secret-value"


class OtoroshiModel:
    def __init__(self) -> None:
        self.services: dict[str, dict[str, Any]] = {}
        self.methods: list[str] = []
        self.exists_on_post = False
        self.proxied: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers["Host"] == "api.oto.tools":
            return self.proxy(request)
        assert request.headers["Host"] == "otoroshi-api.oto.tools"
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return httpx.Response(401, json={"error": "unauthorized"})
        self.methods.append(request.method)
        path = request.url.path
        if path == "/api/services" and request.method == "POST":
            body = json.loads(request.content)
            if self.exists_on_post or body["id"] in self.services:
                return httpx.Response(400, json={"error": "not_found", "error_description": "Entity already exists"})
            self.services[body["id"]] = {**body, "sendOtoroshiHeadersBack": True}
            return httpx.Response(201, json=body)
        if path == "/api/services" and request.method == "GET":
            return httpx.Response(200, json=list(self.services.values()))
        sid = path.rsplit("/", 1)[1]
        if request.method == "GET":
            if sid not in self.services:
                return httpx.Response(404, json={"error": "not_found"})
            return httpx.Response(200, json=self.services[sid])
        if request.method == "PUT":
            self.services[sid] = json.loads(request.content)
            return httpx.Response(200, json=self.services[sid])
        if request.method == "DELETE":
            if self.services.pop(sid, None) is None:
                return httpx.Response(404, json={"error": "not_found"})
            return httpx.Response(200, json={"deleted": True})
        return httpx.Response(405)

    def proxy(self, request: httpx.Request) -> httpx.Response:
        """Client traffic: routed to an enabled service by path prefix, else Otoroshi's own "no route"."""
        self.proxied.append(request.url.path)
        for service in self.services.values():
            if service["enabled"] and request.url.path.startswith(service["matchingRoot"]):
                return httpx.Response(200, json={"served": service["id"]})
        return httpx.Response(404, headers={"Otoroshi-Error-Msg": "no route found !"}, json={})


def spec(**overrides: Any) -> GatewayAPISpec:
    return GatewayAPISpec.model_validate(
        {"listenPath": "/catalog/", "upstream": {"url": "http://catalog.shop:8080/v1"}, **overrides}
    )


@pytest.fixture
def oto() -> tuple[OtoroshiDriver, OtoroshiModel]:
    model = OtoroshiModel()
    driver = OtoroshiDriver(
        "otoroshi", "http://oto.test", CLIENT_ID, CLIENT_SECRET, transport=httpx.MockTransport(model),
        state_sync_seconds=0,
    )  # fmt: skip
    return driver, model


async def test_create_update_and_no_write_in_sync(oto: tuple[OtoroshiDriver, OtoroshiModel]) -> None:
    driver, model = oto
    created = await driver.apis.converge_api(REF, spec())
    assert created.changed and created.created and created.gateway_id == "torii.shop.catalog"
    service = model.services["torii.shop.catalog"]
    assert service["targets"] == [{"host": "catalog.shop:8080", "scheme": "http"}]
    assert service["root"] == "/v1" and service["matchingRoot"] == "/catalog/"
    assert service["publicPatterns"] == ["/.*"] and service["privatePatterns"] == []
    model.methods.clear()
    service["targets"][0] |= {"weight": 1, "protocol": "HTTP/1.1"}  # Otoroshi's defaults are not drift
    assert not (await driver.apis.converge_api(REF, spec())).changed
    assert model.methods == ["GET"]
    service["enabled"] = False  # a hand edit is
    assert (await driver.apis.converge_api(REF, spec())).changed
    assert model.services["torii.shop.catalog"]["enabled"] is True
    updated = await driver.apis.converge_api(REF, spec(auth="key"))
    assert updated.changed and not updated.created
    assert model.services["torii.shop.catalog"]["privatePatterns"] == ["/.*"]


async def test_create_race_falls_back_to_update(oto: tuple[OtoroshiDriver, OtoroshiModel]) -> None:
    driver, model = oto
    model.exists_on_post = True
    result = await driver.apis.converge_api(REF, spec())
    assert result.changed and "PUT" in model.methods


async def test_delete_and_already_gone(oto: tuple[OtoroshiDriver, OtoroshiModel]) -> None:
    driver, _ = oto
    await driver.apis.converge_api(REF, spec())
    assert await driver.apis.delete_api(REF) is True
    assert await driver.apis.delete_api(REF) is False


async def test_wrong_credentials() -> None:
    model = OtoroshiModel()
    driver = OtoroshiDriver("otoroshi", "http://oto.test", CLIENT_ID, "wrong", transport=httpx.MockTransport(model))
    with pytest.raises(AuthenticationError) as info:
        await driver.apis.converge_api(REF, spec())
    assert "wrong" not in info.value.message


def test_unsupported_features_are_named() -> None:
    with pytest.raises(Unsupported, match=r"spec\.auth"):
        render_service(REF, spec(auth="oauth2"), service_id="x", domain="d", subdomain="s", group="g")
    with pytest.raises(Unsupported, match=r"spec\.rateLimit"):
        render_service(REF, spec(rateLimit={"rate": 1, "per": 1}), service_id="x", domain="d", subdomain="s", group="g")


def test_escape_hatch_merges_and_cannot_override_id() -> None:
    service = render_service(
        REF, spec(otoroshi={"id": "hijack", "buildMode": True, "cors": {"enabled": True}}),
        service_id="torii.shop.catalog", domain="oto.tools", subdomain="api", group="default",
    )  # fmt: skip
    assert service["id"] == "torii.shop.catalog" and service["buildMode"] is True


async def test_rejection_carries_the_gateways_message(oto: tuple[OtoroshiDriver, OtoroshiModel]) -> None:
    def reject(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=[])
        return httpx.Response(400, json={"error": "bad_request", "error_description": "targets: invalid host"})

    driver = OtoroshiDriver(
        "otoroshi", "http://oto.test", CLIENT_ID, CLIENT_SECRET, transport=httpx.MockTransport(reject)
    )
    with pytest.raises(PermanentGatewayError, match="targets: invalid host"):
        await driver.apis.converge_api(REF, spec())


def test_json_patch_replaces_only_what_differs_and_ignores_otoroshi_defaults() -> None:
    from torii.gateways.otoroshi_render import json_patch

    current = {"enabled": True, "dailyQuota": 10, "metadata": {"a": "1"}, "rotation": {"enabled": False, "x": 1}}
    desired = {"enabled": True, "dailyQuota": 5, "metadata": {"a": "1"}, "rotation": {"enabled": False}, "tags": []}
    assert json_patch(desired, current) == [
        {"op": "replace", "path": "/dailyQuota", "value": 5},
        {"op": "add", "path": "/tags", "value": []},
    ]


async def test_drift_checks_share_one_list_of_services(oto: tuple[OtoroshiDriver, OtoroshiModel]) -> None:
    driver, model = oto
    refs = [ObjectRef("shop", f"s{i}") for i in range(5)]
    for ref in refs:
        await driver.apis.converge_api(ref, spec(listenPath=f"/{ref.name}/"))
    model.methods.clear()
    results = await asyncio.gather(
        *(driver.apis.converge_api(r, spec(listenPath=f"/{r.name}/"), max_age=30) for r in refs)
    )
    assert not any(r.changed for r in results)
    assert model.methods == []  # the view from the writes' own burst is fresh enough: no call at all
    results = await asyncio.gather(
        *(driver.apis.converge_api(r, spec(listenPath=f"/{r.name}/"), max_age=1e-6) for r in refs)
    )
    assert not any(r.changed for r in results)
    assert model.methods == ["GET"]  # a stale view: one list for the five, no read per service
    del model.services["torii.shop.s0"]  # deleted by hand: a drift pass with a fresh view repairs it
    assert (await driver.apis.converge_api(refs[0], spec(listenPath="/s0/"), max_age=0)).created


async def test_a_burst_lists_once_writes_what_differs_and_waits_for_the_proxy_once(
    oto: tuple[OtoroshiDriver, OtoroshiModel],
) -> None:
    driver, model = oto
    refs = [ObjectRef("shop", f"b{i}") for i in range(6)]
    await driver.apis.converge_api(refs[0], spec(listenPath="/b0/"))
    model.methods.clear()
    model.proxied.clear()
    results = await asyncio.gather(*(driver.apis.converge_api(r, spec(listenPath=f"/{r.name}/")) for r in refs))
    assert [r.created for r in results] == [False, True, True, True, True, True]
    assert not results[0].changed
    assert model.methods.count("GET") == 1 and model.methods.count("POST") == 5 and len(model.methods) == 6
    assert sorted(model.proxied) == [f"/b{i}/" for i in range(1, 6)]  # every written path confirmed served
    model.methods.clear()
    gone = await asyncio.gather(*(driver.apis.delete_api(r) for r in refs))
    assert all(gone) and model.services == {}
    assert model.methods.count("DELETE") == 6 and model.methods.count("GET") <= 1


async def test_a_path_the_proxy_never_routes_fails_only_its_own_object() -> None:
    model = OtoroshiModel()
    proxy = model.proxy

    def never_b1(request: httpx.Request) -> httpx.Response:
        if request.headers["Host"] == "api.oto.tools" and request.url.path.startswith("/b1/"):
            return httpx.Response(404, headers={"Otoroshi-Error-Msg": "no route found !"}, json={})
        return proxy(request)

    model.proxy = never_b1  # type: ignore[method-assign]
    driver = OtoroshiDriver(
        "otoroshi", "http://oto.test", CLIENT_ID, CLIENT_SECRET, transport=httpx.MockTransport(model),
        state_sync_seconds=0, serve_timeout=0.3,
    )  # fmt: skip
    ok, stuck = await asyncio.gather(
        driver.apis.converge_api(ObjectRef("shop", "b0"), spec(listenPath="/b0/")),
        driver.apis.converge_api(ObjectRef("shop", "b1"), spec(listenPath="/b1/")),
        return_exceptions=True,
    )
    assert not isinstance(ok, BaseException) and ok.created
    assert isinstance(stuck, RetryableGatewayError) and "did not serve /b1/" in stuck.message
