"""TykDriver logic over httpx.MockTransport (no real gateway here: these pin request shapes and error handling).

The mock follows the verified Tyk semantics: POST /tyk/apis writes a definition file, only a reload loads it,
GET/DELETE /tyk/apis/{id} see loaded APIs only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import httpx
import pytest

from torii.gateways import burst
from torii.gateways.base import ObjectRef
from torii.gateways.errors import (
    AuthenticationError,
    ListenPathConflict,
    OwnershipConflict,
    PermanentGatewayError,
    RetryableGatewayError,
)
from torii.gateways.tyk import TykDriver
from torii.gateways.tyk_render import render_api_definition
from torii.models.gatewayapi import GatewayAPISpec

SECRET = "s3cr3t-admin-key"
REF = ObjectRef("shop", "orders")


class TykModel:
    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.loaded: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.reloads = 0
        self.fail_next: tuple[int, dict[str, Any]] | None = None
        self.reject_next_write: tuple[int, dict[str, Any]] | None = None
        self.lists = 0
        self.gets = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Tyk-Authorization"] == SECRET
        if self.fail_next is not None:
            status, body = self.fail_next
            self.fail_next = None
            return httpx.Response(status, json=body)
        path = request.url.path
        if path == "/tyk/reload/":
            assert request.url.params["block"] == "true"
            self.reloads += 1
            self.loaded = {k: {**v, "id": "5f0c"} for k, v in self.files.items()}  # Tyk adds server fields
            return httpx.Response(200, json={"status": "ok"})
        if path == "/tyk/apis/" and request.method == "GET":
            self.lists += 1
            return httpx.Response(200, json=list(self.loaded.values()))
        if path == "/tyk/apis/" and request.method == "POST":
            if self.reject_next_write is not None:
                status, body = self.reject_next_write
                self.reject_next_write = None
                return httpx.Response(status, json=body)
            body = json.loads(request.content)
            self.writes += 1
            self.files[body["api_id"]] = body
            return httpx.Response(200, json={"key": body["api_id"], "status": "ok", "action": "added"})
        if path.startswith("/tyk/apis/") and path != "/tyk/apis/":
            api_id = path.rsplit("/", 1)[1]
            if request.method == "GET":
                self.gets += 1
            if api_id not in self.loaded:
                return httpx.Response(404, json={"status": "error", "message": "API not found"})
            if request.method == "DELETE":
                self.files.pop(api_id, None)
                return httpx.Response(200, json={"key": api_id, "status": "ok", "action": "deleted"})
            return httpx.Response(200, json=self.loaded[api_id])
        return httpx.Response(404, json={"message": "not found"})


def spec(**overrides: Any) -> GatewayAPISpec:
    return GatewayAPISpec.model_validate(
        {"listenPath": "/orders/", "upstream": {"url": "http://orders.shop:8080"}, **overrides}
    )


@pytest.fixture
def tyk() -> tuple[TykDriver, TykModel]:
    model = TykModel()
    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(model), reload_quiet=0.01)
    return driver, model


async def test_create_then_no_write_when_in_sync(tyk: tuple[TykDriver, TykModel]) -> None:
    driver, model = tyk
    first = await driver.apis.converge_api(REF, spec())
    assert first.changed and first.created and first.gateway_id == "torii.shop.orders"
    assert (model.writes, model.reloads) == (1, 1)
    second = await driver.apis.converge_api(REF, spec())
    assert not second.changed
    assert (model.writes, model.reloads) == (1, 1)  # no gateway write, no reload


async def test_hand_edits_of_routing_are_repaired_and_defaults_do_not_cause_writes(
    tyk: tuple[TykDriver, TykModel],
) -> None:
    driver, model = tyk
    await driver.apis.converge_api(REF, spec())
    # The gateway adding or normalising fields Torii did not choose is not drift.
    model.loaded["torii.shop.orders"]["proxy"]["check_host_against_uptime_tests"] = False
    model.loaded["torii.shop.orders"]["tags"] = None
    assert not (await driver.apis.converge_api(REF, spec())).changed
    # Somebody points the API elsewhere by hand: repaired.
    model.loaded["torii.shop.orders"]["proxy"]["target_url"] = "http://evil:80"
    assert (await driver.apis.converge_api(REF, spec())).changed
    assert model.loaded["torii.shop.orders"]["proxy"]["target_url"] == "http://orders.shop:8080"


async def test_update_rewrites_and_reloads(tyk: tuple[TykDriver, TykModel]) -> None:
    driver, model = tyk
    await driver.apis.converge_api(REF, spec())
    result = await driver.apis.converge_api(REF, spec(upstream={"url": "http://orders-v2.shop:8080"}))
    assert result.changed and not result.created
    assert model.loaded["torii.shop.orders"]["proxy"]["target_url"] == "http://orders-v2.shop:8080"


async def test_a_burst_is_one_list_one_write_per_object_one_reload_one_confirming_list(
    tyk: tuple[TykDriver, TykModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    driver, model = tyk
    refs = [ObjectRef("shop", f"api-{i}") for i in range(50)]
    await asyncio.gather(*(driver.apis.converge_api(r, spec(listenPath=f"/{r.name}/")) for r in refs))
    assert (model.writes, model.reloads, model.lists) == (50, 1, 2)
    # The same burst again, right after: decided on the list that confirmed the first one (no call at all).
    results = await asyncio.gather(*(driver.apis.converge_api(r, spec(listenPath=f"/{r.name}/")) for r in refs))
    assert not any(r.changed for r in results)
    assert (model.writes, model.reloads, model.lists) == (50, 1, 2)
    # Later (that list older than FOLLOW_ON_AGE): one list, no write, no reload.
    monkeypatch.setattr(burst, "FOLLOW_ON_AGE", -1.0)
    results = await asyncio.gather(*(driver.apis.converge_api(r, spec(listenPath=f"/{r.name}/")) for r in refs))
    assert not any(r.changed for r in results)
    assert (model.writes, model.reloads, model.lists) == (50, 1, 3)
    # A small burst never follows on: read afresh, it sees a hand edit made a moment ago and repairs it.
    monkeypatch.undo()
    edited = next(a for a in model.loaded.values() if a["proxy"]["listen_path"] == "/api-0/")
    edited["proxy"]["target_url"] = "http://edited.example/"
    assert (await driver.apis.converge_api(refs[0], spec(listenPath=f"/{refs[0].name}/"))).changed


async def test_a_change_among_a_drift_passs_checks_is_read_alone_not_with_a_list_of_everything(
    tyk: tuple[TykDriver, TykModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 10,000 objects a list of every object takes seconds: a change landing in the same burst as drift checks
    (which accept the view) made the whole burst list everything again."""
    driver, model = tyk
    refs = [ObjectRef("shop", f"api-{i}") for i in range(50)]
    await asyncio.gather(*(driver.apis.converge_api(r, spec(listenPath=f"/{r.name}/")) for r in refs))
    monkeypatch.setattr(burst, "FOLLOW_ON_AGE", -1.0)  # no follow-on: only max_age lets an op use the view
    lists, gets = model.lists, model.gets
    changed = spec(listenPath="/api-0/", upstream={"url": "http://orders-v2.shop:8080"})
    results = await asyncio.gather(
        driver.apis.converge_api(refs[0], changed),
        *(driver.apis.converge_api(r, spec(listenPath=f"/{r.name}/"), max_age=60) for r in refs[1:]),
    )
    assert results[0].changed and not any(r.changed for r in results[1:])
    assert model.lists == lists  # no list of everything
    assert model.gets == gets + 2  # the change alone is read with one GET, and confirmed after the reload with one
    assert model.loaded["torii.shop.api-0"]["proxy"]["target_url"] == "http://orders-v2.shop:8080"


async def test_drift_checks_share_a_recent_view_and_a_rejection_fails_only_its_object(
    tyk: tuple[TykDriver, TykModel],
) -> None:
    driver, model = tyk
    await driver.apis.converge_api(REF, spec())
    lists = model.lists
    for _ in range(3):  # drift passes within max_age of the last list: no admin call at all
        assert not (await driver.apis.converge_api(REF, spec(), max_age=60)).changed
    assert model.lists == lists
    model.reject_next_write = (400, {"status": "error", "message": "Request malformed"})
    bad, good = await asyncio.gather(
        driver.apis.converge_api(ObjectRef("shop", "bad"), spec(listenPath="/bad/")),
        driver.apis.converge_api(ObjectRef("shop", "good"), spec(listenPath="/good/")),
        return_exceptions=True,
    )
    assert isinstance(bad, PermanentGatewayError) or isinstance(good, PermanentGatewayError)
    assert sum(isinstance(r, PermanentGatewayError) for r in (bad, good)) == 1


async def test_gateway_restarted_empty_is_repushed(tyk: tuple[TykDriver, TykModel]) -> None:
    driver, model = tyk
    await driver.apis.converge_api(REF, spec())
    model.files.clear()
    model.loaded.clear()
    result = await driver.apis.converge_api(REF, spec())
    assert result.changed and result.created and "torii.shop.orders" in model.loaded


async def test_delete_and_already_gone(tyk: tuple[TykDriver, TykModel]) -> None:
    driver, model = tyk
    await driver.apis.converge_api(REF, spec())
    assert await driver.apis.delete_api(REF) is True
    assert "torii.shop.orders" not in model.loaded
    assert await driver.apis.delete_api(REF) is False


async def test_rejection_is_permanent_with_the_gateways_message(tyk: tuple[TykDriver, TykModel]) -> None:
    driver, model = tyk
    model.reject_next_write = (400, {"status": "error", "message": "Request malformed"})
    with pytest.raises(PermanentGatewayError) as info:
        await driver.apis.converge_api(REF, spec())
    assert "Request malformed" in info.value.message and info.value.status == 400
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_server_errors_are_retryable(tyk: tuple[TykDriver, TykModel], status: int) -> None:
    driver, model = tyk
    model.fail_next = (status, {"message": "boom"})
    with pytest.raises(RetryableGatewayError):
        await driver.apis.converge_api(REF, spec())


async def test_wrong_secret_is_reported_without_the_secret(tyk: tuple[TykDriver, TykModel]) -> None:
    driver, model = tyk
    model.fail_next = (403, {"message": "Attempted administrative access with invalid or missing key!"})
    with pytest.raises(AuthenticationError) as info:
        await driver.apis.converge_api(REF, spec())
    assert "credentials" in info.value.message and SECRET not in info.value.message


async def test_timeouts_and_refused_connections_are_retryable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler in (timeout, refused):
        driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(handler))
        with pytest.raises(RetryableGatewayError) as info:
            await driver.apis.converge_api(REF, spec())
        assert "gateway tyk" in info.value.message and SECRET not in info.value.message


def test_rendering_neutral_fields_and_escape_hatch() -> None:
    definition = render_api_definition(
        REF,
        spec(
            auth="key",
            upstream={"targets": ["http://a:1", "http://b:2"]},
            rateLimit={"rate": 10, "per": 60},
            cors={"allowedOrigins": ["https://shop.example"]},
            tyk={"proxy": {"preserve_host_header": True}, "cache_options": {"enable_cache": True}},
        ),
        api_id="torii.shop.orders",
        org_id="acme",
    )
    assert definition["api_id"] == "torii.shop.orders" and definition["org_id"] == "acme"
    assert definition["use_standard_auth"] and not definition["use_keyless"]
    assert definition["proxy"]["enable_load_balancing"] and definition["proxy"]["target_list"] == [
        "http://a:1",
        "http://b:2",
    ]
    assert definition["proxy"]["preserve_host_header"] is True  # merged, not replacing proxy
    assert definition["proxy"]["listen_path"] == "/orders/"
    assert definition["global_rate_limit"] == {"rate": 10, "per": 60}
    assert definition["CORS"]["allowed_origins"] == ["https://shop.example"]
    assert definition["cache_options"] == {"enable_cache": True}


# ------------------------------------------------------------------------------------------------------ keys


def key_request() -> Any:
    from torii.gateways.base import Credential, KeyRequest, ResolvedApi
    from torii.models.gatewaykey import GatewayKeySpec

    spec = GatewayKeySpec.model_validate({"apis": [{"name": "orders"}]})
    return KeyRequest(REF, spec, (ResolvedApi("orders", "torii.shop.orders"),), None, Credential(key="k" * 48))


async def test_revoke_names_the_org_and_refuses_a_404_for_a_key_still_known() -> None:
    """Tyk 5.10 answers DELETE without org_id with 404 for a key it still accepts: the driver must notice."""
    seen: list[httpx.Request] = []

    def tyk_that_keeps_the_key(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "DELETE":
            return httpx.Response(404, json={"status": "error", "message": "There is no such key found"})
        # GET: still there (and Torii's, by its owner record)
        return httpx.Response(
            200, json={"org_id": "torii", "access_rights": {}, "meta_data": {"torii-object": str(REF)}}
        )

    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(tyk_that_keeps_the_key))
    with pytest.raises(RetryableGatewayError, match="still known"):
        await driver.keys.delete_key(key_request())
    assert all(r.url.params["org_id"] == "torii" for r in seen)


async def test_lost_plain_key_is_found_by_its_digest_and_revoked() -> None:
    """With hash_keys off Tyk has no key hash: the id is a digest of the stored name, matched in the org's list."""
    stored = "torii" + "k" * 48
    keys = {stored}

    def tyk(request: httpx.Request) -> httpx.Response:
        name = request.url.path.removeprefix("/tyk/keys/")
        if request.method == "POST":
            keys.add("torii" + name)
            return httpx.Response(200, json={"key": "torii" + name, "status": "ok", "action": "added"})
        if name == "":
            assert request.url.params["filter"] == "torii"
            return httpx.Response(200, json={"keys": sorted(keys)})
        if request.method == "DELETE":
            keys.discard(name)
            return httpx.Response(200, json={"status": "ok", "action": "deleted"})
        if name not in keys:
            return httpx.Response(404, json={"message": "Key not found"})
        return httpx.Response(200, json={"meta_data": {"torii-object": str(REF)}})

    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(tyk), session_cache_seconds=0)
    from torii.gateways.tyk_keys import _key_id

    old_id = _key_id({"key": stored})
    assert old_id is not None and "k" * 48 not in old_id
    await driver.keys.revoke_by_id(key_request(), old_id)
    assert stored not in keys


async def test_escape_hatch_cannot_change_routing_or_open_a_keyed_api(tyk: tuple[TykDriver, TykModel]) -> None:
    driver, model = tyk
    widened = spec(
        auth="key", tyk={"use_keyless": True, "proxy": {"listen_path": "/other/", "preserve_host_header": True}}
    )
    result = await driver.apis.converge_api(REF, widened)
    loaded = model.loaded["torii.shop.orders"]
    assert loaded["use_keyless"] is False and loaded["use_standard_auth"] is True
    assert loaded["proxy"]["listen_path"] == "/orders/"
    assert loaded["proxy"]["preserve_host_header"] is True  # everything else passes through
    assert result.notes == (
        "spec.tyk.use_keyless is ignored: Torii sets it from spec.auth",
        "spec.tyk.proxy.listen_path is ignored: Torii sets it from spec.listenPath",
    )


async def test_a_listen_path_held_by_another_api_is_a_conflict_until_it_is_free(
    tyk: tuple[TykDriver, TykModel],
) -> None:
    driver, model = tyk
    model.files["hand-made"] = model.loaded["hand-made"] = {
        "api_id": "hand-made", "proxy": {"listen_path": "/taken/", "target_url": "http://x:1"},
    }  # fmt: skip
    first, second = ObjectRef("shop", "a"), ObjectRef("shop", "b")
    results = await asyncio.gather(
        driver.apis.converge_api(first, spec(listenPath="/taken/")),
        driver.apis.converge_api(second, spec(listenPath="/shared/")),
        driver.apis.converge_api(ObjectRef("shop", "c"), spec(listenPath="/shared/")),
        return_exceptions=True,
    )
    # The holder is named only when it is of the same namespace: never another tenant's ids.
    assert (
        isinstance(results[0], ListenPathConflict)
        and "/taken/ is already served by another API" in str(results[0])
        and "hand-made" not in str(results[0])
    )
    assert not isinstance(results[1], BaseException) and results[1].created  # torii.shop.b sorts first
    assert isinstance(results[2], ListenPathConflict) and "by API torii.shop.b of this namespace" in str(results[2])
    assert "torii.shop.a" not in model.files and "torii.shop.c" not in model.files  # nothing half-applied
    del model.files["hand-made"], model.loaded["hand-made"]
    await driver.apis.converge_api(ObjectRef("shop", "other"), spec(listenPath="/other/"))  # a fresh list
    assert (await driver.apis.converge_api(first, spec(listenPath="/taken/"))).created  # free now: served


async def test_every_call_about_a_key_of_another_org_names_that_org() -> None:
    """One org rule: a key's own org (its session), else its API's (an adopted API keeps its org), never the
    connection's by default. Tyk looks keys up per org: a call in the wrong org misses the key."""
    from torii.gateways.base import Credential, KeyRequest, ResolvedApi
    from torii.models.gatewaykey import GatewayKeySpec

    sessions: dict[str, dict[str, Any]] = {}
    orgs: list[tuple[str, str]] = []

    def tyk(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("hashed") != "1":  # not a cache eviction (org-less by design)
            orgs.append((f"{request.method} {request.url.path}", request.url.params.get("org_id", "")))
        name = request.url.path.removeprefix("/tyk/keys/")
        if request.method in ("POST", "PUT"):
            sessions[name] = json.loads(request.content)
            return httpx.Response(200, json={"key": "acme" + name, "key_hash": "h" + name[:6], "action": "ok"})
        if request.method == "DELETE":
            sessions.pop(name, None)
            return httpx.Response(200, json={"action": "deleted"})
        return httpx.Response(200, json=sessions[name]) if name in sessions else httpx.Response(404, json={})

    driver = TykDriver("tyk", "http://tyk.test", SECRET, org_id="torii", transport=httpx.MockTransport(tyk),
                       session_cache_seconds=0)  # fmt: skip
    spec = GatewayKeySpec.model_validate({"apis": [{"name": "legacy"}], "quota": {"max": 5, "period": "day"}})
    api = ResolvedApi("legacy", "legacy-api", (), "acme")  # an adopted API of org acme
    request = KeyRequest(REF, spec, (api,), None, Credential(key="a" * 48))
    keys = driver.keys
    await keys.converge_key(request)
    assert sessions["a" * 48]["org_id"] == "acme"
    # A credential chosen just now cannot be on the gateway: created at once, no lookup first.
    calls = len(orgs)
    await keys.converge_key(dataclasses.replace(request, credential=Credential(key="c" * 48), fresh=True))
    assert orgs[calls:] == [("POST /tyk/keys/" + "c" * 48, "acme")]
    previous = Credential(key="b" * 48)
    sessions["b" * 48] = {"org_id": "acme", "meta_data": {"torii-object": str(REF)}}
    await keys.expire_previous(request, previous, 2_000_000_000)
    await keys.reset_key_quota(request)
    await keys.key_quota(request)
    await keys.revoke_previous(request, previous)
    await keys.delete_key(request)
    assert orgs and {org for _, org in orgs} == {"acme"}, [c for c in orgs if c[1] != "acme"]


async def test_a_drift_check_of_a_key_just_written_reads_nothing_once_and_the_next_pass_reads_it() -> None:
    """Tyk has no bulk read of sessions: a drift pass during a burst of new keys would GET each one just written
    (1.5 admin calls per key). A key this process wrote since the previous pass is known in sync, once."""
    from torii.gateways.base import Credential
    from torii.models.gatewaykey import GatewayKeySpec

    sessions: dict[str, dict[str, Any]] = {}
    calls: list[str] = []

    def tyk(request: httpx.Request) -> httpx.Response:
        name = request.url.path.removeprefix("/tyk/keys/")
        calls.append(request.method)
        if request.method in ("POST", "PUT"):
            sessions[name] = json.loads(request.content)
            return httpx.Response(200, json={"key": name, "key_hash": "h" + name[:6], "action": "ok"})
        return httpx.Response(200, json=sessions[name]) if name in sessions else httpx.Response(404, json={})

    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(tyk), session_cache_seconds=0)
    created = key_request()
    await driver.keys.converge_key(dataclasses.replace(created, fresh=True))
    drift = dataclasses.replace(created, max_age=30.0)
    assert calls == ["POST"]
    assert not (await driver.keys.converge_key(drift)).changed
    assert calls == ["POST"]  # known in sync: no GET
    assert not (await driver.keys.converge_key(drift)).changed
    assert calls == ["POST", "GET"]  # the record is used once: the next pass reads the key
    # A record never spares a check of a changed key: another spec, or another credential, is read and written.
    await driver.keys.converge_key(created)  # a reconcile reading the key in sync records it again
    assert calls[-1] == "GET"
    limited = GatewayKeySpec.model_validate({"apis": [{"name": "orders"}], "rateLimit": {"rate": 5, "per": 1}})
    assert (await driver.keys.converge_key(dataclasses.replace(drift, spec=limited))).changed
    assert calls[-2:] == ["GET", "PUT"] and sessions["k" * 48]["rate"] == 5
    rotated = dataclasses.replace(drift, spec=limited, credential=Credential(key="r" * 48))
    await driver.keys.converge_key(dataclasses.replace(rotated, max_age=0.0))
    assert (await driver.keys.converge_key(dataclasses.replace(drift, spec=limited))).changed is False
    assert calls[-1] == "GET"  # recorded for the rotated credential: the old one is read
    # A record older than the previous pass (2 x max_age) spares nothing.
    await driver.keys.converge_key(dataclasses.replace(rotated, max_age=0.0))
    before = len(calls)
    assert not (await driver.keys.converge_key(dataclasses.replace(rotated, max_age=1e-9))).changed
    assert calls[before:] == ["GET"] and not driver.keys._confirmed


async def test_a_key_written_back_after_its_delete_is_deleted_again_and_every_node_cache_evicted() -> None:
    """Verified on 5.10.2: a request past auth when the key was deleted writes its session back (a key with a
    quota comes back), and other nodes keep it cached under the murmur64 of the key clients send."""
    import mmh3

    key = "k" * 48
    owned = {"org_id": "torii", "access_rights": {}, "meta_data": {"torii-object": str(REF)}}
    stored: dict[str, dict[str, Any]] = {key: owned}
    calls: list[str] = []
    write_backs = [1]  # the first delete is undone by a request in flight

    def tyk(request: httpx.Request) -> httpx.Response:
        name = request.url.path.removeprefix("/tyk/keys/")
        calls.append(f"{request.method} {name if name == key else 'hash:' + name}")
        if request.method == "POST":
            stored[name] = json.loads(request.content)
            return httpx.Response(200, json={"action": "added"})
        if request.method == "DELETE":
            stored.pop(name, None)
            if name == key and write_backs:
                write_backs.pop()
                stored[key] = owned
            return httpx.Response(200, json={"action": "deleted"})
        return httpx.Response(200, json=stored[name]) if name in stored else httpx.Response(404, json={})

    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(tyk), session_cache_seconds=0)
    assert await driver.keys.delete_key(key_request())
    cached = format(mmh3.hash64(key, signed=False)[0], "016x")
    assert calls.count(f"DELETE {key}") == 2 and key not in stored  # deleted again once written back
    assert calls.count(f"POST hash:{cached}") == 2 and calls.count(f"DELETE hash:{cached}") == 2
    assert set(stored) == set()  # the eviction placeholder does not outlive its call


async def test_a_key_written_back_forever_is_reported_not_revoked(monkeypatch: pytest.MonkeyPatch) -> None:
    from torii.gateways import tyk_keys

    monkeypatch.setattr(tyk_keys, "REVOKE_TIMEOUT", 0.0)
    monkeypatch.setattr(tyk_keys, "WRITE_BACK_SECONDS", 0.0)
    owned = {"org_id": "torii", "access_rights": {}, "meta_data": {"torii-object": str(REF)}}

    def tyk(request: httpx.Request) -> httpx.Response:  # every delete undone by traffic
        return httpx.Response(200, json=owned if request.method == "GET" else {"action": "ok"})

    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(tyk), session_cache_seconds=0)
    with pytest.raises(RetryableGatewayError, match="written back"):
        await driver.keys.delete_key(key_request())


async def test_a_removal_left_alone_does_not_hold_the_rest_of_its_burst(tyk: tuple[TykDriver, TykModel]) -> None:
    # Another object's API named in a removal (a tenant deleting its object that tried to take that id) stays
    # served, rightly: the burst's confirmation must not wait for it to go, or every deletion batched with it
    # waits the whole load timeout (30 s in a real run).
    driver, model = tyk
    billing = ObjectRef("shop", "billing")
    await asyncio.gather(driver.apis.converge_api(REF, spec()),
                         driver.apis.converge_api(billing, spec(listenPath="/billing/")))  # fmt: skip
    thief = ObjectRef("evil", "grab")
    left, deleted = await asyncio.wait_for(asyncio.gather(
        driver.apis.delete_api(thief, "torii.shop.orders"), driver.apis.delete_api(billing),
        return_exceptions=True), timeout=5)  # fmt: skip
    assert isinstance(left, OwnershipConflict) and deleted is True
    assert "torii.shop.orders" in model.loaded and "torii.shop.billing" not in model.loaded
