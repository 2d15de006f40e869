"""OtoroshiDriver logic over httpx.MockTransport: service descriptors, create/update, errors."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from support.otoroshi_model import CLIENT_ID, CLIENT_SECRET, REF, OtoroshiModel, make_driver, spec
from torii.gateways.base import ObjectRef
from torii.gateways.errors import AuthenticationError, PermanentGatewayError, RetryableGatewayError, Unsupported
from torii.gateways.otoroshi import OtoroshiDriver
from torii.gateways.otoroshi_render import render_service


@pytest.fixture(params=["routes", "services"])
def oto(request: pytest.FixtureRequest) -> tuple[OtoroshiDriver, OtoroshiModel]:
    """The driver on either entity (the tests that take it hold for both)."""
    model = OtoroshiModel()
    return make_driver(model, request.param), model


async def test_service_create_update_and_no_write_in_sync() -> None:
    model = OtoroshiModel()
    driver = make_driver(model, "services")
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
    del model.objects[driver.entity]["torii.shop.s0"]  # deleted by hand: a drift pass with a fresh view repairs it
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
    # One list of the burst's kind, one of the other kind (new paths are claimed: a service may hold one).
    assert model.methods.count("GET") == 2 and model.methods.count("POST") == 5 and len(model.methods) == 7
    assert sorted(model.proxied) == [f"/b{i}/" for i in range(1, 6)]  # every written path confirmed served
    model.methods.clear()
    gone = await asyncio.gather(*(driver.apis.delete_api(r) for r in refs))
    assert all(gone) and model.objects[driver.entity] == {}
    assert model.methods.count("DELETE") == 6 and model.methods.count("GET") <= 1


async def test_a_path_the_proxy_never_routes_fails_only_its_own_object() -> None:
    model = OtoroshiModel()
    proxy = model.proxy

    def never_b1(request: httpx.Request) -> httpx.Response:
        if request.headers["Host"] == "api.oto.tools" and request.url.path.startswith("/b1/"):
            return httpx.Response(404, headers={"Otoroshi-Error-Msg": "no route found !"}, json={})
        return proxy(request)

    model.proxy = never_b1  # type: ignore[method-assign]
    driver = make_driver(model, serve_timeout=0.3)
    ok, stuck = await asyncio.gather(
        driver.apis.converge_api(ObjectRef("shop", "b0"), spec(listenPath="/b0/")),
        driver.apis.converge_api(ObjectRef("shop", "b1"), spec(listenPath="/b1/")),
        return_exceptions=True,
    )
    assert not isinstance(ok, BaseException) and ok.created
    assert isinstance(stuck, RetryableGatewayError) and "did not serve /b1/" in stuck.message
