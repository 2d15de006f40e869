"""`torii import`'s mapping of gateway objects to manifests: neutral fields first, only what differs in the
escape hatch, gateway defaults left out, and every object that cannot be represented named with its reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from torii.gateways.tyk import TykDriver
from torii.importer import otoroshi, tyk
from torii.importer.manifests import ImportResult, KeyedApi, Manifest, Names, Skipped, dump, key_type_for, slug
from torii.importer.overrides import minimal_override
from torii.importer.run import tyk_operator_api_id
from torii.models.gatewayapi import GatewayAPISpec
from torii.models.gatewaykey import GatewayKeySpec


def tyk_definition(**extra: Any) -> dict[str, Any]:
    """A definition as Tyk 5.10 returns it: every field, zero values where nobody set one."""
    base: dict[str, Any] = {
        "name": "Orders v2", "api_id": "orders-v2", "org_id": "acme", "id": "", "active": True,
        "use_keyless": False, "use_standard_auth": True, "use_oauth2": False, "use_basic_auth": False,
        "enable_jwt": False, "auth": {"auth_header_name": "X-Api-Key", "use_param": False},
        "auth_configs": {"authToken": {"auth_header_name": "X-Api-Key"}},
        "proxy": {"listen_path": "/orders/", "target_url": "http://orders:8080/", "strip_listen_path": True,
                  "enable_load_balancing": False, "target_list": [], "preserve_host_header": False},
        "version_data": {"not_versioned": True, "default_version": "",
                         "versions": {"Default": {"name": "Default", "use_extended_paths": False}}},
        "global_rate_limit": {"rate": 0, "per": 0}, "CORS": {"enable": False}, "tags": [], "config_data": None,
        "custom_middleware": {"pre": [], "post": []}, "do_not_track": False,
    }  # fmt: skip
    return {**base, **extra}


def test_overrides_leave_out_what_the_gateway_and_torii_produce_anyway() -> None:
    actual = {"a": 1, "b": 0, "c": {"d": "", "e": "kept"}, "targets": [{"host": "x:80", "weight": 1}], "n": None}
    rendered = {"a": 1, "c": {"d": "set"}, "targets": [{"host": "x:80"}], "n": {}}
    template = {"targets": [{"host": "changeme", "weight": 1}]}
    assert minimal_override(actual, rendered, template) == {"c": {"d": "", "e": "kept"}}
    assert minimal_override({"targets": [{"host": "x:80", "weight": 2}]}, rendered, template) == {
        "targets": [{"host": "x:80", "weight": 2}]
    }


def test_a_tyk_api_maps_to_neutral_fields_and_only_its_differences() -> None:
    out = tyk.api_manifest(tyk_definition(), gateway="tyk", org_id="torii", names=Names(), namespace="shop")
    assert isinstance(out, Manifest) and out.name == "orders-v2" and out.namespace == "shop"
    assert out.spec == {
        "gateway": "tyk", "listenPath": "/orders/", "upstream": {"url": "http://orders:8080/"}, "auth": "key",
        "adopt": {"id": "orders-v2", "orgId": "acme"},
        "tyk": {"name": "Orders v2", "auth": {"auth_header_name": "X-Api-Key"},
                "auth_configs": {"authToken": {"auth_header_name": "X-Api-Key"}}},
    }  # fmt: skip
    GatewayAPISpec.model_validate(out.spec)
    same_org = tyk.api_manifest(tyk_definition(), gateway="tyk", org_id="acme", names=Names())
    assert isinstance(same_org, Manifest) and same_org.spec["adopt"] == {"id": "orders-v2"}


def test_tyk_objects_torii_cannot_represent_are_named_with_the_reason() -> None:
    cases = {
        "spec.auth: key with spec.additionalAuth: [jwt]": tyk_definition(enable_jwt=True),
        "several auth modes (key, basicAuth, jwt)": tyk_definition(enable_jwt=True, use_basic_auth=True),
        "set spec.mtls.allowed": tyk_definition(use_mutual_tls_auth=True),
        "let a token choose its rights": tyk_definition(
            use_standard_auth=False, enable_jwt=True, jwt_policy_field_name="pol"
        ),
        "never writes a key into a manifest": tyk_definition(
            use_standard_auth=False, enable_jwt=True, jwt_source="c2VjcmV0LXNlY3JldC1zZWNyZXQ="
        ),
        "spec.upstream.tls.clientCertificateSecretName": tyk_definition(upstream_certificates={"*": "abc"}),
        "spec.upstream.tls.pinnedPublicKeys": tyk_definition(pinned_public_keys={"*": "abc"}),
        "carry HMAC secrets": tyk_definition(use_standard_auth=False, enable_jwt=True, jwt_signing_method="rsa"),
        "already managed by Torii": tyk_definition(config_data={"torii": {"namespace": "a", "name": "b"}}),
        "not an http(s) URL": tyk_definition(proxy={"listen_path": "/x/", "target_url": "tyk://other/"}),
        "no authentication mode": tyk_definition(use_standard_auth=False),
    }
    for reason, definition in cases.items():
        out = tyk.api_manifest(definition, gateway="tyk", org_id="torii", names=Names())
        assert isinstance(out, Skipped) and reason in out.reason and "orders-v2" in out.source


def test_tyk_basic_auth_and_jwt_apis_map_to_their_auth_mode() -> None:
    basic = tyk.api_manifest(tyk_definition(use_standard_auth=False, use_basic_auth=True), gateway="tyk",
                             org_id="acme", names=Names())  # fmt: skip
    assert isinstance(basic, Manifest) and basic.spec["auth"] == "basicAuth"
    # A JWKS API's callers get Tyk policies (limits, other APIs): Torii's own policy would serve them differently.
    jwks = tyk.api_manifest(
        tyk_definition(use_standard_auth=False, enable_jwt=True, jwt_signing_method="rsa",
                       jwt_source="https://idp.example/jwks", jwt_default_policies=["gold"]),
        gateway="tyk", org_id="acme", names=Names(),
    )  # fmt: skip
    assert isinstance(jwks, Skipped) and "policies ['gold']" in jwks.reason
    per_key = tyk.api_manifest(tyk_definition(use_standard_auth=False, enable_jwt=True, jwt_signing_method="hmac"),
                               gateway="tyk", org_id="acme", names=Names())  # fmt: skip
    assert isinstance(per_key, Manifest) and per_key.spec["auth"] == "jwt" and "jwt" not in per_key.spec


def session(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "org_id": "acme", "alias": "mobile app", "rate": 100, "per": 60, "allowance": 100, "quota_max": 5000,
        "quota_remaining": 4000, "quota_renewal_rate": 86400, "quota_renews": 1796170450, "expires": 0,
        "is_inactive": False, "tags": ["team-a"], "meta_data": {"owner": "alice"}, "apply_policies": None,
        "access_rights": {"orders-v2": {"api_id": "orders-v2", "versions": ["Default"], "allowed_urls": None,
                                        "limit": {"rate": 0, "per": 0}}},
        "basic_auth_data": {"password": "", "hash_type": ""}, "jwt_data": {"secret": ""}, "hmac_string": "",
        "date_created": "2026-12-02T00:14:10.262193077Z", "last_updated": "1796170450", "session_lifetime": 0,
    }  # fmt: skip
    return {**base, **extra}


def test_a_tyk_key_maps_to_a_gateway_key_adopting_it_by_hash() -> None:
    out = tyk.key_manifest("25fa2cf7", session(), gateway="tyk", apis={"orders-v2": KeyedApi("orders-v2", "key")},
                          names=Names())  # fmt: skip
    assert isinstance(out, Manifest) and out.name == "mobile-app"
    assert out.spec == {
        "gateway": "tyk", "apis": [{"name": "orders-v2"}], "rateLimit": {"rate": 100, "per": 60},
        "quota": {"max": 5000, "period": "day"}, "tags": ["team-a"], "metadata": {"owner": "alice"},
        "adopt": {"id": "25fa2cf7"}, "tyk": {"alias": "mobile app"},
    }  # fmt: skip
    GatewayKeySpec.model_validate(out.spec)


def test_tyk_keys_torii_cannot_represent() -> None:
    apis = {"orders-v2": KeyedApi("orders-v2", "key")}
    cases = {
        "policies": session(apply_policies=["gold"]),
        "is a basicAuth credential for API orders-v2, whose callers hold key": session(
            basic_auth_data={"password": "$2a$10$hash", "hash_type": "bcrypt"}),
        "OAuth credential (hmac_enabled, hmac_string)": session(hmac_enabled=True, hmac_string="h"),
        "OAuth credential (oauth_keys)": session(oauth_keys={"client-1": "token"}),
        "per-API limits": session(access_rights={"orders-v2": {"api_id": "orders-v2", "limit": {"rate": 5}}}),
        "does not adopt": session(access_rights={"other": {"api_id": "other"}}),
    }  # fmt: skip
    for reason, body in cases.items():
        out = tyk.key_manifest("25fa2cf7", body, gateway="tyk", apis=apis, names=Names())
        assert isinstance(out, Skipped) and reason in out.reason, (reason, out)
        assert "$2a$10$hash" not in out.reason


def test_tyk_basic_auth_users_and_jwt_consumers_map_to_typed_keys_adopted_by_hash() -> None:
    """Tyk answers a basic-auth user with its password blanked and its hash type set, a JWT consumer with its
    secret: neither credential reaches a manifest; both are adopted by their hash, with the key type."""
    apis = {"orders-v2": KeyedApi("orders", "basicAuth"), "feed": KeyedApi("feed", "jwt")}
    user = session(basic_auth_data={"password": "", "hash_type": "bcrypt"})
    out = tyk.key_manifest("5eb0", user, gateway="tyk", apis=apis, names=Names())
    assert isinstance(out, Manifest), out
    assert out.spec["type"] == "basicAuth" and out.spec["apis"] == [{"name": "orders"}]
    assert out.spec["adopt"] == {"id": "5eb0"} and "basic_auth_data" not in yaml.safe_dump(out.to_object())
    consumer = session(jwt_data={"secret": "hmac-secret-1"}, access_rights={"feed": {"api_id": "feed"}})
    out = tyk.key_manifest("77aa", consumer, gateway="tyk", apis=apis, names=Names())
    assert isinstance(out, Manifest), out
    assert out.spec["type"] == "jwt" and out.spec["apis"] == [{"name": "feed"}]
    assert "hmac-secret-1" not in yaml.safe_dump(out.to_object())
    GatewayKeySpec.model_validate(out.spec)
    # A JWT consumer of a basic-auth API (or a key given to both kinds) is listed, not half-mapped.
    mixed = session(jwt_data={"secret": "s"})
    out = tyk.key_manifest("88bb", mixed, gateway="tyk", apis=apis, names=Names())
    assert isinstance(out, Skipped) and "jwt credential for API orders-v2" in out.reason


def test_only_apis_with_per_caller_credentials_take_keys() -> None:
    assert key_type_for({"auth": "key"}) == "key" and key_type_for({"auth": "basicAuth"}) == "basicAuth"
    assert key_type_for({"auth": "jwt"}) == "jwt"
    assert key_type_for({"auth": "jwt", "jwt": {"jwksUrl": "https://idp/jwks"}}) is None  # one key for every caller
    assert key_type_for({"auth": "keyless"}) is None and key_type_for({"auth": "oauth2"}) is None


def oto_template() -> dict[str, Any]:
    return {
        "_loc": {"tenant": "default"}, "id": "service_random", "groups": ["default"], "name": "my-service",
        "env": "prod", "domain": "oto.tools", "subdomain": "myservice", "enabled": True, "root": "/",
        "targets": [{"host": "changeme.cleverapps.io", "scheme": "https", "weight": 1}], "matchingRoot": None,
        "stripPath": True, "publicPatterns": [], "privatePatterns": [], "forceHttps": True, "metadata": {},
        "buildMode": False, "clientConfig": {"retries": 1},
    }  # fmt: skip


def test_an_otoroshi_service_keeps_its_name_and_settings_beyond_the_template() -> None:
    service = {**oto_template(), "id": "svc-1", "name": "billing", "subdomain": "api", "matchingRoot": "/billing/",
               "targets": [{"host": "10.0.0.5:8080", "scheme": "http", "weight": 1}], "privatePatterns": ["/.*"],
               "forceHttps": False, "enforceSecureCommunication": False, "clientConfig": {"retries": 3},
               "metadata": {"team": "b"}}  # fmt: skip
    out = otoroshi.service_manifest(service, oto_template(), gateway="oto", domain="oto.tools", subdomain="api",
                                    group="default", names=Names())  # fmt: skip
    assert isinstance(out, Manifest)
    assert out.spec == {
        "gateway": "oto", "listenPath": "/billing/", "upstream": {"url": "http://10.0.0.5:8080/"}, "auth": "key",
        "adopt": {"id": "svc-1"}, "otoroshi": {"name": "billing", "clientConfig": {"retries": 3},
                                               "metadata": {"team": "b"}},
    }  # fmt: skip
    whole_host = otoroshi.service_manifest({**service, "matchingRoot": None}, oto_template(), gateway="oto",
                                           domain="oto.tools", subdomain="api", group="default",
                                           names=Names())  # fmt: skip
    assert isinstance(whole_host, Skipped) and "matchingRoot" in whole_host.reason


def test_an_otoroshi_key_never_carries_its_secret_into_the_manifest() -> None:
    key = {"clientId": "abc", "clientSecret": "s3cr3t", "clientName": "partner",
           "authorizedEntities": ["service_svc-1"], "enabled": True, "throttlingQuota": 100,
           "dailyQuota": 10_000_000, "monthlyQuota": 300, "rotation": {"enabled": False}, "metadata": {},
           "tags": []}  # fmt: skip
    out = otoroshi.key_manifest(key, {}, gateway="oto", apis={"svc-1": KeyedApi("billing", "key")},
                                names=Names())  # fmt: skip
    assert isinstance(out, Manifest) and "s3cr3t" not in yaml.safe_dump(out.to_object())
    assert out.spec["rateLimit"] == {"rate": 100, "per": 10} and out.spec["quota"] == {"max": 300, "period": "month"}
    group = otoroshi.key_manifest({**key, "authorizedEntities": ["group_default"]}, {}, gateway="oto", apis={},
                                  names=Names())  # fmt: skip
    assert isinstance(group, Skipped) and "group_default" in group.reason


def route_template() -> dict[str, Any]:
    """`GET /api/routes/_template` of Otoroshi 17.17 (abridged)."""
    return {
        "_loc": {"tenant": "default", "teams": ["default"]}, "id": "route_random", "name": "New route",
        "description": "A new route", "tags": [], "metadata": {}, "enabled": True, "debug_flow": False,
        "export_reporting": False, "capture": False, "groups": ["default"], "bound_listeners": [],
        "frontend": {"domains": ["newroute.oto.tools"], "strip_path": True, "exact": False, "headers": {},
                     "query": {}, "methods": []},
        "backend": {"targets": [{"id": "target_1", "hostname": "request.otoroshi.io", "port": 443, "tls": True,
                                 "weight": 1}], "root": "/", "rewrite": False,
                    "load_balancing": {"type": "RoundRobin"}, "client": {"retries": 1}},
        "backend_ref": None,
        "plugins": [{"enabled": True, "debug": False, "plugin": "cp:otoroshi.next.plugins.OverrideHost",
                     "include": [], "exclude": [], "config": {}, "bound_listeners": []}],
    }  # fmt: skip


def plugin(name: str, **config: Any) -> dict[str, Any]:
    return {"enabled": True, "plugin": f"cp:otoroshi.next.plugins.{name}", "include": [], "exclude": [],
            "config": config}  # fmt: skip


def test_an_otoroshi_route_maps_to_neutral_fields_and_keeps_the_rest() -> None:
    route = {**route_template(), "id": "billing-route", "name": "billing", "metadata": {"team": "b"},
             "frontend": {**route_template()["frontend"], "domains": ["api.oto.tools/billing/"]},
             "backend": {**route_template()["backend"], "root": "/v1",
                         "targets": [{"hostname": "10.0.0.5", "port": 8080, "tls": False, "weight": 1}],
                         "client": {"retries": 3}},
             "plugins": [plugin("OverrideHost"), plugin("ApikeyCalls"),
                         plugin("Cors", allow_origin="https://a.example", allow_methods=["GET"]),
                         plugin("AdditionalHeadersIn", headers={"X-A": "1"})]}  # fmt: skip
    out = otoroshi.route_manifest(route, route_template(), gateway="oto", host="api.oto.tools", group="default",
                                  names=Names())  # fmt: skip
    assert isinstance(out, Manifest), out
    assert out.spec == {
        "gateway": "oto", "listenPath": "/billing/", "upstream": {"url": "http://10.0.0.5:8080/v1"}, "auth": "key",
        "cors": {"allowedOrigins": ["https://a.example"], "allowedMethods": ["GET"]}, "adopt": {"id": "billing-route"},
        "otoroshi": {"name": "billing", "description": "A new route", "metadata": {"team": "b"},
                     "backend": {"client": {"retries": 3}},
                     "plugins": [plugin("AdditionalHeadersIn", headers={"X-A": "1"})]},
    }  # fmt: skip
    elsewhere = {**route, "frontend": {**route["frontend"], "domains": ["legacy.oto.tools/billing/"]}}
    kept = otoroshi.route_manifest(elsewhere, route_template(), gateway="oto", host="api.oto.tools",
                                   group="default", names=Names())  # fmt: skip
    assert isinstance(kept, Manifest) and kept.spec["otoroshi"]["frontend"] == {
        "domains": ["legacy.oto.tools/billing/"]
    }


def test_otoroshi_routes_torii_cannot_represent_are_named_with_the_reason() -> None:
    base = {**route_template(), "id": "r", "frontend": {"domains": ["api.oto.tools/r/"]}}
    cases = {
        "already managed by Torii": {**base, "metadata": {"torii.dev/name": "x", "torii.dev/namespace": "y"}},
        "Otoroshi's own admin API": {**base, "id": "admin-api-service"},
        "2 domains": {**base, "frontend": {"domains": ["api.oto.tools/a/", "api.oto.tools/b/"]}},
        "JwtVerification": {**base, "plugins": [plugin("JwtVerification")]},
        "optional API key": {**base, "plugins": [plugin("ApikeyCalls", mandatory=False)]},
        "a subset of Otoroshi's extractors": {
            **base,
            "plugins": [plugin("ApikeyCalls", extractors={"jwt": {"enabled": False}})],
        },
        "spec.upstream.tls.clientCertificateSecretName": {
            **base,
            "backend": {
                **base["backend"],
                "targets": [
                    {"hostname": "a", "port": 443, "tls": True, "tls_config": {"enabled": True, "certs": ["c1"]}}
                ],
            },
        },
    }
    for reason, route in cases.items():
        out = otoroshi.route_manifest(route, route_template(), gateway="oto", host="api.oto.tools", group="default",
                                      names=Names())  # fmt: skip
        assert isinstance(out, Skipped) and reason in out.reason, (reason, out)
    converted = {**base, "plugins": [plugin("NgLegacyApikeyCall", public_patterns=["/.*"], private_patterns=[])]}
    keyless = otoroshi.route_manifest(converted, route_template(), gateway="oto", host="api.oto.tools",
                                      group="default", names=Names())  # fmt: skip
    assert isinstance(keyless, Manifest) and "auth" not in keyless.spec  # a converted keyless service


def test_an_otoroshi_basic_auth_route_maps_to_basic_auth() -> None:
    off = {"enabled": False}
    extractors = {"basic": {"enabled": True}, "custom_headers": off, "client_id": off, "jwt": off, "oto_bearer": off}
    route = {**route_template(), "id": "b", "frontend": {"domains": ["api.oto.tools/b/"]},
             "backend": {**route_template()["backend"], "targets": [
                 {"hostname": "b", "port": 443, "tls": True, "tls_config": {"enabled": True, "trust_all": True}}]},
             "plugins": [plugin("OverrideHost"), plugin("ApikeyCalls", extractors=extractors)]}  # fmt: skip
    out = otoroshi.route_manifest(route, route_template(), gateway="oto", host="api.oto.tools", group="default",
                                  names=Names())  # fmt: skip
    assert isinstance(out, Manifest), out
    assert out.spec["auth"] == "basicAuth" and out.spec["upstream"]["tls"] == {"insecureSkipVerify": True}
    loose = {**route, "backend": {**route["backend"], "targets": [
        {"hostname": "b", "port": 443, "tls": True, "tls_config": {"enabled": True, "loose": True}}]}}  # fmt: skip
    skipped = otoroshi.route_manifest(loose, route_template(), gateway="oto", host="api.oto.tools", group="default",
                                      names=Names())  # fmt: skip
    assert isinstance(skipped, Skipped) and "without its hostname" in skipped.reason
    renamed = {**extractors, "basic": {"enabled": True, "header_name": "X-Auth"}}
    route["plugins"] = [plugin("ApikeyCalls", extractors=renamed)]
    assert isinstance(otoroshi.route_manifest(route, route_template(), gateway="oto", host="api.oto.tools",
                                              group="default", names=Names()), Skipped)  # fmt: skip


def test_an_otoroshi_key_on_a_route_maps_without_torii_probe_rule() -> None:
    probe = {"method": "*", "path": "/.*\\.torii-probe", "authorized_entity": None}
    key = {"clientId": "abc", "clientSecret": "s3cr3t", "clientName": "partner", "authorizedEntities": ["route_r1"],
           "enabled": True, "throttlingQuota": 10_000_000, "dailyQuota": 10_000_000, "monthlyQuota": 10_000_000,
           "rotation": {"enabled": False}, "metadata": {}, "tags": [],
           "restrictions": {"enabled": True, "allowLast": True, "allowed": [], "notFound": [],
                            "forbidden": [probe, {"method": "*", "path": "/admin/.*"}]}}  # fmt: skip
    billing = {"r1": KeyedApi("billing", "key")}
    out = otoroshi.key_manifest(key, {}, gateway="oto", apis=billing, names=Names(), entity="route")
    assert isinstance(out, Manifest), out
    assert out.spec["apis"] == [{"name": "billing"}]
    assert out.spec["otoroshi"]["restrictions"]["forbidden"] == [{"method": "*", "path": "/admin/.*"}]
    plain = otoroshi.key_manifest({**key, "restrictions": {"enabled": False}}, {}, gateway="oto", apis=billing,
                                  names=Names(), entity="route")  # fmt: skip
    assert isinstance(plain, Manifest) and "restrictions" not in plain.spec["otoroshi"]


def test_tyk_operator_ids_and_names() -> None:
    assert tyk_operator_api_id({"metadata": {"namespace": "default", "name": "httpbin"}}) == "ZGVmYXVsdC9odHRwYmlu"
    assert tyk_operator_api_id({"metadata": {}, "status": {"api_id": "given"}}) == "given"
    names = Names()
    assert [names.claim("Orders API v2"), names.claim("orders api v2", "other-id")] == ["orders-api-v2", "other-id"]
    assert slug("  --Hello, World!--") == "hello-world"


def test_ids_that_look_like_numbers_stay_strings() -> None:
    # kubectl reads a bare 94333e00 as a number: spec.adopt.id would be refused.
    text = dump({"id": "94333e00", "other": "0123", "name": "orders", "version": "1.10"})
    assert "'94333e00'" in text and "'0123'" in text and "'1.10'" in text and "name: orders" in text


def test_one_file_per_manifest(tmp_path: Path) -> None:
    result = ImportResult([Manifest("GatewayAPI", "orders", {"listenPath": "/o/"}, "Tyk API orders", "shop")])
    (path,) = result.write(tmp_path)
    assert path.name == "gatewayapi-orders.yaml"
    obj = yaml.safe_load(path.read_text())
    assert obj["metadata"] == {"name": "orders", "namespace": "shop",
                               "annotations": {"torii.dev/imported-from": "Tyk API orders"}}  # fmt: skip


def test_a_tyk_oauth_client_is_adopted_without_its_secret_in_the_manifest() -> None:
    body = {"client_id": "c1", "secret": "s3cr3t", "redirect_uri": "https://app/cb", "description": "Web app",
            "policy_id": "", "meta_data": {"team": "web"}}  # fmt: skip
    out = tyk.oauth_client_manifest("orders-v2", body, gateway="tyk", apis={"orders-v2": "orders"}, names=Names())
    assert isinstance(out, Manifest) and out.name == "web-app" and "s3cr3t" not in yaml.safe_dump(out.to_object())
    assert out.spec == {"gateway": "tyk", "api": "orders", "redirectUri": "https://app/cb", "description": "Web app",
                        "metadata": {"team": "web"}, "adopt": {"clientId": "c1"}}  # fmt: skip
    other = tyk.oauth_client_manifest("billing", body, gateway="tyk", apis={}, names=Names())
    assert isinstance(other, Skipped) and "oauth2 API" in other.reason


def test_objects_holding_credentials_are_listed_not_written() -> None:
    leaky = tyk_definition(notifications={"shared_secret": "hunter2", "oauth_on_keychange_url": ""},
                           global_headers={"Authorization": "Basic dXNlcjpwYXNz"})  # fmt: skip
    out = tyk.api_manifest(leaky, gateway="tyk", org_id="acme", names=Names())
    assert isinstance(out, Skipped) and "spec.tyk.notifications.shared_secret" in out.reason
    assert "spec.tyk.global_headers.Authorization" in out.reason and "hunter2" not in out.reason
    # Where a credential is sent is not a credential.
    renamed = tyk_definition(auth={"auth_header_name": "X-Secret-Token"})
    assert isinstance(tyk.api_manifest(renamed, gateway="tyk", org_id="acme", names=Names()), Manifest)


def test_tyk_operator_store_certificates_map_to_the_secrets_they_came_from() -> None:
    """tyk-operator uploads `tls.crt` + `tls.key` of the Secrets its `*_refs` name; Tyk's admin API gives back
    metadata only, so the ApiDefinition's refs are what lets the importer name them."""
    https = {"proxy": {**tyk_definition()["proxy"], "target_url": "https://billing.internal:8443/"}}
    definition = tyk_definition(**https, upstream_certificates={"*": "acme1f2e"},
                                pinned_public_keys={"billing.internal": "acme9a8b"})  # fmt: skip
    refs = {"upstream_certificate_refs": {"*": "billing-client"}, "pinned_public_keys_refs": {
        "billing.internal": "billing-server"}}  # fmt: skip
    out = tyk.api_manifest(definition, gateway="tyk", org_id="acme", names=Names(), refs=refs)
    assert isinstance(out, Manifest), out
    assert out.spec["upstream"]["tls"] == {
        "clientCertificateSecretName": "billing-client",
        "pinnedPublicKeys": [{"name": "billing-server", "key": "tls.crt"}],
    }
    assert "upstream_certificates" not in str(out.spec) and "acme1f2e" not in str(out.spec)
    # Without the ApiDefinition (a plain `torii import`), a Secret it does not name, a host it does not serve,
    # or an http upstream: listed with what to do.
    for refs_, defn in (({}, definition), ({"upstream_certificate_refs": {"other.host": "x"}}, definition),
                        (refs, tyk_definition(upstream_certificates={"*": "acme1f2e"}))):  # fmt: skip
        skipped = tyk.api_manifest(defn, gateway="tyk", org_id="acme", names=Names(), refs=refs_)
        assert isinstance(skipped, Skipped) and "clientCertificateSecretName" in skipped.reason, skipped
    pinned_elsewhere = tyk_definition(**https, pinned_public_keys={"other.host": "acme9a8b"})
    skipped = tyk.api_manifest(pinned_elsewhere, gateway="tyk", org_id="acme", names=Names(),
                               refs={"pinned_public_keys_refs": {"other.host": "billing-server"}})  # fmt: skip
    assert isinstance(skipped, Skipped) and "pinnedPublicKeys" in skipped.reason


def test_tyk_operator_client_certificates_map_only_on_the_apis_own_listener() -> None:
    refs = {"client_certificate_refs": ["partners-ca", "acme-client"]}
    shared = tyk_definition(use_mutual_tls_auth=True, client_certificates=["acme01", "acme02"])
    skipped = tyk.api_manifest(shared, gateway="tyk", org_id="acme", names=Names(), refs=refs)
    assert isinstance(skipped, Skipped) and "own listener" in skipped.reason
    own = {**shared, "protocol": "https", "listen_port": 8443, "certificates": ["acme-server"]}
    out = tyk.api_manifest(own, gateway="tyk", org_id="acme", names=Names(), refs=refs)
    assert isinstance(out, Manifest), out
    assert out.spec["mtls"] == {"allowed": [{"name": "partners-ca", "key": "tls.crt"},
                                            {"name": "acme-client", "key": "tls.crt"}]}  # fmt: skip
    assert out.spec["tyk"]["listen_port"] == 8443 and "client_certificates" not in out.spec["tyk"]
    # tyk-operator serves without a certificate whose Secret was missing: fewer ids than refs, not mapped.
    fewer = {**own, "client_certificates": ["acme01"]}
    skipped = tyk.api_manifest(fewer, gateway="tyk", org_id="acme", names=Names(), refs=refs)
    assert isinstance(skipped, Skipped) and "spec.mtls.allowed" in skipped.reason


def test_an_otoroshi_key_of_basic_auth_routes_is_a_basic_auth_gateway_key() -> None:
    key = {"clientId": "abc", "clientSecret": "s3cr3t", "clientName": "partner", "authorizedEntities": ["route_r1"],
           "enabled": True, "rotation": {"enabled": False}, "metadata": {}, "tags": []}  # fmt: skip
    apis = {"r1": KeyedApi("billing", "basicAuth"), "r2": KeyedApi("orders", "key")}
    out = otoroshi.key_manifest(key, {}, gateway="oto", apis=apis, names=Names(), entity="route")
    assert isinstance(out, Manifest), out
    assert out.spec["type"] == "basicAuth" and out.spec["adopt"] == {"id": "abc"}
    GatewayKeySpec.model_validate(out.spec)
    both = otoroshi.key_manifest({**key, "authorizedEntities": ["route_r1", "route_r2"]}, {}, gateway="oto",
                                 apis=apis, names=Names(), entity="route")  # fmt: skip
    assert isinstance(both, Skipped) and "one spec.auth" in both.reason


async def test_an_oauth_api_deleted_during_the_inventory_is_no_failure() -> None:
    """A live gateway changes while it is imported: an OAuth API listed, then deleted before its clients are read
    (Tyk answers 404), has no clients to import; the other API's clients still come."""
    listed = [tyk_definition(api_id="gone", use_oauth2=True), tyk_definition(api_id="here", use_oauth2=True)]

    def tyk_model(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/tyk/apis/":
            return httpx.Response(200, json=listed)
        if path == "/tyk/keys/":
            return httpx.Response(200, json={"keys": []})
        if path == "/tyk/oauth/clients/gone":
            return httpx.Response(404, json={"status": "error", "message": "OAuth Client ID not found"})
        if path == "/tyk/oauth/clients/here":
            return httpx.Response(200, json=[{"client_id": "c1", "api_id": "here"}])
        return httpx.Response(500, json={"message": f"unexpected {request.method} {path}"})

    driver = TykDriver("tyk", "http://tyk.test", "admin", transport=httpx.MockTransport(tyk_model))
    inventory = await driver.importer.inventory()
    assert [a["api_id"] for a in inventory.apis] == ["gone", "here"]
    assert inventory.oauth_clients == [("here", {"client_id": "c1", "api_id": "here"})]
