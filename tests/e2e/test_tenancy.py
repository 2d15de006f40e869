"""Tenant isolation on the real stack (Tyk 5.10.2, Otoroshi 17.17.0, real apiserver RBAC).

Three tenants act through kubeconfigs that allow only their own namespace's Torii kinds and Secrets: B is the
victim (an API and a key on each gateway, serving), A may adopt (the platform granted it, with credentials), C may
not and must publish under its own path prefix. Every attack tried by A and C is refused, at `kubectl apply` or
with Ready=False naming the field and the rule; afterwards B's gateway objects are unchanged and still serve
with B's credentials, no credential of B or of the gateways sits in A's or C's namespace, nothing A or C can read
names B, and Torii keeps working for everyone (a new object of B becomes Ready on each gateway)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaos.audit import Gateways, key_headers
from support.jwt import claims, hs256
from support.kube import namespace
from support.operator import running_operator, stack_gateways
from support.stack import Stack
from support.tenants import Tenant, make_tenant
from support.upstream import Upstream, upstream
from support.wait import wait_until
from support.world import GROUP, PLURALS, VERSION, World

BIG = 180  # seconds: Otoroshi objects wait for its state sync


@dataclass
class Env:
    stack: Stack
    admin: client.ApiClient
    a: Tenant
    b: Tenant
    c: Tenant
    gw: Gateways
    up: Upstream
    tag: str

    def path(self, name: str) -> str:
        return f"/{self.tag}-{name}/"


@pytest.fixture(scope="module")
def env(crds: Stack, admin: client.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    crds.require("tyk")
    crds.require("otoroshi")
    tmp = tmp_path_factory.mktemp("tenancy")
    with (
        namespace(admin, "tenant-a") as a, namespace(admin, "tenant-b") as b, namespace(admin, "tenant-c") as c,
        upstream("tenancy") as up,
    ):  # fmt: skip
        gateways, secret = stack_gateways(crds, "torii-gateways-tenancy")
        config = {
            "gateways": gateways, "driftIntervalSeconds": 2.0, "namespaces": [a, b, c],
            "tenancy": {
                "adoption": {"namespaces": [a], "credentials": True},
                "listenPaths": {"byNamespace": {c: [f"/{c}/"]}},
                "upstreams": {"allowedHosts": ["*.{namespace}.svc", "127.0.0.1"]},
            },
        }  # fmt: skip
        with running_operator(crds, admin, tmp, secret_data=secret, secret_name="torii-gateways-tenancy",
                              config_text=yaml.safe_dump(config)):  # fmt: skip
            tenants = [make_tenant(admin, crds.kubeconfig, ns, tmp) for ns in (a, b, c)]
            gw = Gateways(crds)
            yield Env(crds, admin, *tenants, gw, up, uuid.uuid4().hex[:6])
            gw.close()
            for tenant in tenants:
                World(admin, tenant.namespace).delete_all(timeout=BIG)


def refused_at_apply(tenant: Tenant, kind: str, spec: dict[str, Any], namespace_: str | None = None) -> str:
    with pytest.raises(client.ApiException) as refused:
        tenant.world.create(kind, f"x-{uuid.uuid4().hex[:6]}", spec, namespace=namespace_)
    return f"{refused.value.status} {refused.value.body}"


def secret(tenant: Tenant, name: str) -> dict[str, str]:
    data = tenant.core.read_namespaced_secret(name, tenant.namespace).data or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


@dataclass
class Victim:
    gateway: str
    api: str
    key: str
    gateway_id: str
    path: str
    definition: dict[str, Any]
    credential: dict[str, str]


def definition(env: Env, gateway: str, gateway_id: str) -> dict[str, Any]:
    if gateway == "tyk":
        got = env.gw.tyk.get(f"/tyk/apis/{gateway_id}").json()
        return {"fingerprint": got["config_data"]["torii"]["fingerprint"], "target": got["proxy"]["target_url"],
                "path": got["proxy"]["listen_path"], "owner": got["config_data"]["torii"]["namespace"]}  # fmt: skip
    got = env.gw.oto.get(f"/api/routes/{gateway_id}").json()
    return {"fingerprint": got["metadata"]["torii-fingerprint"], "targets": got["backend"]["targets"][0],
            "path": got["frontend"]["domains"], "owner": got["metadata"]["torii.dev/namespace"]}  # fmt: skip


def serves(env: Env, victim: Victim) -> bool:
    with_key = env.gw.get(victim.gateway, f"{victim.path}x", key_headers(victim.gateway, victim.credential))
    without = env.gw.get(victim.gateway, f"{victim.path}x")
    return with_key.status_code == 200 and with_key.json()["upstream"] == "tenancy" and without.status_code != 200


@pytest.fixture(scope="module")
def victims(env: Env) -> dict[str, Victim]:
    out = {}
    for gateway in ("tyk", "otoroshi"):
        api, key = f"pay-{gateway}", f"key-{gateway}"
        spec = {"gateway": gateway, "listenPath": env.path(f"pay-{gateway}"), "auth": "key",
                "upstream": {"url": env.up.url}}  # fmt: skip
        env.b.world.create("GatewayAPI", api, spec)
        env.b.world.create("GatewayKey", key, {"gateway": gateway, "apis": [{"name": api}]})
    for gateway in ("tyk", "otoroshi"):
        api, key = f"pay-{gateway}", f"key-{gateway}"
        env.b.world.ready("GatewayKey", key, timeout=BIG)
        obj = env.b.world.get("GatewayAPI", api)
        gid, path = obj["status"]["gatewayId"], obj["spec"]["listenPath"]
        out[gateway] = Victim(gateway, api, key, gid, path, definition(env, gateway, gid), secret(env.b, key))
        assert serves(env, out[gateway])
    return out


def test_attacks_are_refused_at_apply(env: Env, victims: dict[str, Victim]) -> None:
    a, b = env.a, env.b
    tyk = victims["tyk"]
    key = {"gateway": "tyk", "apis": [{"name": "mine"}]}
    cases = [
        # 1. Torii's bookkeeping through the Secret template
        ("GatewayKey", {**key, "secretTemplate": {"annotations": {"torii.dev/previous-key-id": f"../apis/{tyk.api}"}}},
         "spec.secretTemplate.annotations"),
        # an owner record forged through a key's metadata
        ("GatewayKey", {**key, "metadata": {"torii-object": f"{b.namespace}/{tyk.key}"}}, "spec.metadata"),
        # ids that would climb out of their admin path
        ("GatewayAPI", {"gateway": "tyk", "listenPath": "/x/", "upstream": {"url": env.up.url},
                        "adopt": {"id": f"../apis/{tyk.gateway_id}"}}, "spec.adopt.id"),
        ("GatewayKey", {**key, "adopt": {"id": ".."}}, "spec.adopt"),
        ("OAuthClient", {"gateway": "tyk", "api": "x", "redirectUri": "https://a/cb", "adopt": {"clientId": "a/../b"}},
         "spec.adopt.clientId"),
    ]  # fmt: skip
    for kind, spec, field in cases:
        answer = refused_at_apply(a, kind, spec)
        assert answer.startswith("422") and field in answer, answer
    # RBAC: another namespace's objects and Secrets, and the status Torii writes, are out of a tenant's reach.
    assert refused_at_apply(a, "GatewayAPI", {"listenPath": "/x/", "upstream": {"url": env.up.url}},
                            b.namespace).startswith("403")  # fmt: skip
    with pytest.raises(client.ApiException) as denied:
        a.core.read_namespaced_secret(tyk.key, b.namespace)
    assert denied.value.status == 403
    a.world.create(
        "GatewayAPI", "own", {"gateway": "tyk", "listenPath": env.path("a-own"), "upstream": {"url": env.up.url}}
    )
    with pytest.raises(client.ApiException) as denied:
        a.world.custom.patch_namespaced_custom_object_status(GROUP, VERSION, a.namespace, "gatewayapis", "own",
                                                             {"status": {"credentialDigest": "x"}})  # fmt: skip
    assert denied.value.status == 403


def test_attacks_are_refused_by_the_operator_and_the_victim_keeps_serving(env: Env, victims: dict[str, Victim]) -> None:
    a, c = env.a, env.c
    tyk, oto = victims["tyk"], victims["otoroshi"]
    up = {"url": env.up.url}
    oto_admin = env.stack.env["OTOROSHI_CLIENT_ID"]
    # (tenant, kind, name, spec, reason, text in the message)
    attacks: list[tuple[Tenant, str, str, dict[str, Any], str, str]] = [
        # 3. take over another namespace's API by adopting its id (A may adopt, C may not)
        (a, "GatewayAPI", "grab-tyk", {"gateway": "tyk", "listenPath": env.path("grab-tyk"), "upstream": up,
                                       "adopt": {"id": tyk.gateway_id}}, "OwnershipConflict", "another Torii object"),
        (a, "GatewayAPI", "grab-oto", {"gateway": "otoroshi", "listenPath": env.path("grab-oto"), "upstream": up,
                                       "adopt": {"id": oto.gateway_id}}, "OwnershipConflict", "another Torii object"),
        (c, "GatewayAPI", "grab-c", {"gateway": "tyk", "listenPath": f"/{c.namespace}/grab/", "upstream": up,
                                     "adopt": {"id": tyk.gateway_id}}, "PolicyViolation", "tenancy.adoption"),
        (a, "GatewayAPI", "grab-admin", {"gateway": "otoroshi", "listenPath": env.path("ga"), "upstream": up,
                                         "adopt": {"id": "admin-api-service"}}, "OwnershipConflict", "Otoroshi's own"),
        # 4. the gateway's own admin key, and another namespace's key
        (a, "GatewayKey", "admin-key", {"gateway": "otoroshi", "apis": [{"name": "a-oto"}],
                                        "adopt": {"id": oto_admin}}, "OwnershipConflict", "Torii itself uses"),
        (c, "GatewayKey", "admin-key-c", {"gateway": "otoroshi", "apis": [{"name": "c-oto"}],
                                          "adopt": {"id": oto_admin}}, "PolicyViolation", "tenancy.adoption"),
        (a, "GatewayKey", "their-key", {"gateway": "otoroshi", "apis": [{"name": "a-oto"}],
                                        "adopt": {"id": oto.credential["clientId"]}}, "OwnershipConflict",
         "another Torii object"),
        # policies, upstreams, escape hatches, paths
        (a, "OAuthClient", "policy", {"gateway": "tyk", "api": "a-oauth", "redirectUri": "https://a.example/cb",
                                      "policy": "platform-admin"}, "PolicyViolation", "spec.policy"),
        (a, "GatewayAPI", "metadata", {"gateway": "tyk", "listenPath": env.path("md"),
                                       "upstream": {"url": "http://169.254.169.254/latest/"}}, "PolicyViolation",
         "spec.upstream"),
        (a, "GatewayAPI", "admin-up", {"gateway": "tyk", "listenPath": env.path("au"),
                                       "upstream": {"url": env.stack.env["TYK_URL"] + "/tyk/keys/"}},
         "PolicyViolation", "admin endpoint"),
        # a JWKS the gateway itself would fetch from its own admin API
        (a, "GatewayAPI", "admin-jwks", {"gateway": "tyk", "listenPath": env.path("aj"), "upstream": up,
                                         "auth": "jwt", "jwt": {"jwksUrl": env.stack.env["TYK_URL"] + "/tyk/keys/"}},
         "PolicyViolation", "spec.jwt.jwksUrl"),
        (a, "GatewayAPI", "other-svc", {"gateway": "otoroshi", "listenPath": env.path("os"),
                                        "upstream": {"url": f"http://billing.{env.b.namespace}.svc:80/"}},
         "PolicyViolation", "upstreams.allowedHosts"),
        (a, "GatewayAPI", "virtual", {"gateway": "tyk", "listenPath": env.path("virtual"), "upstream": up,
                                      "tyk": {"version_data": {"versions": {"Default": {"extended_paths": {
                                          "virtual": [{"path": "/x", "method": "GET", "response_function_name": "f",
                                                       "function_source_type": "blob",
                                                       "function_source_uri": "ZnVuY3Rpb24gZigpe30="}]}}}}}},
         "PolicyViolation", "runs code"),
        (a, "GatewayAPI", "rewrite", {"gateway": "tyk", "listenPath": env.path("rw"), "upstream": up,
                                      "tyk": {"version_data": {"versions": {"Default": {"extended_paths": {
                                          "url_rewrites": [{"path": "/", "method": "GET", "match_pattern": ".*",
                                                            "rewrite_to": f"tyk://{tyk.gateway_id}/"}]}}}}}},
         "PolicyViolation", "changes routing"),
        (a, "GatewayAPI", "case", {"gateway": "tyk", "listenPath": env.path("case"), "upstream": up,
                                   "tyk": {"Proxy": {"Target_URL": "http://169.254.169.254/"}}},
         "PolicyViolation", "spec.tyk.Proxy.Target_URL"),
        (a, "GatewayAPI", "hosts", {"gateway": "otoroshi", "listenPath": env.path("hosts"), "upstream": up,
                                    "otoroshi": {"frontend": {"domains": [f"api.{env.stack.env['OTOROSHI_DOMAIN']}/"]},
                                                 "metadata": {"torii.dev/namespace": env.b.namespace}}},
         "PolicyViolation", "spec.otoroshi.frontend.domains"),
        (a, "GatewayAPI", "public", {"gateway": "otoroshi", "listenPath": env.path("public"), "upstream": up,
                                     "auth": "key", "otoroshi": {"plugins": [
                                         {"plugin": "cp:otoroshi.next.plugins.ApikeyCalls",
                                          "config": {"validate": False, "mandatory": False}}]}},
         "PolicyViolation", "spec.otoroshi.plugins"),
        (a, "GatewayAPI", "shadow-tyk", {"gateway": "tyk", "listenPath": f"{tyk.path}v2/", "upstream": up},
         "ListenPathConflict", "another namespace"),
        (a, "GatewayAPI", "shadow-oto", {"gateway": "otoroshi", "listenPath": f"{oto.path}v2/", "upstream": up},
         "ListenPathConflict", "another namespace"),
        (a, "GatewayAPI", "same-path", {"gateway": "tyk", "listenPath": tyk.path, "upstream": up},
         "ListenPathConflict", "another API"),
        (c, "GatewayAPI", "outside", {"gateway": "tyk", "listenPath": env.path("c-outside"), "upstream": up},
         "PolicyViolation", "tenancy.listenPaths"),
        (a, "GatewayKey", "cross-ref", {"gateway": "tyk", "apis": [{"name": tyk.api, "namespace": env.b.namespace}]},
         "InvalidReference", "another namespace"),
        (a, "GatewayKey", "rights", {"gateway": "tyk", "apis": [{"name": "a-tyk"}],
                                     "tyk": {"ACCESS_RIGHTS": {tyk.gateway_id: {"api_id": tyk.gateway_id}}}},
         "PolicyViolation", "Torii's"),
    ]  # fmt: skip
    # The tenants' own, legitimate objects the attacks refer to.
    a.world.create(
        "GatewayAPI", "a-tyk", {"gateway": "tyk", "listenPath": env.path("a-tyk"), "auth": "key", "upstream": up}
    )
    a.world.create("GatewayAPI", "a-oto",
                   {"gateway": "otoroshi", "listenPath": env.path("a-oto"), "auth": "key", "upstream": up})  # fmt: skip
    a.world.create("GatewayAPI", "a-oauth",
                   {"gateway": "tyk", "listenPath": env.path("a-oauth"), "auth": "oauth2", "upstream": up})  # fmt: skip
    c.world.create("GatewayAPI", "c-oto", {"gateway": "otoroshi", "listenPath": f"/{c.namespace}/oto/",
                                           "auth": "key", "upstream": up})  # fmt: skip
    for tenant, kind, name, spec, _, _ in attacks:
        tenant.world.create(kind, name, spec)
    for tenant, kind, name, _, reason, text in attacks:
        got = tenant.world.reason(kind, name, reason, timeout=BIG)
        assert text in got["message"], (name, got["message"])
    assert_victims_unharmed(env, victims)


def test_a_tenant_tampering_with_its_own_secret_reaches_nothing_else(env: Env, victims: dict[str, Victim]) -> None:
    a = env.a
    tyk = victims["tyk"]
    up = {"url": env.up.url}
    a.world.create(
        "GatewayAPI", "t-tyk", {"gateway": "tyk", "listenPath": env.path("t-tyk"), "auth": "key", "upstream": up}
    )
    a.world.create("GatewayAPI", "t-oto",
                   {"gateway": "otoroshi", "listenPath": env.path("t-oto"), "auth": "key", "upstream": up})  # fmt: skip
    a.world.create("GatewayKey", "tk", {"gateway": "tyk", "apis": [{"name": "t-tyk"}]})
    a.world.create("GatewayKey", "ok", {"gateway": "otoroshi", "apis": [{"name": "t-oto"}]})
    for name in ("tk", "ok"):
        a.world.ready("GatewayKey", name, timeout=BIG)
    issued_tyk, issued_oto = secret(a, "tk"), secret(a, "ok")
    # 1 + 2: Torii's old bookkeeping annotation and a path-climbing credential, written by the tenant who owns the
    # Secret; and on Otoroshi, the admin key's client id as the credential.
    a.core.patch_namespaced_secret("tk", a.namespace, {
        "metadata": {"annotations": {"torii.dev/previous-key-id": f"../apis/{tyk.gateway_id}"}},
        "stringData": {"key": f"../apis/{tyk.gateway_id}", "previousKey": f"../apis/{tyk.gateway_id}"},
    })  # fmt: skip
    a.core.patch_namespaced_secret("ok", a.namespace, {
        "stringData": {"clientId": env.stack.env["OTOROSHI_CLIENT_ID"], "clientSecret": "x" * 64},
    })  # fmt: skip
    for kind, name in (("GatewayKey", "tk"), ("GatewayKey", "ok")):  # touch the spec: a reconcile now
        a.world.custom.patch_namespaced_custom_object(GROUP, VERSION, a.namespace, PLURALS[kind], name,
                                                {"spec": {"tags": ["touched"]}})  # fmt: skip
    for name in ("tk", "ok"):
        a.world.ready("GatewayKey", name, timeout=BIG)
    fresh_tyk, fresh_oto = secret(a, "tk"), secret(a, "ok")
    assert fresh_tyk["key"] not in (issued_tyk["key"], f"../apis/{tyk.gateway_id}") and len(fresh_tyk["key"]) == 48
    assert fresh_oto["clientId"] == issued_oto["clientId"]  # the key keeps its id; a new secret
    assert fresh_oto["clientSecret"] not in (issued_oto["clientSecret"], "x" * 64)
    reasons = [e.reason for e in a.core.list_namespaced_event(a.namespace).items]
    assert "CredentialReplaced" in reasons
    # The replaced credentials work, the one Torii had issued before does not.
    assert env.gw.get("tyk", f"{env.path('t-tyk')}x", key_headers("tyk", fresh_tyk)).status_code == 200
    assert env.gw.get("tyk", f"{env.path('t-tyk')}x", key_headers("tyk", issued_tyk)).status_code in (401, 403)
    wait_until(lambda: env.gw.get("otoroshi", f"{env.path('t-oto')}x",
                                  key_headers("otoroshi", fresh_oto)).status_code == 200,
               timeout=BIG, what="the reissued Otoroshi credential works")  # fmt: skip
    assert_victims_unharmed(env, victims)


def test_another_teams_jwt_kid_brings_no_secret(env: Env, victims: dict[str, Victim]) -> None:
    """A kid is no secret: every token a client presents names it in its header. B's JWT consumer's kid (and, as
    if it had been guessed, its key hash) handed over by A, who may adopt with credentials, and by C, who may not
    adopt: neither gets the consumer's HMAC secret, and B's tokens keep working."""
    b, up = env.b, {"url": env.up.url}
    b.world.create("GatewayAPI", "pay-jwt", {"gateway": "tyk", "listenPath": env.path("pay-jwt"), "auth": "jwt",
                                            "upstream": up})  # fmt: skip
    b.world.create("GatewayKey", "signer", {"gateway": "tyk", "type": "jwt", "apis": [{"name": "pay-jwt"}]})
    key_hash = b.world.ready("GatewayKey", "signer", timeout=BIG)["status"]["keyId"]
    signer = secret(b, "signer")
    bearer = {"Authorization": f"Bearer {hs256(signer['secret'], claims(ttl=3600), kid=signer['kid'])}"}
    assert env.gw.get("tyk", f"{env.path('pay-jwt')}x", bearer).status_code == 200
    attackers = [(env.a, env.path("a-jwt"), "OwnershipConflict", "another Torii object"),
                 (env.c, f"/{env.c.namespace}/jwt/", "PolicyViolation", "tenancy.adoption")]  # fmt: skip
    for tenant, path, _, _ in attackers:
        tenant.world.create("GatewayAPI", "own-jwt", {"gateway": "tyk", "listenPath": path, "auth": "jwt",
                                                      "upstream": up})  # fmt: skip
        tenant.core.create_namespaced_secret(tenant.namespace, client.V1Secret(
            metadata=client.V1ObjectMeta(name="leaked-kid"), string_data={"kid": signer["kid"]}))  # fmt: skip
        tenant.world.create("GatewayKey", "their-kid", {
            "gateway": "tyk", "type": "jwt", "apis": [{"name": "own-jwt"}],
            "adopt": {"id": key_hash, "credentialSecretRef": {"name": "leaked-kid", "key": "kid"}}})  # fmt: skip
    for tenant, _, reason, text in attackers:
        got = tenant.world.reason("GatewayKey", "their-kid", reason, timeout=BIG)
        assert text in got["message"] and signer["secret"] not in json.dumps(got), got["message"]
        for item in tenant.core.list_namespaced_secret(tenant.namespace).items:
            values = {base64.b64decode(v).decode() for v in (item.data or {}).values()}
            assert signer["secret"] not in values, f"B's HMAC secret in {tenant.namespace}/{item.metadata.name}"
    # B's consumer is untouched: the same key, Ready, its tokens accepted.
    assert b.world.get("GatewayKey", "signer")["status"]["keyId"] == key_hash
    assert World.condition(b.world.get("GatewayKey", "signer"))["status"] == "True"
    assert secret(b, "signer") == signer
    assert env.gw.get("tyk", f"{env.path('pay-jwt')}x", bearer).status_code == 200
    assert_victims_unharmed(env, victims)


def assert_victims_unharmed(env: Env, victims: dict[str, Victim]) -> None:
    """B's gateway objects unchanged and serving B's credentials; the gateways' admin credentials still work; no
    credential of B or of a gateway in A's or C's namespace; nothing Torii tells A or C names B."""
    for victim in victims.values():
        assert definition(env, victim.gateway, victim.gateway_id) == victim.definition
        assert serves(env, victim)
    assert env.gw.tyk.get("/tyk/apis/").status_code == 200
    assert env.gw.oto.get("/api/groups").status_code == 200  # the admin key was not moved or changed
    secrets_of_b = {v for victim in victims.values() for v in victim.credential.values()}
    forbidden = secrets_of_b | {env.stack.env["TYK_SECRET"], env.stack.env["OTOROSHI_CLIENT_SECRET"]}
    names_of_b = {env.b.namespace, *(v.gateway_id for v in victims.values())}
    names_of_b |= {str(key_status(env, v)["keyId"]) for v in victims.values()}
    core = client.CoreV1Api(env.admin)
    for tenant in (env.a, env.c):
        for item in core.list_namespaced_secret(tenant.namespace).items:
            values = {base64.b64decode(v).decode() for v in (item.data or {}).values()}
            assert not values & forbidden, f"a credential of another namespace or gateway in {item.metadata.name}"
        for name, own, told in what_torii_told(tenant):
            leaked = {n for n in names_of_b if n in told and n not in own}
            assert not leaked, f"{tenant.namespace}/{name} was told {leaked}: {told[:500]}"


def key_status(env: Env, victim: Victim) -> dict[str, Any]:
    obj = env.b.world.get("GatewayKey", victim.key)
    return dict(obj["status"])


def what_torii_told(tenant: Tenant) -> Iterator[tuple[str, str, str]]:
    """(object, its spec as the tenant wrote it, its status and Events as Torii wrote them) of every object."""
    events = tenant.core.list_namespaced_event(tenant.namespace).items
    for kind in PLURALS:
        for item in tenant.world.list(kind):
            name = item["metadata"]["name"]
            told = [e.message or "" for e in events if e.involved_object.name == name]
            yield name, json.dumps(item.get("spec", {})), json.dumps(item.get("status", {})) + " ".join(told)


def test_torii_keeps_working_for_everyone(env: Env, victims: dict[str, Victim]) -> None:
    b = env.b
    for gateway in ("tyk", "otoroshi"):
        api = {"gateway": gateway, "listenPath": env.path(f"after-{gateway}"), "auth": "key",
               "upstream": {"url": env.up.url}}  # fmt: skip
        b.world.create("GatewayAPI", f"after-{gateway}", api)
        b.world.create("GatewayKey", f"after-key-{gateway}", {"gateway": gateway,
                                                              "apis": [{"name": f"after-{gateway}"}]})  # fmt: skip
    for gateway in ("tyk", "otoroshi"):
        b.world.ready("GatewayKey", f"after-key-{gateway}", timeout=BIG)
        data = secret(b, f"after-key-{gateway}")
        assert env.gw.get(gateway, f"{env.path(f'after-{gateway}')}x", key_headers(gateway, data)).status_code == 200
    assert_victims_unharmed(env, victims)


def test_deleting_the_attackers_objects_leaves_the_victim(env: Env, victims: dict[str, Victim]) -> None:
    # Both attackers' namespaces at once (each waits out Tyk's session cache for its keys).
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda t: World(env.admin, t.namespace).delete_all(timeout=BIG), (env.a, env.c)))
    assert_victims_unharmed(env, victims)
