"""Tenant isolation without a gateway: admin paths, error text, the tenancy policy's checks, gateway ownership and
the credential record. (The same attacks run against the real gateways in tests/e2e/test_tenancy.py.)"""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

import httpx
import pytest
from test_reconcile_gatewaykey import SPEC
from test_tyk_driver import SECRET, TykModel, spec

from support.fakes import OWNER, REF, ready
from torii.gateways.base import ObjectRef
from torii.gateways.errors import OwnershipConflict, PolicyViolation, UnsafeId
from torii.gateways.http import AdminClient, admin_path, scrub, segment
from torii.gateways.tyk import TykDriver
from torii.gateways.tyk_keys import key_path
from torii.gateways.tyk_render import render_api_definition, render_session
from torii.kube import SecretView
from torii.models.gatewayapi import GatewayAPISpec
from torii.models.gatewaykey import GatewayKeySpec
from torii.models.oauthclient import OAuthClientSpec
from torii.reconcile.gatewaykey import reconcile_key
from torii.reconcile.outcome import Cause
from torii.tenancy.config import EscapeHatchRules, Tenancy, TenancyMode, UpstreamRules
from torii.tenancy.escape_hatch import violations
from torii.tenancy.rules import Connection, check_api, check_key, check_oauth_client
from torii.tenancy.upstream import Address, upstream_violations

# ------------------------------------------------------------------------------------------ admin paths


@pytest.mark.parametrize(
    "value",
    ["../apis/torii.b.payments", "..", ".", "a/b", "a%2Fb", "a?b=1", "a#b", "a b", "", "\u017f", "x" * 300, "a\\b"],
)
def test_nothing_that_is_not_one_safe_segment_reaches_an_admin_path(value: str) -> None:
    with pytest.raises(UnsafeId) as refused:
        admin_path("/tyk/keys/{}", value)
    if len(value) > 2:  # a refused value may be a credential: never echoed
        assert value not in refused.value.message


def test_safe_ids_pass_unchanged() -> None:
    for value in ("torii.shop.orders", "5f3a9c01", "sha256:ab12", "a@b+c=d~e-f_g", "eyJvcmciOiJhY21lIn0="):
        assert segment(value) == value
    assert admin_path("/tyk/oauth/clients/{}/{}", "torii.shop.a", "c1") == "/tyk/oauth/clients/torii.shop.a/c1"


@pytest.mark.parametrize("name", ["create", "preview", "CREATE"])
def test_tyk_key_names_routed_elsewhere_are_refused(name: str) -> None:
    with pytest.raises(UnsafeId):
        key_path(name)


async def test_the_admin_client_refuses_an_unsafe_path_before_sending_it() -> None:
    sent: list[httpx.Request] = []
    client = AdminClient(
        "gw", "http://gw.test", transport=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200))
    )  # type: ignore[func-returns-value]
    for path in ("/tyk/keys/../apis/x", "/tyk/keys/a%2F..%2Fb/../c", "/tyk/keys/./x", "/tyk/keys/a?x=1"):
        with pytest.raises(UnsafeId):
            await client.request("GET", path, op="get key")
    assert sent == [] and client.calls == 0


def test_gateway_text_is_scrubbed_before_it_reaches_status_or_events() -> None:
    text = f"bad key 0123456789abcdef0123456789abcdef for secret {SECRET}\n\n   " + "x " * 300
    out = scrub(text, [SECRET])
    assert SECRET not in out and "0123456789abcdef0123456789abcdef" not in out
    assert "\n" not in out and len(out) <= 200 and out.startswith("bad key ***")


async def test_a_refusal_never_repeats_the_admin_secret() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": f"header {request.headers['X-Tyk-Authorization']} rejected"})

    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(echo))
    with pytest.raises(Exception) as refused:
        await driver.check()
    assert SECRET not in str(refused.value)


# ------------------------------------------------------------------------------------------ escape hatch


def refused(gateway: str, hatch: dict[str, Any], rules: EscapeHatchRules | None = None, *, single: bool = False,
            ignored: frozenset[str] = frozenset()) -> list[str]:  # fmt: skip
    return violations(gateway, hatch, rules or EscapeHatchRules(), single_team=single, ignored=set(ignored))


@pytest.mark.parametrize(
    ("hatch", "why"),
    [
        ({"version_data": {"versions": {"Default": {"extended_paths": {"virtual": [{"path": "/x"}]}}}}}, "runs code"),
        ({"custom_middleware": {"driver": "otto"}}, "runs code"),
        ({"event_handlers": {"events": {}}}, "runs code"),
        ({"version_data": {"versions": {"v1": {"extended_paths": {"url_rewrites": [{"rewrite_to": "tyk://b/"}]}}}}},
         "changes routing"),
        ({"domain": "payments.example.com"}, "changes routing"),
        ({"listen_port": 9999}, "changes routing"),
        ({"certificates": ["c1"]}, "certificates"),
        ({"jwt_default_policies": ["admin-policy"]}, "applies policies"),
        ({"proxy": {"service_discovery": {"use_discovery_service": True}}}, "other addresses"),
        ({"version_data": {"versions": {"v1": {"override_target": "http://169.254.169.254/"}}}}, "other addresses"),
        ({"version_data": {"versions": {"v1": {"paths": {"ignored": ["/admin"]}}}}}, "authentication"),
        ({"API_ID": "../../etc/x"}, "Torii's"),  # Go decodes field names case-insensitively
        ({"Proxy": {"Target_URL": "http://169.254.169.254/"}}, "other addresses"),
        ({"proxy": {"target_url": "x"}, "Proxy": {"strip_listen_path": True}}, "ambiguous"),
        ({"cache_options": {"cache_key_prefix": "env://TYK_GW_SECRET"}}, "own secrets"),
        ({"version_data": {"versions": {"v1": {"global_headers": {"Host": "otoroshi-api.oto.tools"}}}}},
         "steers the gateway"),
        ({"version_data": {"versions": {"v1": {"global_headers": {"x-tyk-internal": "1"}}}}}, "steers the gateway"),
        ({"unknown_future_field": True}, "not in the allowed fields"),
    ],
)  # fmt: skip
def test_default_tyk_rules_refuse_what_runs_code_routes_authenticates_or_leaks(hatch: dict[str, Any], why: str) -> None:
    problems = refused("tyk", hatch)
    assert problems and any(why in p for p in problems), problems


def test_default_tyk_rules_allow_what_only_shapes_the_tenants_own_api() -> None:
    hatch = {
        "cache_options": {"enable_cache": True, "cache_timeout": 30},
        "CORS": {"enable": True},
        "version_data": {"versions": {"Default": {"global_headers": {"X-Team": "shop"},
                                                  "extended_paths": {"mock_response": [], "hard_timeouts": []}}}},
        "global_rate_limit": {"rate": 5, "per": 1},
        "config_data": {"team": "shop"},
    }  # fmt: skip
    assert refused("tyk", hatch) == []
    # Torii's neutral fields are overridden anyway: setting them is not refused (Ready's message says ignored).
    neutral = frozenset({"use_keyless", "proxy.listen_path"})
    assert refused("tyk", {"use_keyless": True, "proxy": {"listen_path": "/x/"}}, ignored=neutral) == []


@pytest.mark.parametrize(
    "hatch",
    [
        {"plugins": {"enabled": True}}, {"hosts": ["payments.oto.tools"]}, {"publicPatterns": ["/.*"]},
        {"targets": [{"host": "169.254.169.254"}]}, {"groups": ["admin-api-group"]}, {"groupId": "admin-api-group"},
        {"metadata": {"torii.dev/namespace": "b"}}, {"metadata": {"otoroshi-core-issue-certificate": "true"}},
        {"additionalHeaders": {"Host": "otoroshi-admin-internal-api.oto.tools"}},
        {"additionalHeaders": {"X-Secret": "${config.otoroshi.secret}"}}, {"_loc": {"tenant": "x"}},
        {"root": "/@evil.example/"},
    ],
)  # fmt: skip
def test_default_otoroshi_rules_refuse(hatch: dict[str, Any]) -> None:
    assert refused("otoroshi", hatch)


@pytest.mark.parametrize(
    ("hatch", "why"),
    [
        ({"plugins": [{"plugin": "cp:otoroshi.next.plugins.StaticResponse"}]}, "runs code"),
        ({"frontend": {"domains": ["payments.oto.tools/"]}}, "changes routing"),
        ({"frontend": {"headers": {"X-Team": "b"}}}, "changes routing"),
        ({"groups": ["admin-api-group"]}, "changes routing"),
        ({"backend": {"targets": [{"hostname": "169.254.169.254", "port": 80}]}}, "other addresses"),
        ({"backend": {"client": {"proxy": {"host": "evil"}}}}, "other addresses"),
        ({"backend_ref": "someone-elses-backend"}, "other addresses"),
        ({"metadata": {"torii-fingerprint": "x"}}, "Torii's"), ({"_loc": {"tenant": "x"}}, "Torii's"),
        ({"capture": True}, "records requests"), ({"description": "${vault://secret}"}, "own secrets"),
        ({"matchingRoot": "/x/"}, "not in the allowed fields"),  # a service field means nothing on a route
    ],
)  # fmt: skip
def test_default_otoroshi_route_rules_refuse(hatch: dict[str, Any], why: str) -> None:
    problems = refused("otoroshi-routes", hatch)
    assert problems and any(why in p for p in problems), problems


def test_default_otoroshi_route_rules_allow_what_only_shapes_the_tenants_own_route() -> None:
    hatch = {
        "name": "orders",
        "tags": ["shop"],
        "metadata": {"team": "shop"},
        "frontend": {"exact": True},
        "backend": {"load_balancing": {"type": "Random"}, "client": {"call_timeout": 5000, "retries": 2}},
    }
    assert refused("otoroshi-routes", hatch) == []


async def test_route_hosts_follow_the_namespaces_host_rules() -> None:
    tenancy = Tenancy.model_validate(
        {"hosts": {"patterns": ["{namespace}.oto.tools"]}, "escapeHatch": {"allowed": ["*"], "denied": []}}
    )
    conn = Connection("oto", "otoroshi", tenancy, ["http://oto:8080"], dialect="otoroshi-routes")
    base = {"listenPath": "/x/", "upstream": {"url": "http://orders.shop.svc:8080"}}
    own = GatewayAPISpec.model_validate({**base, "otoroshi": {"frontend": {"domains": ["shop.oto.tools/x/"]}}})
    await check_api(conn, "shop", own, resolver=no_dns)
    other = GatewayAPISpec.model_validate({**base, "otoroshi": {"frontend": {"domains": ["pay.oto.tools/x/"]}}})
    with pytest.raises(PolicyViolation, match=r"frontend\.domains: pay\.oto\.tools is not a host of namespace"):
        await check_api(conn, "shop", other, resolver=no_dns)


def test_single_team_and_platform_rules() -> None:
    dangerous = {"custom_middleware": {"driver": "otto"}, "domain": "x.example.com"}
    assert refused("tyk", dangerous, single=True) == []
    # The platform narrows a single-team install, or widens a multi-tenant one.
    assert refused("tyk", dangerous, EscapeHatchRules(denied=["custom_middleware"]), single=True)
    widened = EscapeHatchRules(allowed=["*"], denied=[])
    assert refused("tyk", {"custom_middleware": {"driver": "otto"}}, widened) == []
    assert refused("tyk", {"cache_options": {}}, EscapeHatchRules(allowed=["CORS"])) != []


# ------------------------------------------------------------------------------------------ upstreams


async def no_dns(host: str, port: int) -> list[Address]:
    return {"metadata.internal": [ip_address("169.254.169.254")], "orders.shop.svc": [ip_address("10.0.0.7")]}.get(
        host, []
    )


@pytest.mark.parametrize(
    ("url", "rules", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", UpstreamRules(), "denied network"),
        ("http://[fe80::1]:80/", UpstreamRules(), "denied network"),
        ("http://metadata.internal/", UpstreamRules(), "denied network"),  # a name resolving there
        ("http://tyk-admin.gw:8080/tyk/keys/", UpstreamRules(), "admin endpoint"),
        ("http://127.0.0.1:8080/", UpstreamRules(), "admin endpoint"),  # the gateway's own loopback
        ("http://localhost:8080/", UpstreamRules(), "admin endpoint"),
        ("http://billing.other.svc:80/", UpstreamRules(allowed_hosts=["*.{namespace}.svc"]), "allowedHosts"),
        ("http://orders.shop.svc/", UpstreamRules(allowed_cidrs=["10.1.0.0/16"]), "allowedCidrs"),
        ("http://evil.example/", UpstreamRules(denied_hosts=["*.example"]), "deniedHosts"),
    ],
)
async def test_upstream_rules(url: str, rules: UpstreamRules, why: str) -> None:
    problems = await upstream_violations([url], rules, "shop", ["http://tyk-admin.gw:8080"], resolver=no_dns)
    assert problems and why in problems[0], problems


async def test_upstreams_within_the_rules_pass() -> None:
    rules = UpstreamRules(allowed_hosts=["*.{namespace}.svc", "127.0.0.1"])
    ok = ["http://orders.shop.svc/", "http://127.0.0.1:9000/"]  # loopback on another port than the admin API's
    assert await upstream_violations(ok, rules, "shop", ["http://127.0.0.1:8080"], resolver=no_dns) == []


# ------------------------------------------------------------------------------------------ whole checks


def conn(**tenancy: Any) -> Connection:
    return Connection("tyk", "tyk", Tenancy.model_validate(tenancy), ["http://tyk.gw:8080"])


async def test_api_checks_name_the_field_and_the_rule() -> None:
    api = GatewayAPISpec.model_validate({"listenPath": "/payments/", "upstream": {"url": "http://orders.shop.svc/"}})
    await check_api(conn(), "shop", api, resolver=no_dns)  # the safe defaults accept an ordinary API
    with pytest.raises(PolicyViolation, match=r"spec.listenPath: /payments/ must start with one of /shop/"):
        await check_api(conn(listenPaths={"prefixes": ["/{namespace}/"]}), "shop", api, resolver=no_dns)
    only_c = conn(listenPaths={"byNamespace": {"c": ["/c/"]}})
    await check_api(only_c, "shop", api, resolver=no_dns)  # a rule for another namespace leaves this one free
    with pytest.raises(PolicyViolation, match=r"must start with one of /c/"):
        await check_api(only_c, "c", api, resolver=no_dns)
    with pytest.raises(PolicyViolation, match="namespace shop may not use this gateway"):
        await check_api(conn(namespaces=["team-*"]), "shop", api, resolver=no_dns)
    adopting = GatewayAPISpec.model_validate({**api.model_dump(by_alias=True), "adopt": {"id": "torii.b.payments"}})
    with pytest.raises(PolicyViolation, match=r"spec.adopt: namespace shop may not adopt"):
        await check_api(conn(), "shop", adopting, resolver=no_dns)
    await check_api(conn(adoption={"namespaces": ["shop"]}), "shop", adopting, resolver=no_dns)
    leaking = GatewayAPISpec.model_validate({"listenPath": "/x/", "upstream": {"url": "http://a/env://TYK_GW_SECRET"}})
    with pytest.raises(PolicyViolation, match="own secrets"):
        await check_api(conn(), "shop", leaking, resolver=no_dns)
    otoroshi = Connection("oto", "otoroshi", Tenancy(), ["http://oto:8080"])
    leaking = GatewayAPISpec.model_validate({"listenPath": "/x/", "upstream": {"url": "http://a/${config.secret}"}})
    with pytest.raises(PolicyViolation, match="own secrets"):
        await check_api(otoroshi, "shop", leaking, resolver=no_dns)


def test_oauth_policies_come_only_from_the_platform_list() -> None:
    client = OAuthClientSpec.model_validate({"api": "reports", "redirectUri": "https://a/cb", "policy": "admin"})
    with pytest.raises(PolicyViolation, match=r"spec.policy: admin is not a policy OAuth clients may use"):
        check_oauth_client(conn(), "shop", client)
    check_oauth_client(conn(oauthPolicies=["admin"]), "shop", client)
    check_oauth_client(conn(mode="singleTeam"), "shop", client)


def test_a_key_escape_hatch_cannot_spell_an_owned_field_another_way() -> None:
    for hatch in ({"Access_Rights": {"torii.b.payments": {}}}, {"META_DATA": {"torii-object": "b/x"}}):
        key = GatewayKeySpec.model_validate({"apis": [{"name": "a"}], "tyk": hatch})
        with pytest.raises(PolicyViolation):
            check_key(conn(), "shop", key)
    # and the rendering drops them whatever the policy (single team included)
    request: Any = type("R", (), {})()
    from torii.gateways.base import Credential, KeyRequest, ResolvedApi

    key = GatewayKeySpec.model_validate({"apis": [{"name": "a"}], "metadata": {"team": "shop"},
                                         "tyk": {"ACCESS_RIGHTS": {"torii.b.payments": {}},
                                                 "Meta_Data": {"torii-object": "b/x"}}})  # fmt: skip
    request = KeyRequest(ObjectRef("shop", "k", "GatewayKey", "u1"), key, (ResolvedApi("a", "torii.shop.a"),),
                         None, Credential(key="k" * 48))  # fmt: skip
    session = render_session(request, "torii")
    assert set(session["access_rights"]) == {"torii.shop.a"} and "ACCESS_RIGHTS" not in session
    assert session["meta_data"]["torii-object"] == "shop/k" and session["meta_data"]["torii-uid"] == "u1"
    assert "Meta_Data" not in session


def test_the_owner_record_cannot_be_forged_through_an_escape_hatch() -> None:
    forged = spec(tyk={"config_data": {"torii": {"namespace": "b", "name": "payments"}}, "CONFIG_DATA": {}})
    definition = render_api_definition(ObjectRef("a", "x", "GatewayAPI", "u"), forged, api_id="torii.a.x",
                                       org_id="torii")  # fmt: skip
    assert definition["config_data"]["torii"] == {"kind": "GatewayAPI", "namespace": "a", "name": "x", "uid": "u"}
    assert "CONFIG_DATA" not in definition


# ------------------------------------------------------------------------------------------ ownership


@pytest.fixture
def tyk() -> tuple[TykDriver, TykModel]:
    model = TykModel()
    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(model), reload_quiet=0.01)
    return driver, model


async def test_an_api_of_another_object_is_never_written_or_deleted(tyk: tuple[TykDriver, TykModel]) -> None:
    driver, model = tyk
    victim = ObjectRef("b", "payments", "GatewayAPI", "uid-b")
    await driver.apis.converge_api(victim, spec(listenPath="/payments/"))
    before = dict(model.files["torii.b.payments"])
    attacker = ObjectRef("a", "grab", "GatewayAPI", "uid-a")
    adopting = spec(listenPath="/grab/", adopt={"id": "torii.b.payments"})
    with pytest.raises(OwnershipConflict) as refused:
        await driver.apis.converge_api(attacker, adopting)
    assert "torii.b" not in refused.value.message and "another Torii object" in refused.value.message
    with pytest.raises(OwnershipConflict):  # left alone (the cleanup releases the object with a LeftAlone Event)
        await driver.apis.delete_api(attacker, "torii.b.payments")
    assert model.files["torii.b.payments"] == before


async def test_an_api_nobody_owns_is_taken_only_by_adoption(tyk: tuple[TykDriver, TykModel]) -> None:
    driver, model = tyk
    model.files["torii.a.orders"] = model.loaded["torii.a.orders"] = {
        "api_id": "torii.a.orders", "org_id": "torii", "proxy": {"listen_path": "/hand/", "target_url": "http://x"},
    }  # fmt: skip
    with pytest.raises(OwnershipConflict, match="not managed by Torii"):
        await driver.apis.converge_api(ObjectRef("a", "orders", "GatewayAPI", "u"), spec())
    assert model.files["torii.a.orders"]["proxy"]["listen_path"] == "/hand/"


async def test_a_path_under_another_namespaces_path_is_refused_without_naming_it(
    tyk: tuple[TykDriver, TykModel],
) -> None:
    driver, model = tyk
    await driver.apis.converge_api(ObjectRef("b", "payments", "GatewayAPI", "u"), spec(listenPath="/payments/"))
    with pytest.raises(Exception) as refused:
        await driver.apis.converge_api(ObjectRef("a", "shadow", "GatewayAPI", "v"), spec(listenPath="/payments/v2/"))
    assert "overlaps a path another namespace serves" in str(refused.value) and "torii.b" not in str(refused.value)
    assert "torii.a.shadow" not in model.files
    await driver.apis.converge_api(ObjectRef("b", "v2", "GatewayAPI", "w"), spec(listenPath="/payments/v2/"))  # its own


async def test_a_key_of_another_object_is_never_revoked() -> None:
    from torii.gateways.base import Credential, KeyRequest, ResolvedApi

    deleted: list[str] = []

    def tyk(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            deleted.append(request.url.path)
        return httpx.Response(200, json={"org_id": "torii", "meta_data": {"torii-object": "b/checkout"}})

    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(tyk), session_cache_seconds=0)
    request = KeyRequest(ObjectRef("a", "thief", "GatewayKey", "u"), GatewayKeySpec.model_validate(
        {"apis": [{"name": "x"}]}), (ResolvedApi("x", "torii.a.x"),), None, Credential(key="f" * 48))  # fmt: skip
    keys = driver.keys
    attempts = (keys.delete_key(request), keys.revoke_by_id(request, "5f3a9c01"),
                keys.revoke_previous(request, Credential(key="e" * 48)), keys.converge_key(request))  # fmt: skip
    for attempt in attempts:
        with pytest.raises(OwnershipConflict) as refused:
            await attempt
        assert "b/checkout" not in refused.value.message
    assert deleted == []


# ------------------------------------------------------------------------------------------ the credential record


async def test_a_credential_written_into_the_secret_by_the_tenant_is_never_used(world: Any) -> None:
    env, secrets, _, driver, _, _ = world
    first = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    issued = secrets.items["checkout"].data["key"]
    # The tenant owns the Secret: it writes a path-climbing value and Torii's old bookkeeping annotation.
    view = secrets.items["checkout"]
    secrets.items["checkout"] = SecretView(
        "checkout", {"key": "../apis/torii.b.payments", "previousKey": "../apis/torii.b.orders"},
        view.labels, {"torii.dev/previous-key-id": "../apis/torii.b.payments"}, view.owner_uids,
        view.resource_version,
    )  # fmt: skip
    out = await reconcile_key(env, REF, OWNER, {**SPEC, "rateLimit": {"rate": 6, "per": 1}}, 2, first.status,
                              Cause.UPDATE)  # fmt: skip
    assert ready(out)["status"] == "True"
    sent = [r.credential.key for r in driver.issued.values()]
    assert all(".." not in key for key in sent) and not any(".." in i for i in driver.revoked_ids)
    fresh = secrets.items["checkout"].data["key"]
    assert fresh not in (issued, "../apis/torii.b.payments") and len(fresh) == 48
    assert driver.revoked_ids == [first.status["keyId"]]  # the key it had issued, by the id it recorded
    assert "CredentialReplaced" in [e.reason for e in out.events]


async def test_a_secret_template_cannot_carry_torii_annotations(world: Any) -> None:
    env, secrets, _, _, _, _ = world
    spec_ = {**SPEC, "secretTemplate": {"annotations": {"torii.dev/previous-key-id": "x", "team": "shop"}}}
    await reconcile_key(env, REF, OWNER, spec_, 1, None, Cause.CREATE)
    assert secrets.items["checkout"].annotations == {"team": "shop"}  # refused at apply too (CEL)


def test_tenancy_defaults_are_the_safe_ones() -> None:
    default = Tenancy()
    assert default.mode == TenancyMode.MULTI_TENANT and default.adoption_grant().namespaces == []
    assert not default.oauth_policy_allowed("any") and "169.254.0.0/16" in default.upstreams.denied_cidrs
    single = Tenancy(mode=TenancyMode.SINGLE_TEAM)
    assert single.adoption_grant().credentials and single.oauth_policy_allowed("any")


async def test_an_adoption_refused_in_a_burst_does_not_free_the_victims_path(tyk: tuple[TykDriver, TykModel]) -> None:
    import asyncio

    driver, model = tyk
    await driver.apis.converge_api(ObjectRef("b", "payments", "GatewayAPI", "u"), spec(listenPath="/payments/"))
    grab = driver.apis.converge_api(ObjectRef("a", "grab", "GatewayAPI", "v"),
                               spec(listenPath="/grab/", adopt={"id": "torii.b.payments"}))  # fmt: skip
    shadow = driver.apis.converge_api(ObjectRef("a", "shadow", "GatewayAPI", "w"), spec(listenPath="/payments/v2/"))
    results = await asyncio.gather(grab, shadow, return_exceptions=True)  # one burst
    assert isinstance(results[0], OwnershipConflict)
    assert "overlaps a path another namespace serves" in str(results[1])
    assert set(model.files) == {"torii.b.payments"}


async def test_an_oauth_client_of_an_api_already_gone_is_gone_and_another_objects_client_is_left() -> None:
    from torii.gateways.base import OAuthClientRequest

    deleted: list[str] = []
    clients = {"torii.a.reports": [{"client_id": "theirs", "meta_data": {"torii-object": "b/reports-web"}}]}

    def tyk(request: httpx.Request) -> httpx.Response:
        api_id = request.url.path.split("/")[4]
        if request.method == "DELETE":
            deleted.append(request.url.path)
            return httpx.Response(200, json={})
        if api_id not in clients:
            return httpx.Response(404, content=b"null")  # what Tyk answers for an API it no longer has
        return httpx.Response(200, json=clients[api_id])

    driver = TykDriver("tyk", "http://tyk.test", SECRET, transport=httpx.MockTransport(tyk))
    ref = ObjectRef("a", "web", "OAuthClient", "u")
    gone = OAuthClientRequest(ref, "torii.a.deleted", "c1", "", "", None, "", {})
    assert not await driver.oauth.delete_oauth_client(gone)  # deletion never hangs on an API deleted first
    with pytest.raises(OwnershipConflict):
        await driver.oauth.delete_oauth_client(
            OAuthClientRequest(ref, "torii.a.reports", "theirs", "", "", None, "", {})
        )
    assert deleted == []


async def test_an_upstream_at_any_tyk_nodes_admin_port_is_refused() -> None:
    """Several Tyk nodes: every node's admin endpoint is the gateway's, not only `url`'s (an API on node 0 could
    otherwise proxy tenants' requests into node 2's admin API)."""
    from torii.gateways.tyk import TykDriver

    nodes = ["http://10.0.0.1:8080", "http://10.0.0.2:8080", "http://10.0.0.3:8080"]
    driver = TykDriver("tyk", nodes[0], "secret", nodes=nodes)
    try:
        attack = ["http://10.0.0.3:8080/tyk/keys/"]
        problems = await upstream_violations(attack, UpstreamRules(), "shop", driver.admin_urls, resolver=no_dns)
        assert problems and "admin endpoint" in problems[0], problems
    finally:
        await driver.aclose()


async def test_a_jwks_url_is_checked_like_an_upstream() -> None:
    """The gateway fetches a JWKS itself: a tenant may not aim it at the gateway's admin API or a denied network."""
    base = {"listenPath": "/p/", "upstream": {"url": "http://orders.shop.svc/"}, "auth": "jwt"}
    fine = GatewayAPISpec.model_validate({**base, "jwt": {"jwksUrl": "https://idp.example.com/jwks"}})
    await check_api(conn(), "shop", fine, resolver=no_dns)
    for url in ("http://tyk.gw:8080/tyk/keys", "http://169.254.169.254/latest/meta-data"):
        spec = GatewayAPISpec.model_validate({**base, "jwt": {"jwksUrl": url}})
        with pytest.raises(PolicyViolation, match=r"spec\.jwt\.jwksUrl"):
            await check_api(conn(), "shop", spec, resolver=no_dns)


async def test_tyk_auth_fields_of_another_mode_cannot_come_in_through_the_escape_hatch() -> None:
    """`enable_jwt` with a token-chosen policy on a key API is not refused by the tenancy check (Torii owns those
    fields): it must then never reach the gateway."""
    from torii.gateways.base import ObjectRef
    from torii.gateways.tyk_render import NEUTRAL_FIELDS, render_api_definition

    hatch = {"enable_jwt": True, "jwt_source": "https://evil/jwks", "jwt_policy_field_name": "pol",
             "jwt_default_policies": ["admin-policy"], "use_basic_auth": True}  # fmt: skip
    spec = GatewayAPISpec.model_validate({"listenPath": "/p/", "upstream": {"url": "http://o/"}, "auth": "key",
                                          "tyk": hatch})  # fmt: skip
    real = Connection("tyk", "tyk", Tenancy(), ["http://tyk.gw:8080"], neutral_fields=frozenset(NEUTRAL_FIELDS))
    await check_api(real, "shop", spec, resolver=no_dns)  # as the operator checks it: Torii's own fields
    definition = render_api_definition(ObjectRef("shop", "p"), spec, api_id="torii.shop.p", org_id="o")
    assert not set(hatch) & set(definition), definition
    assert definition["use_standard_auth"] is True
