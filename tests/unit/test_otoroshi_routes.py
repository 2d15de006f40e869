"""Otoroshi routes: rendering, what is drift, migration from services, and key confirmation at the proxy."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from support.otoroshi_model import CLIENT_ID, CLIENT_SECRET, REF, OtoroshiModel, make_driver, spec
from torii.gateways.base import Credential, KeyRequest, ObjectRef, ResolvedApi, thaw
from torii.gateways.errors import ListenPathConflict
from torii.gateways.otoroshi import OtoroshiDriver
from torii.gateways.otoroshi_keys import Verdict, verdict
from torii.gateways.otoroshi_render import PROBE_RESTRICTION, render_apikey, with_fingerprint
from torii.gateways.otoroshi_routes import (
    APIKEY_PLUGIN,
    PLUGIN,
    overridden_fields,
    render_route,
    route_core,
    route_in_sync,
    route_keyed,
    route_served,
)
from torii.models.gatewaykey import GatewayKeySpec


def route(**overrides: Any) -> dict[str, Any]:
    return render_route(REF, spec(**overrides), route_id="torii.shop.catalog", host="api.oto.tools", group="default")


def plugin_ids(rendered: dict[str, Any]) -> list[str]:
    return [p["plugin"].removeprefix(PLUGIN) for p in rendered["plugins"]]


def test_a_keyless_route_has_no_key_plugin_and_a_keyed_one_has_it() -> None:
    keyless = route()
    assert plugin_ids(keyless) == ["OverrideHost"]
    assert keyless["frontend"] == {"domains": ["api.oto.tools/catalog/"], "strip_path": True, "exact": False}
    assert keyless["backend"]["targets"] == [{"hostname": "catalog.shop", "port": 8080, "tls": False}]
    assert keyless["backend"]["root"] == "/v1" and keyless["groups"] == ["default"]
    keyed = route(auth="key")
    assert plugin_ids(keyed) == ["OverrideHost", "ApikeyCalls"]
    assert keyed["plugins"][1]["config"]["validate"] and keyed["plugins"][1]["config"]["mandatory"]


def test_cors_rate_limit_and_several_targets() -> None:
    rendered = route(
        cors={"allowedOrigins": ["https://a.example", "https://b.example"]}, rateLimit={"rate": 5, "per": 60},
        upstream={"targets": ["https://one.shop:8443/base", "http://two.shop/base"]},
    )  # fmt: skip
    assert plugin_ids(rendered) == ["OverrideHost", "Cors", "FixedWindow"]
    cors, window = rendered["plugins"][1]["config"], rendered["plugins"][2]["config"]
    assert cors["allow_origin"] == "https://a.example,https://b.example"
    assert window["windowDurationMs"] == 60_000 and window["quota"] == {"window": 5}
    assert window["bucketKey"] == "torii-rate-limit:torii.shop.catalog"  # not shared with other routes
    assert rendered["backend"]["targets"] == [
        {"hostname": "one.shop", "port": 8443, "tls": True}, {"hostname": "two.shop", "port": 80, "tls": False}
    ]  # fmt: skip


def test_the_escape_hatch_cannot_open_or_move_the_route() -> None:
    hatch = {
        "enabled": False, "frontend": {"domains": ["evil.example/"], "exact": True},
        "backend": {"targets": [{"hostname": "evil", "port": 1}], "load_balancing": {"type": "Random"}},
        "plugins": [
            {"plugin": APIKEY_PLUGIN, "config": {"validate": False}},
            {"plugin": PLUGIN + "JwtVerification", "config": {}},
            {"plugin": PLUGIN + "OverrideHost", "include": ["/x"]},
            {"plugin": PLUGIN + "AdditionalHeadersIn", "config": {"headers": {"X-A": "1"}}},
        ],
        "metadata": {"torii.dev/namespace": "other", "team": 7}, "tags": ["a", 1],
    }  # fmt: skip
    rendered = route(auth="key", otoroshi=hatch)
    assert rendered["enabled"] is True
    # The hosts of frontend.domains are taken (the tenancy host rules apply to them), never their path.
    assert rendered["frontend"]["domains"] == ["evil.example/catalog/"]
    assert rendered["frontend"]["exact"] is True  # not a neutral field: passed through
    assert rendered["backend"]["targets"][0]["hostname"] == "catalog.shop"
    assert rendered["backend"]["load_balancing"] == {"type": "Random"}
    assert plugin_ids(rendered) == ["OverrideHost", "ApikeyCalls", "AdditionalHeadersIn"]
    assert rendered["plugins"][0]["include"] == ["/x"]  # one of Torii's takes its config from the hatch
    assert rendered["plugins"][1]["config"]["validate"] is True  # authentication is Torii's
    assert rendered["metadata"]["torii.dev/namespace"] == "shop" and rendered["metadata"]["team"] == "7"
    assert rendered["tags"] == ["a", "1"]  # Otoroshi drops a map or list with one non-string value
    notes = overridden_fields(spec(otoroshi=hatch), rendered)
    assert any("spec.otoroshi.enabled" in n for n in notes) and any("ApikeyCalls" in n for n in notes)
    assert any("JwtVerification" in n for n in notes) and any("frontend.domains" in n for n in notes)
    assert route()["frontend"]["domains"] == ["api.oto.tools/catalog/"]


def test_stored_defaults_are_not_drift_but_a_dropped_key_plugin_is() -> None:
    desired = with_fingerprint(route(auth="key"))
    stored = dict(desired)
    stored["backend"] = {**desired["backend"], "targets": [{**desired["backend"]["targets"][0], "weight": 1}]}
    stored["plugins"] = [{**p, "debug": False, "bound_listeners": []} for p in desired["plugins"]]
    assert route_in_sync(desired, route_core(stored))
    opened = {**stored, "plugins": stored["plugins"][:1]}
    assert not route_in_sync(desired, route_core(opened))
    added = {**stored, "plugins": [*stored["plugins"], {"plugin": PLUGIN + "StaticResponse"}]}
    assert not route_in_sync(desired, route_core(added))
    moved = {**stored, "backend": {**stored["backend"], "targets": [{**stored["backend"]["targets"][0], "port": 1}]}}
    assert not route_in_sync(desired, route_core(moved))


def test_a_route_view_keeps_its_nested_fields_as_compact_text() -> None:
    """A 10,000-route view held every stored target and plugin as parsed dicts (3.5 of 4.7 KB per route)."""
    stored = with_fingerprint(route(auth="key"))
    view = route_core(stored)
    for field, value in (("backend.targets", stored["backend"]["targets"]), ("plugins", stored["plugins"])):
        assert isinstance(view[field], str) and thaw(view[field]) == value
    assert route_keyed(view) and route_served(view) == ("api.oto.tools", "/catalog/")


async def test_a_route_is_written_and_a_hand_edit_repaired() -> None:
    model = OtoroshiModel()
    driver = make_driver(model)
    created = await driver.apis.converge_api(REF, spec(auth="key"))
    assert created.created and list(model.routes) == ["torii.shop.catalog"] and model.services == {}
    model.routes["torii.shop.catalog"]["plugins"] = []  # opened by hand
    assert (await driver.apis.converge_api(REF, spec(auth="key"))).changed
    assert APIKEY_PLUGIN in [p["plugin"] for p in model.routes["torii.shop.catalog"]["plugins"]]


async def test_an_update_on_a_routed_path_waits_out_a_whole_state_sync_instead_of_a_blind_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proxy answers on an already routed path whichever version it holds (CI: a route leaving JWT was Ready
    while the proxy still asked for a token): such an update waits 2 x the state sync + a margin, unprobed."""
    from torii.gateways import otoroshi_sync

    model = OtoroshiModel()
    driver = make_driver(model)
    await driver.apis.converge_api(REF, spec(auth="key"))
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(otoroshi_sync.asyncio, "sleep", sleep)
    probes = len(model.served_by)
    assert (await driver.apis.converge_api(REF, spec())).changed  # key -> keyless, same path
    assert len(model.served_by) == probes  # not probed: it would have answered at once
    assert waits and max(waits) >= otoroshi_sync.UNOBSERVED_MARGIN_SECONDS - 0.05
    # A new path is observable: probed until routed, no blind wait.
    waits.clear()
    assert (await driver.apis.converge_api(ObjectRef("shop", "new"), spec(listenPath="/new/"))).created
    assert len(model.served_by) > probes and all(w < otoroshi_sync.UNOBSERVED_MARGIN_SECONDS - 0.05 for w in waits)


async def test_switching_to_routes_moves_own_services_and_leaves_others_alone() -> None:
    model = OtoroshiModel()
    services = make_driver(model, "services")
    mine, theirs = REF, ObjectRef("shop", "other")
    await services.apis.converge_api(mine, spec(auth="key"))
    await services.apis.converge_api(theirs, spec(listenPath="/other/"))
    model.services["by-hand"] = {"id": "by-hand", "enabled": True, "matchingRoot": "/hand/", "metadata": {}}
    routes = make_driver(model, "routes")
    moved = await routes.apis.converge_api(mine, spec(auth="key"))
    assert moved.changed and "torii.shop.catalog" in model.routes
    # Ready only once the route itself answered (the service, served first, answered the first probe).
    assert model.served_by[-1] == "route:torii.shop.catalog"
    assert sorted(model.services) == ["by-hand", "torii.shop.other"]  # only its own service went
    assert not (await routes.apis.converge_api(mine, spec(auth="key"))).changed  # and once only
    # Deleting an object still on a service (not converged since the switch) deletes that service too.
    assert await routes.apis.delete_api(theirs)
    assert sorted(model.services) == ["by-hand"]


def hand_made_service(path: str, **fields: Any) -> dict[str, Any]:
    return {"id": "by-hand", "enabled": True, "subdomain": "api", "domain": "oto.tools", "matchingRoot": path,
            "metadata": {}, **fields}  # fmt: skip


async def test_a_new_route_never_takes_a_path_a_service_holds() -> None:
    model = OtoroshiModel()
    model.services["by-hand"] = hand_made_service("/catalog/")
    driver = make_driver(model)
    with pytest.raises(ListenPathConflict, match="already served by another service"):
        await driver.apis.converge_api(REF, spec())
    assert model.routes == {}  # nothing half-applied
    # Another namespace's Torii service under the path is refused too (it would take part of its traffic).
    model.services["by-hand"] = hand_made_service(
        "/catalog/v2/", metadata={"torii.dev/namespace": "other", "torii.dev/name": "v2"}
    )
    with pytest.raises(ListenPathConflict):
        await make_driver(model).apis.converge_api(REF, spec())
    model.services.clear()
    assert (await make_driver(model).apis.converge_api(REF, spec())).created


async def test_a_path_given_up_in_a_burst_does_not_hide_a_service_holding_it() -> None:
    model = OtoroshiModel()
    driver = make_driver(model)
    await driver.apis.converge_api(REF, spec())  # catalog on /catalog/
    model.services["by-hand"] = hand_made_service("/catalog/")  # shadowed by... nothing yet: the route was first
    other = ObjectRef("shop", "other")
    moved, taken = await asyncio.gather(
        driver.apis.converge_api(REF, spec(listenPath="/catalog-v2/")),  # gives /catalog/ up
        driver.apis.converge_api(other, spec(listenPath="/catalog/")),  # and this one would take it
        return_exceptions=True,
    )
    assert not isinstance(moved, BaseException)
    assert isinstance(taken, ListenPathConflict) and "service" in str(taken)  # the service holds it now


async def test_a_route_keeps_its_path_when_a_service_appears_on_it_later() -> None:
    model = OtoroshiModel()
    driver = make_driver(model)
    await driver.apis.converge_api(REF, spec())
    model.services["by-hand"] = hand_made_service("/catalog/")
    model.routes["torii.shop.catalog"]["backend"]["targets"] = []  # drift to repair, on a path it holds
    assert (await make_driver(model).apis.converge_api(REF, spec())).changed
    assert model.routes["torii.shop.catalog"]["backend"]["targets"][0]["hostname"] == "catalog.shop"


def key_request(**overrides: Any) -> KeyRequest:
    key_spec = GatewayKeySpec.model_validate({"apis": [{"name": "catalog"}], **overrides})
    return KeyRequest(ObjectRef("shop", "k"), key_spec, (ResolvedApi("catalog", "torii.shop.catalog"),), None,
                      Credential(client_id="cid", client_secret="s1"))  # fmt: skip


def test_keys_are_authorised_on_the_route_and_forbid_themselves_the_probe_path() -> None:
    body = render_apikey(key_request(), "route")
    assert body["authorizedEntities"] == ["route_torii.shop.catalog"]
    assert body["restrictions"]["enabled"] and body["restrictions"]["forbidden"] == [PROBE_RESTRICTION]
    mine = {"enabled": True, "allowLast": False, "allowed": [{"method": "GET", "path": "/.*"}],
            "forbidden": [{"method": "*", "path": "/admin/.*"}]}  # fmt: skip
    body = render_apikey(key_request(otoroshi={"restrictions": mine}), "route")
    assert body["restrictions"]["forbidden"] == [PROBE_RESTRICTION, {"method": "*", "path": "/admin/.*"}]
    assert body["restrictions"]["allowLast"] is False and body["restrictions"]["allowed"] == mine["allowed"]
    off = render_apikey(key_request(otoroshi={"restrictions": {**mine, "enabled": False}}), "route")
    assert off["restrictions"]["allowed"] == []  # disabled ones stay without effect


def test_a_key_is_tried_only_on_a_route_where_the_key_decides() -> None:
    """A key is confirmed on a route whose key plugin answers a request with the key alone; on one that checks a
    JWT first, the proxy refuses such a request before looking at the key (17.17), so it proves nothing."""
    jwt = {"secretRef": {"name": "s", "key": "k"}}
    assert route_keyed(route_core(route(auth="key")))
    assert route_keyed(route_core(route(auth="basicAuth")))
    assert not route_keyed(route_core(route()))
    assert not route_keyed(route_core(route(auth="key", additionalAuth=["jwt"], jwt=jwt)))
    assert not route_keyed(route_core(route(auth="jwt", additionalAuth=["key"], jwt=jwt)))


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (403, "Forbidden", Verdict.ACCEPTED),  # the key's own restriction: the secret checked out
        (429, "You performed too much requests", Verdict.ACCEPTED),
        (502, "bad gateway", Verdict.ACCEPTED),
        (200, None, Verdict.ACCEPTED),
        (401, "bad apikey", Verdict.REFUSED),
        (400, "invalid apikey tuple", Verdict.UNKNOWN),
        (404, "no route found !", Verdict.UNKNOWN),
    ],
)
def test_what_the_proxy_makes_of_a_credential(status: int, message: str | None, expected: Verdict) -> None:
    headers = {"Otoroshi-Error-Msg": message} if message else {}
    assert verdict(httpx.Response(status, headers=headers)) == expected


async def test_a_key_is_active_only_once_the_proxy_accepts_its_credential() -> None:
    model = OtoroshiModel()
    keys: dict[str, dict[str, Any]] = {}
    answers: list[str] = []
    admin, proxy = model.__call__, model.proxy

    def gateway(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.headers["Host"] == "api.oto.tools" and path.endswith(".torii-probe"):
            # The proxy learns of a key only on its second probe (a state sync in between).
            scheme, _, encoded = request.headers["Otoroshi-Authorization"].partition(" ")
            assert scheme == "Basic"
            answers.append(base64.b64decode(encoded).decode().split(":", 1)[1])
            if len(answers) < 2:
                return httpx.Response(400, headers={"Otoroshi-Error-Msg": "invalid apikey tuple"})
            return httpx.Response(403, headers={"Otoroshi-Error-Msg": "Forbidden"})
        if "/apikeys" in path:
            cid = path.rsplit("/", 1)[1]
            if request.method == "GET":
                return httpx.Response(200, json=keys[cid]) if cid in keys else httpx.Response(404, json={})
            created = json.loads(request.content)
            keys[created["clientId"]] = created
            return httpx.Response(201, json=created)
        return admin(request) if request.headers["Host"] != "api.oto.tools" else proxy(request)

    driver = OtoroshiDriver("otoroshi", "http://oto.test", CLIENT_ID, CLIENT_SECRET,
                            transport=httpx.MockTransport(gateway), state_sync_seconds=0)  # fmt: skip
    await driver.apis.converge_api(REF, spec(auth="key"))
    result = await driver.keys.converge_key(key_request())
    assert result.created and answers == ["s1", "s1"]  # not reported before the proxy accepted it
    assert keys["cid"]["authorizedEntities"] == ["route_torii.shop.catalog"]


async def test_drift_checks_of_keys_share_one_list_and_keep_no_secret_in_clear() -> None:
    """Issue 22: a drift pass over N keys reads them with one list (`GET /api/apikeys`), not N GETs; a key
    drifted by hand is read and repaired; the list view holds digests of the secrets, not the secrets."""
    keys: dict[str, dict[str, Any]] = {}
    calls: list[str] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        calls.append(f"{request.method} {path}")
        if path == "/api/apikeys" and request.method == "GET":
            return httpx.Response(200, json=list(keys.values()))
        cid = path.rsplit("/", 1)[1]
        if request.method == "GET":
            return httpx.Response(200, json=keys[cid]) if cid in keys else httpx.Response(404, json={})
        if request.method == "PATCH":
            for op in json.loads(request.content):
                keys[cid][op["path"].strip("/").split("/")[0]] = op["value"]
            return httpx.Response(200, json=keys[cid])
        created = json.loads(request.content)
        keys[created["clientId"]] = created
        return httpx.Response(201, json=created)

    driver = OtoroshiDriver("otoroshi", "http://oto.test", CLIENT_ID, CLIENT_SECRET,
                            transport=httpx.MockTransport(gateway), state_sync_seconds=0)  # fmt: skip
    requests = [replace(key_request(), ref=ObjectRef("shop", f"k{i}"),
                        credential=Credential(client_id=f"cid{i}", client_secret=f"secret-{i}"))
                for i in range(5)]  # fmt: skip
    for request in requests:
        await driver.keys._http.request("POST", "/api/routes/torii.shop.catalog/apikeys", op="create key",
                                        json=render_apikey(request, "route"))  # fmt: skip
    calls.clear()
    drift = [replace(r, max_age=30.0) for r in requests]
    results = await asyncio.gather(*(driver.keys.converge_key(r) for r in drift))
    assert not any(r.changed for r in results)
    assert calls == ["GET /api/apikeys"]  # one list for the five, no read per key
    assert "secret-" not in str(driver.keys._view)  # digests only
    keys["cid3"]["dailyQuota"] = 7  # edited by hand: seen by the next pass's list (this view predates it)
    calls.clear()
    assert not (await driver.keys.converge_key(drift[3])).changed and calls == []
    repaired = await driver.keys.converge_key(replace(drift[3], max_age=1e-6))
    assert repaired.changed and keys["cid3"]["dailyQuota"] != 7
    assert calls[:2] == ["GET /api/apikeys", "GET /api/routes/torii.shop.catalog/apikeys/cid3"]
    assert calls[2].startswith("PATCH")  # a repair writes from a fresh read of the one key
