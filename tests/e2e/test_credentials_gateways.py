"""GatewayKey and OAuthClient end to end on the real gateways: credentials from the Secret work, and only there.

Every test needs a real gateway from the stack and is skipped (with the registry's answer) where the machine
could not build or download it.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from support.kube import gone, namespace
from support.operator import Operator, running_operator, stack_gateways
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import GROUP, VERSION, World


@pytest.fixture(scope="module")
def live(crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    gateways, secret = stack_gateways(crds, "torii-gateways-keys")
    crds.require_any()
    with running_operator(crds, admin, tmp_path_factory.mktemp("keys"), gateways=gateways, secret_data=secret,
                          namespaces=[ns], secret_name="torii-gateways-keys", drift_interval=2.0) as op:  # fmt: skip
        yield op


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def tyk_get(stack: Stack, path: str, key: str | None = None) -> httpx.Response:
    return httpx.get(f"{stack.env['TYK_URL']}{path}", headers={"Authorization": key} if key else {})


def test_tyk_key_from_secret_works_only_where_it_should(stack: Stack, world: World) -> None:
    stack.require("tyk")
    a, b, key = uid("a"), uid("b"), uid("key")
    with upstream("keyed") as up:
        for api in (a, b):
            world.apply("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "upstream": {"url": up.url},
                                            "auth": "key"})  # fmt: skip
            world.ready("GatewayAPI", api)
        world.apply("GatewayKey", key, {"gateway": "tyk", "apis": [{"name": a}], "rateLimit": {"rate": 3, "per": 60}})
        obj = world.ready("GatewayKey", key)
        data = world.secret(key)
        secret = world.core.read_namespaced_secret(key, world.ns)
        assert secret.metadata.labels["app.kubernetes.io/managed-by"] == "torii"
        assert secret.metadata.owner_references[0].uid == obj["metadata"]["uid"]
        assert data["key"] not in str(obj)  # never in status

        assert tyk_get(stack, f"/{a}/x", data["Authorization"]).status_code == 200
        assert tyk_get(stack, f"/{a}/x").status_code in (400, 401, 403)
        assert tyk_get(stack, f"/{b}/x", data["Authorization"]).status_code == 403  # key for A refused on B
        statuses = [tyk_get(stack, f"/{a}/x", data["Authorization"]).status_code for _ in range(4)]
        assert 429 in statuses

        world.delete("GatewayKey", key)
        assert tyk_get(stack, f"/{a}/x", data["Authorization"]).status_code in (401, 403)
        wait_until(lambda: gone(world.core.read_namespaced_secret, key, world.ns), timeout=60, what="Secret GC'd")


def test_tyk_quota_exhausts_shows_and_resets(stack: Stack, world: World) -> None:
    stack.require("tyk")
    api, key = uid("q"), uid("qkey")
    with upstream("quota") as up:
        world.apply("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "upstream": {"url": up.url},
                                        "auth": "key"})  # fmt: skip
        world.ready("GatewayAPI", api)
        spec: dict[str, Any] = {"gateway": "tyk", "apis": [{"name": api}], "quota": {"max": 3, "period": "day"}}
        world.apply("GatewayKey", key, spec)
        world.ready("GatewayKey", key)
        token = world.secret(key)["key"]
        assert [tyk_get(stack, f"/{api}/x", token).status_code for _ in range(3)] == [200, 200, 200]
        assert tyk_get(stack, f"/{api}/x", token).status_code == 403  # quota exhausted
        wait_until(lambda: (world.ready("GatewayKey", key)["status"].get("quota") or {}).get("remaining") == 0,
                   timeout=30, what="quota state in status")  # fmt: skip
        world.apply("GatewayKey", key, {**spec, "quotaResetGeneration": 1})
        world.ready("GatewayKey", key)
        assert tyk_get(stack, f"/{api}/x", token).status_code == 200


def test_tyk_rotation_with_grace_period(stack: Stack, world: World) -> None:
    stack.require("tyk")
    api, key = uid("rot"), uid("rkey")
    with upstream("rot") as up:
        world.apply("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "upstream": {"url": up.url},
                                        "auth": "key"})  # fmt: skip
        world.ready("GatewayAPI", api)
        world.apply("GatewayKey", key, {"gateway": "tyk", "apis": [{"name": api}]})
        world.ready("GatewayKey", key)
        old = world.secret(key)["key"]
        world.apply("GatewayKey", key, {"gateway": "tyk", "apis": [{"name": api}],
                                        "rotation": {"generation": 1, "gracePeriodSeconds": 5}})  # fmt: skip
        world.ready("GatewayKey", key)
        new = world.secret(key)["key"]
        assert new != old
        assert tyk_get(stack, f"/{api}/x", new).status_code == 200
        assert tyk_get(stack, f"/{api}/x", old).status_code == 200  # still in its grace period
        # Tyk itself expires the old key at the end of the grace period (even if Torii were down then).
        revoke_at = world.ready("GatewayKey", key)["status"]["previousKeyRevokeAt"]
        admin = httpx.Client(base_url=stack.env["TYK_URL"], headers={"X-Tyk-Authorization": stack.env["TYK_SECRET"]})
        session = admin.get(f"/tyk/keys/{old}", params={"org_id": "torii"}).json()
        assert session["expires"] == int(datetime.fromisoformat(revoke_at.replace("Z", "+00:00")).timestamp())
        wait_until(lambda: tyk_get(stack, f"/{api}/x", old).status_code in (401, 403), timeout=60,
                   what="old key refused after the grace period")  # fmt: skip
        assert tyk_get(stack, f"/{api}/x", new).status_code == 200


def test_tyk_oauth_authorization_code_flow(stack: Stack, world: World) -> None:
    stack.require("tyk")
    api, name = uid("oauth"), uid("client")
    base = stack.env["TYK_URL"]
    admin = httpx.Client(base_url=base, headers={"X-Tyk-Authorization": stack.env["TYK_SECRET"]})
    with upstream("oauth") as up:
        world.apply("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "upstream": {"url": up.url},
                                        "auth": "oauth2"})  # fmt: skip
        api_id = world.ready("GatewayAPI", api)["status"]["gatewayId"]
        world.apply("OAuthClient", name, {"gateway": "tyk", "api": api, "redirectUri": "http://127.0.0.1/cb"})
        world.ready("OAuthClient", name)
        creds = world.secret(name)
        assert creds["redirectUri"] == "http://127.0.0.1/cb"
        listed = admin.get(f"/tyk/oauth/clients/{api_id}").json()
        assert creds["clientId"] in [c["client_id"] for c in listed]

        code = admin.post(f"/{api}/tyk/oauth/authorize-client/", data={
            "response_type": "code", "client_id": creds["clientId"], "redirect_uri": creds["redirectUri"],
            "key_rules": json.dumps({"access_rights": {api_id: {"api_id": api_id, "versions": ["Default"]}}}),
        })  # fmt: skip
        assert code.status_code == 200, code.text
        token = httpx.post(f"{base}/{api}/oauth/token/", data={
            "grant_type": "authorization_code", "code": code.json()["code"], "redirect_uri": creds["redirectUri"],
        }, auth=(creds["clientId"], creds["clientSecret"]))  # fmt: skip
        assert token.status_code == 200, token.text
        tokens = token.json()
        assert (
            httpx.get(f"{base}/{api}/x", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code
            == 200
        )
        revoked = admin.delete(f"/tyk/oauth/refresh/{tokens['refresh_token']}", params={"api_id": api_id})
        assert revoked.status_code == 200
        refreshed = httpx.post(f"{base}/{api}/oauth/token/", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        }, auth=(creds["clientId"], creds["clientSecret"]))  # fmt: skip
        assert refreshed.status_code != 200

        world.delete("OAuthClient", name)
        listed = admin.get(f"/tyk/oauth/clients/{api_id}").json() or []
        assert creds["clientId"] not in [c["client_id"] for c in listed]


def test_otoroshi_keys_route_and_group_scoped(stack: Stack, world: World) -> None:
    stack.require("otoroshi")
    host = f"api.{stack.env['OTOROSHI_DOMAIN']}"
    one, two, single, grouped = uid("s1"), uid("s2"), uid("single"), uid("grouped")

    def call(path: str, data: dict[str, str] | None) -> int:
        headers = {"Host": host}
        if data:
            headers |= {"Otoroshi-Client-Id": data["clientId"], "Otoroshi-Client-Secret": data["clientSecret"]}
        return httpx.get(f"{stack.env['OTOROSHI_URL']}{path}", headers=headers).status_code

    with upstream("oto") as up:
        for api in (one, two):
            world.apply("GatewayAPI", api, {"gateway": "otoroshi", "listenPath": f"/{api}/", "auth": "key",
                                            "upstream": {"url": up.url}, "group": "shop"})  # fmt: skip
            world.ready("GatewayAPI", api)
        world.apply("GatewayKey", single, {"gateway": "otoroshi", "apis": [{"name": one}],
                                           "quota": {"max": 2, "period": "day"}})  # fmt: skip
        world.apply("GatewayKey", grouped, {"gateway": "otoroshi", "apiGroup": "shop"})
        assert world.ready("GatewayKey", single)["status"]["scope"].startswith("routes/")
        assert world.ready("GatewayKey", grouped)["status"]["scope"].startswith("groups/")
        s, g = world.secret(single), world.secret(grouped)
        assert (
            s["basicAuthHeader"]
            == "Basic " + base64.b64encode(f"{s['clientId']}:{s['clientSecret']}".encode()).decode()
        )
        assert call(f"/{one}/x", s) == 200 and call(f"/{two}/x", s) != 200
        assert call(f"/{one}/x", g) == 200 and call(f"/{two}/x", g) == 200
        assert call(f"/{one}/x", None) in (400, 401, 403)
        # The daily quota of 2 is used up by the first call above and the next one: then refused.
        later = [call(f"/{one}/x", s) for _ in range(2)]
        assert later[0] == 200 and later[1] in (403, 429)
        world.delete("GatewayKey", single)
        assert call(f"/{one}/x", s) != 200


def test_crash_safety_fifty_keys(stack: Stack, crds: Stack, admin: client.ApiClient, tmp_path: Path) -> None:
    """SIGKILL the operator while 50 keys are being created; afterwards exactly 50 work, no orphans."""
    stack.require("tyk")
    gateways, secret = stack_gateways(crds, "torii-gateways-crash")
    with namespace(admin, "crash") as ns, upstream("crash") as up:
        w = World(admin, ns, stack)
        with running_operator(crds, admin, tmp_path / "a", gateways=gateways, secret_data=secret, namespaces=[ns],
                              secret_name="torii-gateways-crash") as op:  # fmt: skip
            w.apply("GatewayAPI", "api", {"gateway": "tyk", "listenPath": f"/{ns}/", "upstream": {"url": up.url},
                                          "auth": "key"})  # fmt: skip
            api_id = w.ready("GatewayAPI", "api")["status"]["gatewayId"]
            for i in range(50):
                w.apply("GatewayKey", f"k{i:02d}", {"gateway": "tyk", "apis": [{"name": "api"}]})
            wait_until(lambda: len(w.core.list_namespaced_secret(ns).items) >= 10, timeout=60, what="some Secrets")
            os.kill(op.process.pid, signal.SIGKILL)
        with running_operator(crds, admin, tmp_path / "b", gateways=gateways, secret_data=secret, namespaces=[ns],
                              secret_name="torii-gateways-crash"):  # fmt: skip
            for i in range(50):
                w.ready("GatewayKey", f"k{i:02d}", timeout=180)
            keys = [w.secret(f"k{i:02d}")["key"] for i in range(50)]
            assert len(set(keys)) == 50
            for key in keys:
                assert tyk_get(stack, f"/{ns}/x", key).status_code == 200
            admin_http = httpx.Client(
                base_url=stack.env["TYK_URL"], headers={"X-Tyk-Authorization": stack.env["TYK_SECRET"]}
            )
            # With hash_keys on, Tyk lists every key of the gateway by hash (it ignores `filter`): attribute each
            # to its GatewayKey through the session Torii wrote.
            listed = admin_http.get("/tyk/keys/", params={"api_id": api_id}).json()["keys"]
            owners = []
            for key_hash in listed:
                session = admin_http.get(f"/tyk/keys/{key_hash}", params={"hashed": "1", "api_id": api_id})
                if session.status_code == 200:
                    owners.append(session.json().get("meta_data", {}).get("torii-object", ""))
            ours = sorted(o for o in owners if o.startswith(f"{ns}/"))
            assert ours == sorted(f"{ns}/k{i:02d}" for i in range(50))  # no orphans, no duplicates
            for i in range(50):
                w.custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "gatewaykeys", f"k{i:02d}")
            w.delete("GatewayAPI", "api")
