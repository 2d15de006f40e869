"""Adopting what a gateway already holds, on the real stack (`torii import`, `spec.adopt`).

Per gateway, 50 key-protected APIs (Otoroshi: routes) and 50 keys are created the way a team without Torii did
it: through the admin API. `torii import` turns them into manifests; `kubectl apply --dry-run=server` accepts
every file it writes; applying them makes Torii manage the same objects in place. All along, a client loop
sends traffic with the original credentials through the gateway: not one request may fail. Afterwards Torii's
drift check makes no gateway write, Tyk keys stay known by their hash (Otoroshi keys land in their Secret),
`deletionPolicy: Orphan` leaves the gateway object serving, and `Delete` revokes an adopted key.

The migration from tyk-operator v0.18.0: 20 ApiDefinitions served by the real tyk-operator; it is stopped,
`torii import --from-tyk-operator` writes GatewayAPIs adopting the same Tyk APIs, they are applied, the
ApiDefinitions are released, and the traffic loop never sees an error.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from support.jwt import claims, hs256
from support.kube import gone, kubectl
from support.metrics import assert_no_writes_over_two_drift_passes
from support.operator import (
    SINGLE_TEAM,
    Operator,
    free_port,
    release_all,
    running_operator,
    stack_gateways,
    torii_import,
)
from support.stack import Stack, required_gateways
from support.tls import https_front, make_ca_and_server_cert, make_client_cert, mtls_upstream
from support.traffic import Traffic
from support.tyk_operator import GROUP, PLURAL, VERSION, api_definition, run_tyk_operator
from support.upstream import upstream
from support.wait import wait_until
from support.world import World
from torii.gateways.tyk_certs import pin_prefix
from torii.importer.manifests import dump
from torii.pem import first_certificate_der

COUNT = 50
MIGRATED = 20
DRIFT = 2.0
RUN = uuid.uuid4().hex[:6]  # names and paths of this run: the gateways are shared with the other modules


@pytest.fixture(scope="module")
def live(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[Operator]:
    crds.require_any()
    gateways, secret = stack_gateways(crds, "torii-gateways-adoption")
    # Adopting a gateway's estate is the platform team's migration: adoption (with credentials) and the
    # imported escape hatches are granted (tenancy singleTeam).
    with running_operator(crds, admin, tmp_path_factory.mktemp("adoption"), gateways=gateways, secret_data=secret,
                          namespaces=[ns], drift_interval=DRIFT, secret_name="torii-gateways-adoption",
                          metrics_port=metrics_port, tenancy=SINGLE_TEAM) as op:  # fmt: skip
        yield op
        release_all(admin, ns)


# ------------------------------------------------------------------------------------------------ helpers


def apply_dir(directory: Path, *, dry_run: bool = False) -> None:
    args = ["apply", "-f", str(directory)] + (["--dry-run=server"] if dry_run else [])
    done = kubectl(*args)
    assert done.returncode == 0, done.stderr


def ours(directory: Path, marker: str) -> Path:
    """The manifests of this test's objects (an import lists everything on the shared gateway)."""
    picked = directory.parent / f"{directory.name}-ours"
    picked.mkdir()
    for path in sorted(directory.glob("*.yaml")):
        if marker in path.name:
            path.rename(picked / path.name)
    return picked


def serving(targets: list[tuple[str, dict[str, str]]]) -> Traffic:
    """The client loop over `targets`, started once every one of them is served (the objects made by hand)."""
    wait_until(lambda: all(httpx.get(u, headers=h).status_code == 200 for u, h in targets), timeout=90,
               what="hand-made objects serving their clients")  # fmt: skip
    return Traffic(targets).start()


def import_ours(live: Operator, gateway: str, world: World, out: Path, marker: str) -> tuple[str, Path]:
    """`torii import` of the whole gateway, every file dry-run by the apiserver (not only this test's); what it
    said, and the directory of this test's manifests."""
    said = torii_import(live, "--gateway", gateway, "--namespace", world.ns, "-o", str(out))
    apply_dir(out, dry_run=True)
    return said, ours(out, marker)


# Requests per second a hand-made consumer of the switch tests may make. The traffic loop is unpaced, and Tyk's
# default rate limiter (DRL) gives each gateway node a share of a key's rate (the suite runs three on one Redis):
# at 1000/s the loop on a quiet CI machine went past one node's share, and Tyk answered 429 (165 of 4077 requests).
CONSUMER_RATE = 100_000


def assert_through_the_switch(traffic: Traffic, applied_at: float, ready_at: float) -> None:
    """No request failed, and the client loop ran from before the apply until after everything was Ready."""
    assert traffic.failures == [], f"{len(traffic.failures)} of {traffic.total}: {traffic.failures[:5]}"
    assert traffic.first_at < applied_at and traffic.last_at > ready_at


def all_ready(world: World, kind: str, names: list[str], timeout: float = 240) -> dict[str, dict[str, Any]]:
    def check() -> dict[str, dict[str, Any]] | None:
        items = {i["metadata"]["name"]: i for i in world.list(kind) if i["metadata"]["name"] in names}
        ready = {
            n: i for n, i in items.items()
            if any(c["type"] == "Ready" and c["status"] == "True"
                   and c.get("observedGeneration") == i["metadata"]["generation"]
                   for c in i.get("status", {}).get("conditions", []))
        }  # fmt: skip
        return ready if len(ready) == len(names) else None

    return wait_until(check, timeout=timeout, what=f"{len(names)} {kind}s Ready")


KINDS = ("OAuthClient", "GatewayKey", "GatewayAPI")  # dependents first


def objects_in(world: World) -> int:
    return sum(len(world.list(kind)) for kind in KINDS)


def delete_everything(world: World) -> None:
    """Delete every Torii object of the namespace at once (the operator removes what they manage from the
    gateways), and wait until all are gone."""
    for kind in KINDS:
        for item in world.list(kind):
            world.delete(kind, item["metadata"]["name"], wait=False)
    wait_until(lambda: objects_in(world) == 0, timeout=180, what="every Torii object deleted")


def orphan(world: World, *objects: tuple[str, str]) -> None:
    """Delete (kind, name) objects with `deletionPolicy: Orphan`, waiting for each to be gone."""
    for kind, name in objects:
        world.patch(kind, name, {"deletionPolicy": "Orphan"})
        world.delete(kind, name)


def manifest(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


# ---------------------------------------------------------------------------------------------------- Tyk


def tyk_admin(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.env["TYK_URL"], headers={"X-Tyk-Authorization": stack.env["TYK_SECRET"]}, timeout=30
    )


def tyk_api(api_id: str, name: str, org: str, path: str, target: str, header: str) -> dict[str, Any]:
    """A key-protected classic API definition, as a script or the Tyk docs would write it."""
    return {
        "api_id": api_id, "name": name, "org_id": org, "active": True, "use_standard_auth": True,
        "auth": {"auth_header_name": header}, "auth_configs": {"authToken": {"auth_header_name": header}},
        "proxy": {"listen_path": path, "target_url": target, "strip_listen_path": True},
        "version_data": {"not_versioned": True, "versions": {"Default": {"name": "Default"}}},
    }  # fmt: skip


def test_tyk_apis_and_keys_adopted_without_a_failed_request(
    world: World, live: Operator, crds: Stack, metrics_port: int, tmp_path: Path
) -> None:
    crds.require("tyk")
    org = f"acme{RUN}"  # not the connection's org: adoption must keep it (Tyk looks keys up per org)
    marker = f"adopt-{RUN}-tyk"
    with upstream("adopt-tyk") as up, tyk_admin(crds) as tyk:
        ids = [f"{marker}-{i}" for i in range(COUNT)]
        headers = ["Authorization" if i % 2 else "X-Api-Key" for i in range(COUNT)]
        for i, api_id in enumerate(ids):
            path = f"/{marker}/{i}/"
            tyk.post("/tyk/apis", json=tyk_api(api_id, f"{marker} api {i}", org, path, up.url, headers[i]))
        # One API Torii cannot represent: it must be listed, with the reason, and left alone.
        jwt = {**tyk_api(f"{marker}-jwt", f"{marker} jwt", org, f"/{marker}/jwt/", up.url, "Authorization"),
               "use_standard_auth": False, "enable_jwt": True, "jwt_policy_field_name": "plan"}  # fmt: skip
        tyk.post("/tyk/apis", json=jwt)
        # An OAuth-protected API with a client an application already uses.
        oauth_id = f"{marker}-oauth"
        oauth = {**tyk_api(oauth_id, f"{marker} oauth", org, f"/{marker}/oauth/", up.url, "Authorization"),
                 "use_standard_auth": False, "use_oauth2": True,
                 "oauth_meta": {"allowed_access_types": ["authorization_code"], "allowed_authorize_types": ["code"],
                                "auth_login_redirect": ""}}  # fmt: skip
        tyk.post("/tyk/apis", json=oauth)
        assert tyk.get("/tyk/reload/", params={"block": "true"}).status_code == 200
        app = tyk.post(
            "/tyk/oauth/clients/create",
            json={"api_id": oauth_id, "redirect_uri": "http://127.0.0.1/cb", "description": f"{marker} web app"},
        ).json()
        assert app.get("client_id") and app.get("secret"), app
        keys, hashes = [], []
        for i, api_id in enumerate(ids):
            created = tyk.post("/tyk/keys/create", json={
                "org_id": org, "alias": f"{marker}-key-{i}", "rate": 1000, "per": 60, "quota_max": -1,
                "access_rights": {api_id: {"api_id": api_id, "api_name": api_id, "versions": ["Default"]}},
            }).json()  # fmt: skip
            keys.append(created["key"])
            hashes.append(created["key_hash"])
        base = crds.env["TYK_URL"]
        traffic = serving([(f"{base}/{marker}/{i}/", {headers[i]: keys[i]}) for i in range(COUNT)])
        try:
            said, mine = import_ours(live, "tyk", world, tmp_path / "tyk", marker)
            assert f"Tyk API {marker}-jwt" in said and "jwt_policy_field_name" in said
            assert len(list(mine.glob("gatewayapi-*"))) == COUNT + 1  # and the OAuth API
            assert len(list(mine.glob("gatewaykey-*"))) == COUNT and len(list(mine.glob("oauthclient-*"))) == 1
            assert app["secret"] not in "".join(p.read_text() for p in mine.glob("*.yaml"))
            first = manifest(mine / f"gatewayapi-{marker}-api-0.yaml")
            assert first["spec"]["adopt"] == {"id": ids[0], "orgId": org}
            assert first["spec"]["tyk"]["auth"] == {"auth_header_name": "X-Api-Key"}  # what differs, nothing else
            # Key 0's owner hands its credential over, so Torii can deliver it in a Secret.
            world.core.create_namespaced_secret(world.ns, client.V1Secret(
                metadata=client.V1ObjectMeta(name=f"{marker}-handed-over"), string_data={"key": keys[0]}))  # fmt: skip
            key0 = mine / f"gatewaykey-{marker}-key-0.yaml"
            handed = manifest(key0)
            handed["spec"]["adopt"]["credentialSecretRef"] = {"name": f"{marker}-handed-over"}
            key0.write_text(dump(handed))  # PyYAML alone writes a key hash such as 94333e00 bare: a number to kubectl
            applied_at = time.monotonic()
            apply_dir(mine)
            apis = all_ready(world, "GatewayAPI", [f"{marker}-api-{i}" for i in range(COUNT)])
            gkeys = all_ready(world, "GatewayKey", [f"{marker}-key-{i}" for i in range(COUNT)])
            all_ready(world, "OAuthClient", [f"{marker}-web-app"])
            ready_at = time.monotonic()
            assert_no_writes_over_two_drift_passes(metrics_port, objects_in(world))
        finally:
            traffic.stop()
        assert_through_the_switch(traffic, applied_at, ready_at)

        for i, api_id in enumerate(ids):
            obj = apis[f"{marker}-api-{i}"]
            assert obj["status"]["gatewayId"] == api_id
            served = tyk.get(f"/tyk/apis/{api_id}").json()
            assert served["org_id"] == org and served["proxy"]["listen_path"] == f"/{marker}/{i}/"
            assert served["config_data"]["torii"]["name"] == f"{marker}-api-{i}"  # managed by Torii now
        for i in range(COUNT):
            status = gkeys[f"{marker}-key-{i}"]["status"]
            assert status["keyId"] == hashes[i], (i, status)
        assert world.secret(f"{marker}-key-0")["key"] == keys[0]
        assert "cannot put it in a Secret" in World.condition(gkeys[f"{marker}-key-1"])["message"]
        assert gone(world.core.read_namespaced_secret, f"{marker}-key-1", world.ns)
        assert tyk.get(f"/tyk/apis/{marker}-jwt").status_code == 200  # not imported: untouched
        # The OAuth client's existing id and secret are in its Secret, and still get tokens.
        web = world.secret(f"{marker}-web-app")
        assert (web["clientId"], web["clientSecret"]) == (app["client_id"], app["secret"])
        code = tyk.post(f"/{marker}/oauth/tyk/oauth/authorize-client/", data={
            "response_type": "code", "client_id": web["clientId"], "redirect_uri": "http://127.0.0.1/cb",
            "key_rules": json.dumps({"access_rights": {oauth_id: {"api_id": oauth_id, "versions": ["Default"]}}}),
        })  # fmt: skip
        assert code.status_code == 200, code.text
        token = httpx.post(f"{base}/{marker}/oauth/oauth/token/", data={
            "grant_type": "authorization_code", "code": code.json()["code"], "redirect_uri": "http://127.0.0.1/cb",
        }, auth=(web["clientId"], web["clientSecret"]))  # fmt: skip
        assert token.status_code == 200, token.text

        # Drift correction covers adopted objects: deleted by hand, restored under the same id, its key works.
        tyk.delete(f"/tyk/apis/{ids[4]}")
        tyk.get("/tyk/reload/", params={"block": "true"})
        wait_until(lambda: httpx.get(f"{base}/{marker}/4/", headers={headers[4]: keys[4]}).status_code == 200,
                   timeout=60, what="adopted API restored by the drift check")  # fmt: skip
        assert tyk.get(f"/tyk/apis/{ids[4]}").json()["org_id"] == org
        # Orphan: the Kubernetes objects go, the gateway keeps serving the API with its key.
        orphan(world, ("GatewayKey", f"{marker}-key-1"), ("GatewayAPI", f"{marker}-api-1"))
        assert tyk.get(f"/tyk/apis/{ids[1]}").status_code == 200
        assert httpx.get(f"{base}/{marker}/1/", headers={headers[1]: keys[1]}).status_code == 200
        # Rotation on request: a key Torii can deliver replaces the one it only knew by hash.
        world.patch("GatewayKey", f"{marker}-key-3", {"rotation": {"generation": 1, "gracePeriodSeconds": 0}})
        rotated = wait_until(lambda: world.secret(f"{marker}-key-3").get("key")
                             if not gone(world.core.read_namespaced_secret, f"{marker}-key-3", world.ns) else None,
                             timeout=60, what="rotated key in its Secret")  # fmt: skip
        wait_until(lambda: httpx.get(f"{base}/{marker}/3/", headers={headers[3]: keys[3]}).status_code in (401, 403),
                   timeout=60, what="the adopted key revoked after its grace period")  # fmt: skip
        assert httpx.get(f"{base}/{marker}/3/", headers={headers[3]: rotated}).status_code == 200
        # Delete: an adopted key known only by its hash is revoked.
        world.delete("GatewayKey", f"{marker}-key-2")
        assert httpx.get(f"{base}/{marker}/2/", headers={headers[2]: keys[2]}).status_code in (401, 403)
        assert tyk.get(f"/tyk/keys/{hashes[2]}", params={"hashed": "1"}).status_code == 404

        delete_everything(world)
        assert tyk.get(f"/tyk/apis/{ids[0]}").status_code == 404  # Delete (the default): gone from the gateway
        for api_id in (ids[1], f"{marker}-jwt"):  # the objects Torii was told to leave, or never managed
            tyk.delete(f"/tyk/apis/{api_id}")
        tyk.delete(f"/tyk/keys/{hashes[1]}", params={"hashed": "1"})
        tyk.get("/tyk/reload/", params={"block": "true"})


def test_tyk_basic_auth_users_and_jwt_consumers_adopted_without_a_failed_request(
    world: World, live: Operator, crds: Stack, tmp_path: Path
) -> None:
    """A basic-auth user and two JWT consumers made on Tyk by hand: imported as GatewayKeys of their type,
    adopted by hash under a client loop presenting their credentials (0 failed requests). One consumer's kid,
    handed over, brings its secret into a Secret; the other consumer and the user are managed by id and keep
    what Tyk holds for them (the secret, the password Tyk never returns) through a change of their limits;
    rotation gives the user a password Torii delivers; deletion revokes."""
    crds.require("tyk")
    org, marker = f"users{RUN}", f"adopt-{RUN}-users"
    basic_id, jwt_id = f"{marker}-basic", f"{marker}-jwt"
    user, kid, other = f"{marker}-user", f"{marker}-kid", f"{marker}-other"
    password, secret, other_secret = ("pw-" + uuid.uuid4().hex, "jwt-" + uuid.uuid4().hex,
                                      "jwt-" + uuid.uuid4().hex)  # fmt: skip
    base = crds.env["TYK_URL"]
    with upstream("adopt-users") as up, tyk_admin(crds) as tyk:
        basic = {**tyk_api(basic_id, f"{marker} basic", org, f"/{marker}/basic/", up.url, "Authorization"),
                 "use_standard_auth": False, "use_basic_auth": True}  # fmt: skip
        jwt = {**tyk_api(jwt_id, f"{marker} jwt", org, f"/{marker}/jwt/", up.url, "Authorization"),
               "use_standard_auth": False, "enable_jwt": True, "jwt_signing_method": "hmac"}  # fmt: skip
        for body in (basic, jwt):
            assert tyk.post("/tyk/apis", json=body).status_code == 200
        assert tyk.get("/tyk/reload/", params={"block": "true"}).status_code == 200

        def consumer(api_id: str, name: str, extra: dict[str, Any]) -> str:
            made = tyk.post(f"/tyk/keys/{name}", params={"org_id": org}, json={
                "org_id": org, "alias": name, "rate": CONSUMER_RATE, "per": 1, "quota_max": -1,
                "access_rights": {api_id: {"api_id": api_id, "api_name": api_id, "versions": ["Default"]}}, **extra,
            })  # fmt: skip
            assert made.status_code == 200 and made.json().get("key_hash"), made.text
            return str(made.json()["key_hash"])

        user_hash = consumer(basic_id, user, {"basic_auth_data": {"password": password}})
        kid_hash = consumer(jwt_id, kid, {"jwt_data": {"secret": secret}})
        other_hash = consumer(jwt_id, other, {"jwt_data": {"secret": other_secret}})
        basic_url, jwt_url = f"{base}/{marker}/basic/x", f"{base}/{marker}/jwt/x"
        auth = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        bearer = {"Authorization": f"Bearer {hs256(secret, claims(ttl=3600), kid=kid)}"}
        other_bearer = {"Authorization": f"Bearer {hs256(other_secret, claims(ttl=3600), kid=other)}"}
        traffic = serving([(basic_url, auth), (jwt_url, bearer), (jwt_url, other_bearer)])
        try:
            said, mine = import_ours(live, "tyk", world, tmp_path / "users", marker)
            files = {p.name: manifest(p) for p in mine.glob("*.yaml")}
            expected = [f"gatewayapi-{basic_id}.yaml", f"gatewayapi-{jwt_id}.yaml", f"gatewaykey-{user}.yaml",
                        f"gatewaykey-{kid}.yaml", f"gatewaykey-{other}.yaml"]  # fmt: skip
            assert sorted(files) == sorted(expected), (files, said)
            user_key, kid_key = files[f"gatewaykey-{user}.yaml"], files[f"gatewaykey-{kid}.yaml"]
            assert (user_key["spec"]["type"], user_key["spec"]["adopt"]) == ("basicAuth", {"id": user_hash})
            assert (kid_key["spec"]["type"], kid_key["spec"]["adopt"]) == ("jwt", {"id": kid_hash})
            assert not any(c in (mine / f).read_text() for f in files for c in (password, secret, other_secret))
            # The consumer's owner hands its kid over: Torii checks it names that key, and reads its secret.
            world.core.create_namespaced_secret(world.ns, client.V1Secret(
                metadata=client.V1ObjectMeta(name=f"{marker}-handed-over"), string_data={"kid": kid}))  # fmt: skip
            kid_key["spec"]["adopt"]["credentialSecretRef"] = {"name": f"{marker}-handed-over", "key": "kid"}
            (mine / f"gatewaykey-{kid}.yaml").write_text(dump(kid_key))
            applied_at = time.monotonic()
            apply_dir(mine)
            all_ready(world, "GatewayAPI", [f"{marker}-basic", f"{marker}-jwt"])
            keys = all_ready(world, "GatewayKey", [user, kid, other])
            ready_at = time.monotonic()
            # New limits for all: Torii rewrites the sessions; the password and the secrets stay.
            for name in (user, kid, other):
                world.patch("GatewayKey", name, {"rateLimit": {"rate": 500, "per": 1}})
            for name in (user, kid, other):
                world.ready("GatewayKey", name)
            for key_hash in (user_hash, kid_hash, other_hash):
                wait_until(lambda h=key_hash: tyk.get(f"/tyk/keys/{h}", params={"hashed": "1"}).json().get("rate")
                           == 500, timeout=30, what=f"key {key_hash}'s new rate on Tyk")  # fmt: skip
            changed_at = time.monotonic()
            wait_until(lambda: traffic.last_at > changed_at, timeout=30, what="traffic after the change")
        finally:
            traffic.stop()
        assert_through_the_switch(traffic, applied_at, ready_at)
        assert keys[user]["status"]["keyId"] == user_hash and keys[kid]["status"]["keyId"] == kid_hash
        assert "Tyk never returns a password" in World.condition(keys[user])["message"]
        assert "credentialSecretRef to the consumer's kid" in World.condition(keys[other])["message"]
        assert gone(world.core.read_namespaced_secret, other, world.ns)
        assert gone(world.core.read_namespaced_secret, user, world.ns)
        delivered = world.secret(kid)
        assert (delivered["kid"], delivered["secret"]) == (kid, secret)

        # Rotation: a user and password Torii delivers; the adopted user stops working after its grace period.
        world.patch("GatewayKey", user, {"rotation": {"generation": 1, "gracePeriodSeconds": 0}})
        # The Secret is written before the gateway has the user (a crash never leaves one nobody can see): Ready
        # at the new generation says the gateway serves it.
        rotated = world.ready("GatewayKey", user)
        assert rotated["status"]["keyId"] != user_hash
        fresh = world.secret(user)
        assert httpx.get(basic_url, headers={"Authorization": fresh["Authorization"]}).status_code == 200
        wait_until(lambda: httpx.get(basic_url, headers=auth).status_code in (401, 403), timeout=60,
                   what="the adopted user refused after its grace period")  # fmt: skip
        # Deletion revokes the consumer: its tokens are refused, its key is gone.
        world.delete("GatewayKey", kid)
        assert httpx.get(jwt_url, headers=bearer).status_code in (401, 403)
        assert tyk.get(f"/tyk/keys/{kid_hash}", params={"hashed": "1"}).status_code == 404
        delete_everything(world)
        assert all(tyk.get(f"/tyk/apis/{i}").status_code == 404 for i in (basic_id, jwt_id))


# ----------------------------------------------------------------------------------------------- Otoroshi


def oto_admin(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.env["OTOROSHI_URL"], auth=(stack.env["OTOROSHI_CLIENT_ID"], stack.env["OTOROSHI_CLIENT_SECRET"]),
        headers={"Host": stack.env["OTOROSHI_API_HOST"]}, timeout=30,
    )  # fmt: skip


def test_otoroshi_routes_and_keys_adopted_without_a_failed_request(
    world: World, live: Operator, crds: Stack, metrics_port: int, tmp_path: Path
) -> None:
    crds.require("otoroshi")
    marker = f"adopt-{RUN}-oto"
    # Route 0 answers on a host of its own, the others on the connection's public host.
    hosts = [f"{f'legacy-{RUN}' if i == 0 else 'api'}.{crds.env['OTOROSHI_DOMAIN']}" for i in range(COUNT)]
    with upstream("adopt-oto") as up, oto_admin(crds) as oto:
        template = oto.get("/api/routes/_template").json()
        ids = [f"{marker}-{i}" for i in range(COUNT)]
        # The last route takes basic auth only (its key is a basic-auth user): the others every extractor.
        off = {"enabled": False}
        basic_only = {"extractors": {"basic": {"enabled": True}, "custom_headers": off, "client_id": off, "jwt": off,
                                     "oto_bearer": off}}  # fmt: skip
        last = COUNT - 1
        for i, route_id in enumerate(ids):
            route = {**template, "id": route_id, "name": f"{marker} api {i}",
                     "frontend": {**template["frontend"], "domains": [f"{hosts[i]}/{marker}/{i}/"]},
                     "backend": {**template["backend"], "root": "/",
                                 "targets": [{"hostname": "127.0.0.1", "port": up.port, "tls": False}]},
                     "plugins": [*template["plugins"], {"plugin": "cp:otoroshi.next.plugins.ApikeyCalls",
                                                        "config": basic_only if i == last else {}}]}  # fmt: skip
            assert oto.post("/api/routes", json=route).status_code in (200, 201)
        creds = []
        for i, route_id in enumerate(ids):
            key = oto.post(f"/api/routes/{route_id}/apikeys",
                           json={"clientName": f"{marker}-key-{i}", "throttlingQuota": 1000}).json()  # fmt: skip
            creds.append((key["clientId"], key["clientSecret"]))
        # A key Torii cannot represent (authorized for a whole service group).
        group_key = oto.post("/api/groups/default/apikeys", json={"clientName": f"{marker}-group"}).json()
        base = crds.env["OTOROSHI_URL"]
        traffic = serving([(f"{base}/{marker}/{i}/", {"Host": hosts[i], "Authorization": basic(*creds[i])})
                           for i in range(COUNT)])  # fmt: skip
        try:
            said, mine = import_ours(live, "otoroshi", world, tmp_path / "oto", marker)
            assert f"Otoroshi apikey {group_key['clientId']}" in said and "group_default" in said
            assert len(list(mine.glob("gatewayapi-*"))) == COUNT and len(list(mine.glob("gatewaykey-*"))) == COUNT
            assert "clientSecret" not in "".join(p.read_text() for p in mine.glob("*.yaml"))
            own_host = manifest(mine / f"gatewayapi-{marker}-api-0.yaml")["spec"]["otoroshi"]["frontend"]["domains"]
            assert own_host == [f"{hosts[0]}/{marker}/0/"]
            assert manifest(mine / f"gatewayapi-{marker}-api-{last}.yaml")["spec"]["auth"] == "basicAuth"
            assert manifest(mine / f"gatewaykey-{marker}-key-{last}.yaml")["spec"]["type"] == "basicAuth"
            applied_at = time.monotonic()
            apply_dir(mine)
            apis = all_ready(world, "GatewayAPI", [f"{marker}-api-{i}" for i in range(COUNT)])
            all_ready(world, "GatewayKey", [f"{marker}-key-{i}" for i in range(COUNT)])
            ready_at = time.monotonic()
            assert_no_writes_over_two_drift_passes(metrics_port, objects_in(world))
        finally:
            traffic.stop()
        assert_through_the_switch(traffic, applied_at, ready_at)

        for i, route_id in enumerate(ids):
            assert apis[f"{marker}-api-{i}"]["status"]["gatewayId"] == route_id
            stored = oto.get(f"/api/routes/{route_id}").json()
            assert stored["name"] == f"{marker} api {i}"
            assert stored["frontend"]["domains"] == [f"{hosts[i]}/{marker}/{i}/"]
            secret = world.secret(f"{marker}-key-{i}")
            assert (secret["clientId"], secret["clientSecret"]) == creds[i]  # the existing credential, recovered
        user = world.secret(f"{marker}-key-{last}")  # the basic-auth user: its own entries too
        assert (user["username"], user["password"]) == creds[last] and user["Authorization"] == basic(*creds[last])
        assert not set(ids) & {s["id"] for s in oto.get("/api/services").json()}

        oto.delete(f"/api/routes/{ids[4]}")  # by hand: the drift check restores it, same id, same key
        wait_until(lambda: httpx.get(traffic.targets[4][0], headers=traffic.targets[4][1]).status_code == 200
                   and oto.get(f"/api/routes/{ids[4]}").status_code == 200,
                   timeout=90, what="adopted route restored by the drift check")  # fmt: skip
        orphan(world, ("GatewayKey", f"{marker}-key-1"), ("GatewayAPI", f"{marker}-api-1"))
        assert oto.get(f"/api/routes/{ids[1]}").status_code == 200
        assert httpx.get(traffic.targets[1][0], headers=traffic.targets[1][1]).status_code == 200
        world.delete("GatewayKey", f"{marker}-key-2")
        assert oto.get(f"/api/apikeys/{creds[2][0]}").status_code == 404

        delete_everything(world)
        assert oto.get(f"/api/routes/{ids[0]}").status_code == 404
        oto.delete(f"/api/routes/{ids[1]}")
        for client_id in (creds[1][0], group_key["clientId"]):
            oto.delete(f"/api/apikeys/{client_id}")


def basic(client_id: str, client_secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()


# ---------------------------------------------------------------------------------------------- tyk-operator


def release_api_definitions(world: World, names: list[str]) -> None:
    """Take tyk-operator's ApiDefinitions out of Kubernetes without its finalizer (it is stopped): gone from
    Kubernetes, not from Tyk, where Torii has adopted them."""
    custom = world.custom
    for name in names:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, world.ns, PLURAL, name, {"metadata": {"finalizers": None}}
        )
        custom.delete_namespaced_custom_object(GROUP, VERSION, world.ns, PLURAL, name)
    wait_until(lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, world.ns, PLURAL)["items"],
               timeout=60, what="ApiDefinitions released")  # fmt: skip


def install_tyk_operator(stack: Stack) -> str:
    """tyk-operator's binary, its CRDs installed and established."""
    binary = tyk_operator_binary(stack)
    done = kubectl("apply", "--server-side", "--force-conflicts", "-f", stack.env["TORII_TYK_OPERATOR_CRDS"])
    assert done.returncode == 0, done.stderr
    kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
    return binary


def switch_from_tyk_operator(
    world: World, out: Path, names: list[str], metrics_port: int
) -> tuple[dict[str, dict[str, Any]], float, float]:
    """Apply the imported manifests in `out`, wait until `names` are Ready, release tyk-operator's ApiDefinitions
    and check two drift passes make no write: the Ready objects, and when the apply began and the switch ended."""
    applied_at = time.monotonic()
    apply_dir(out)
    ready = all_ready(world, "GatewayAPI", names)
    release_api_definitions(world, names)
    ready_at = time.monotonic()
    assert_no_writes_over_two_drift_passes(metrics_port, objects_in(world))
    return ready, applied_at, ready_at


def tyk_operator_api_id(ns: str, name: str) -> str:
    """The api_id tyk-operator v0.18 gives an ApiDefinition: base64url of `<namespace>/<name>`, unpadded."""
    return base64.urlsafe_b64encode(f"{ns}/{name}".encode()).decode().rstrip("=")


def tyk_operator_binary(stack: Stack) -> str:
    binary = stack.env.get("TORII_TYK_OPERATOR_BIN")
    if not binary:
        reason = stack.env.get("TORII_TYK_OPERATOR_UNAVAILABLE", "TORII_TYK_OPERATOR_BIN is not set")
        if "tyk" in required_gateways():
            pytest.fail(f"tyk-operator unavailable: {reason} (and TORII_REQUIRE_GATEWAYS requires tyk)", pytrace=False)
        pytest.skip(f"tyk-operator unavailable: {reason}")
    return binary


def test_switch_from_tyk_operator_without_a_failed_request(
    world: World, live: Operator, crds: Stack, metrics_port: int, tmp_path: Path
) -> None:
    crds.require("tyk")
    binary = install_tyk_operator(crds)
    marker = f"tko-{RUN}"
    org = f"tko{RUN}"
    names = [f"{marker}-{i}" for i in range(MIGRATED)]
    custom = world.custom
    base = crds.env["TYK_URL"]
    with upstream("tyk-operator") as up:
        traffic = Traffic([(f"{base}/{marker}/{i}/", {}) for i in range(MIGRATED)])
        with run_tyk_operator(binary, crds.env, base, world.ns, tmp_path, org=org):
            for name, i in zip(names, range(MIGRATED), strict=True):
                custom.create_namespaced_custom_object(
                    GROUP, VERSION, world.ns, PLURAL, api_definition(name, world.ns, up.url, f"/{marker}/{i}/")
                )
            wait_until(lambda: all(httpx.get(u).status_code == 200 for u, _ in traffic.targets), timeout=120,
                       what="tyk-operator serving its 20 APIs")  # fmt: skip
            traffic.start()
        # tyk-operator is stopped first: it deletes its APIs from Tyk when an ApiDefinition goes, and nothing
        # in v0.18 tells it not to.
        try:
            out = tmp_path / "migration"
            torii_import(live, "--gateway", "tyk", "--from-tyk-operator", "--namespace", world.ns, "-o", str(out))
            assert sorted(p.name for p in out.glob("*.yaml")) == sorted(f"gatewayapi-{n}.yaml" for n in names)
            apply_dir(out, dry_run=True)
            apis, applied_at, ready_at = switch_from_tyk_operator(world, out, names, metrics_port)
        finally:
            traffic.stop()
    assert_through_the_switch(traffic, applied_at, ready_at)
    with tyk_admin(crds) as tyk:
        for name in names:
            api_id = tyk_operator_api_id(world.ns, name)
            assert apis[name]["status"]["gatewayId"] == api_id  # the id tyk-operator gave it
            assert apis[name]["spec"]["adopt"] == {"id": api_id, "orgId": org}
            assert tyk.get(f"/tyk/apis/{api_id}").json()["config_data"]["torii"]["name"] == name
    delete_everything(world)
    with tyk_admin(crds) as tyk:
        assert all(tyk.get(f"/tyk/apis/{tyk_operator_api_id(world.ns, n)}").status_code == 404 for n in names)


def test_switch_from_tyk_operator_with_basic_auth_and_jwt_consumers(
    world: World, live: Operator, crds: Stack, metrics_port: int, tmp_path: Path
) -> None:
    """ApiDefinitions with basic auth and per-consumer JWT, served by tyk-operator, their users and JWT consumers
    made on Tyk as teams do (tyk-operator manages no keys): switched to Torii under a client loop presenting
    those credentials, 0 failed requests."""
    crds.require("tyk")
    binary = install_tyk_operator(crds)
    marker, org = f"tkoauth-{RUN}", f"tkoauth{RUN}"
    basic_name, jwt_name = f"{marker}-basic", f"{marker}-jwt"
    base, custom = crds.env["TYK_URL"], world.custom
    password, secret = "pw-" + uuid.uuid4().hex, "jwt-" + uuid.uuid4().hex

    def api_id(name: str) -> str:
        return tyk_operator_api_id(world.ns, name)

    with upstream("tyk-operator-auth") as up, tyk_admin(crds) as tyk:
        basic_def = api_definition(basic_name, world.ns, up.url, f"/{marker}/basic/")
        basic_def["spec"] |= {"use_keyless": False, "use_basic_auth": True}
        jwt_def = api_definition(jwt_name, world.ns, up.url, f"/{marker}/jwt/")
        jwt_def["spec"] |= {"use_keyless": False, "enable_jwt": True, "jwt_signing_method": "hmac"}
        with run_tyk_operator(binary, crds.env, base, world.ns, tmp_path, org=org):
            for body in (basic_def, jwt_def):
                custom.create_namespaced_custom_object(GROUP, VERSION, world.ns, PLURAL, body)
            both = (basic_name, jwt_name)
            wait_until(lambda: all(tyk.get(f"/tyk/apis/{api_id(n)}").status_code == 200 for n in both),
                       timeout=120, what="tyk-operator serving both APIs")  # fmt: skip

            def consumer(name: str, key: str, extra: dict[str, Any]) -> None:
                rights = {api_id(name): {"api_id": api_id(name), "versions": ["Default"]}}
                answer = tyk.post(
                    f"/tyk/keys/{key}",
                    params={"org_id": org},
                    json={"org_id": org, "access_rights": rights, "rate": CONSUMER_RATE, "per": 1, **extra},
                )
                assert answer.status_code == 200, answer.text  # fmt: skip

            user, kid = f"{marker}-user", f"{marker}-kid"
            consumer(basic_name, user, {"basic_auth_data": {"password": password}})
            consumer(jwt_name, kid, {"jwt_data": {"secret": secret}})
            auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            token = hs256(secret, claims(ttl=3600), kid=kid)
            traffic = Traffic([(f"{base}/{marker}/basic/x", {"Authorization": auth}),
                               (f"{base}/{marker}/jwt/x", {"Authorization": f"Bearer {token}"})])  # fmt: skip
            wait_until(lambda: all(httpx.get(u, headers=h).status_code == 200 for u, h in traffic.targets),
                       timeout=60, what="both consumers served by tyk-operator's APIs")  # fmt: skip
            traffic.start()
        try:
            out = tmp_path / "migration-auth"
            torii_import(live, "--gateway", "tyk", "--from-tyk-operator", "--namespace", world.ns, "-o", str(out))
            manifests = {p.name: yaml.safe_load(p.read_text()) for p in out.glob("*.yaml")}
            assert sorted(manifests) == sorted(f"gatewayapi-{n}.yaml" for n in (basic_name, jwt_name))
            assert manifests[f"gatewayapi-{basic_name}.yaml"]["spec"]["auth"] == "basicAuth"
            assert manifests[f"gatewayapi-{jwt_name}.yaml"]["spec"]["auth"] == "jwt"
            _, applied_at, ready_at = switch_from_tyk_operator(world, out, [basic_name, jwt_name], metrics_port)
        finally:
            traffic.stop()
        assert_through_the_switch(traffic, applied_at, ready_at)
        for name in (basic_name, jwt_name):
            assert tyk.get(f"/tyk/apis/{api_id(name)}").json()["config_data"]["torii"]["name"] == name
    delete_everything(world)


def test_switch_from_tyk_operator_with_an_upstream_client_certificate(
    world: World, live: Operator, crds: Stack, metrics_port: int, tmp_path: Path
) -> None:
    """An ApiDefinition presenting a client certificate to its https upstream from a kubernetes.io/tls Secret
    (`upstream_certificate_refs`, uploaded by tyk-operator): the importer names that Secret in
    spec.upstream.tls (Tyk's admin API never returns a certificate's PEM), and the switch loses no request."""
    crds.require("tyk")
    binary = install_tyk_operator(crds)
    marker, org = f"tkocert-{RUN}", f"tkocert{RUN}"
    name, secret, base = f"{marker}-billing", f"{marker}-client", crds.env["TYK_URL"]
    ca, server_cert, server_key = make_ca_and_server_cert(tmp_path)
    cert, key = make_client_cert(tmp_path, "billing-client")
    world.core.create_namespaced_secret(world.ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name=secret), type="kubernetes.io/tls",
        string_data={"tls.crt": cert, "tls.key": key}))  # fmt: skip
    with mtls_upstream(server_cert, server_key, ca) as (url, seen), tyk_admin(crds) as tyk:
        body = api_definition(name, world.ns, url, f"/{marker}/")
        body["spec"]["upstream_certificate_refs"] = {"*": secret}
        # tyk-operator 0.18 races itself over this upload: its Secret and ApiDefinition controllers both POST the
        # certificate, only the first POST succeeds (Tyk answers 403 to the second), and a later ApiDefinition
        # reconcile that loses the race writes the API back without it (a CI run failed that way). Uploading it
        # under tyk-operator's org first and naming it, as a user who met that bug would, makes its state
        # deterministic; upstream_certificate_refs stays, as that is what the importer reads.
        uploaded = tyk.post("/tyk/certs", params={"org_id": org}, content=(cert + key).encode())
        assert uploaded.status_code == 200, uploaded.text
        body["spec"]["upstream_certificates"] = {"*": uploaded.json()["id"]}
        body["spec"]["proxy"]["transport"] = {"ssl_insecure_skip_verify": True}  # the upstream's private CA
        traffic = Traffic([(f"{base}/{marker}/x", {})])
        with run_tyk_operator(binary, crds.env, base, world.ns, tmp_path, org=org):
            world.custom.create_namespaced_custom_object(GROUP, VERSION, world.ns, PLURAL, body)
            wait_until(lambda: httpx.get(f"{base}/{marker}/x").status_code == 200, timeout=120,
                       what="tyk-operator's API presenting the client certificate upstream")  # fmt: skip
            assert seen[-1] == "billing-client"
            traffic.start()
        try:
            out = tmp_path / "migration-cert"
            torii_import(live, "--gateway", "tyk", "--from-tyk-operator", "--namespace", world.ns, "-o", str(out))
            manifests = {p.name: yaml.safe_load(p.read_text()) for p in out.glob("*.yaml")}
            assert sorted(manifests) == [f"gatewayapi-{name}.yaml"]
            upstream_tls = manifests[f"gatewayapi-{name}.yaml"]["spec"]["upstream"]["tls"]
            assert upstream_tls["clientCertificateSecretName"] == secret
            apply_dir(out, dry_run=True)
            ready, applied_at, ready_at = switch_from_tyk_operator(world, out, [name], metrics_port)
            [obj] = ready.values()
        finally:
            traffic.stop()
        assert_through_the_switch(traffic, applied_at, ready_at)
        assert set(seen) == {"billing-client"}  # every request, before and after the switch, presented it
        served = tyk.get(f"/tyk/apis/{obj['status']['gatewayId']}").json()
        assert served["config_data"]["torii"]["name"] == name
        # Torii presents its own upload of the Secret (under the API's prefix), not tyk-operator's.
        assert served["upstream_certificates"]["*"].startswith(obj["status"]["gatewayId"])
    delete_everything(world)


def test_switch_from_tyk_operator_with_client_mtls_and_pinning(
    world: World, live: Operator, crds: Stack, metrics_port: int, tmp_path: Path
) -> None:
    """An ApiDefinition checking client certificates on its own TLS listener (`use_mutual_tls_auth`,
    `client_certificate_refs`) and one pinning its https upstream's public key (`pinned_public_keys_refs`), both
    from kubernetes.io/tls Secrets: the importer names those Secrets (spec.mtls.allowed,
    spec.upstream.tls.pinnedPublicKeys); the mTLS API switches without a failed request and still refuses a
    stranger's certificate afterwards (the check moved, under Torii's own uploads). tyk-operator 0.18's pinning
    never worked on Tyk (it uploads the Secret's certificate and key, and Tyk fingerprints the first PEM block,
    the certificate, where the upstream presents its public key): that API answers 5xx until Torii, pinning the
    public key it takes from the same Secret, serves it."""
    crds.require("tyk")
    binary = install_tyk_operator(crds)
    # A hex org, like the ids Tyk's dashboard hands out: Tyk reads a pinned key's id from its store only when
    # the id is hex (else as a file path), so tyk-operator's pinning fails for the reason above, not that one.
    marker, org, base = f"tkomtls-{RUN}", f"c0ffee{RUN}", crds.env["TYK_URL"]
    mtls_name, pin_name = f"{marker}-partners", f"{marker}-pinned"
    client_secret, pin_secret = f"{marker}-partner", f"{marker}-upstream"
    listener, upstream_tls, strangers = tmp_path / "listener", tmp_path / "upstream", tmp_path / "strangers"
    for d in (listener, upstream_tls, strangers):
        d.mkdir()
    ca, server_cert, server_key = make_ca_and_server_cert(listener)  # Tyk's listener, and the partner's CA
    partner = make_client_cert(listener, "partner")
    _, up_cert, up_key = make_ca_and_server_cert(upstream_tls)  # the upstream's: a CA Tyk does not trust
    make_ca_and_server_cert(strangers)
    make_client_cert(strangers, "mallory")
    pairs = {client_secret: partner, pin_secret: (up_cert.read_text(), up_key.read_text())}
    for secret, (crt, key) in pairs.items():
        world.core.create_namespaced_secret(world.ns, client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret), type="kubernetes.io/tls",
            string_data={"tls.crt": crt, "tls.key": key}))  # fmt: skip

    def caller(directory: Path, cn: str) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(directory / f"{cn}.crt", directory / f"{cn}.key")
        return context

    def answer(url: str, context: ssl.SSLContext) -> int:
        try:
            return httpx.get(url, verify=context, timeout=10).status_code
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            return 0  # the handshake refused

    port = free_port()
    mtls_url, pin_url = f"https://127.0.0.1:{port}/{marker}/partners/x", f"{base}/{marker}/pinned/x"
    with upstream("tyk-operator-mtls") as up, https_front(up.url, up_cert, up_key) as pinned, tyk_admin(crds) as tyk:
        # The listener's server certificate: the platform's, in Tyk's store (as in test_tyk_mtls).
        stored = tyk.post("/tyk/certs", params={"org_id": "platform"},
                          content=server_cert.read_bytes() + server_key.read_bytes())  # fmt: skip
        assert stored.status_code in (200, 403), stored.text  # 403: stored by another test already
        server_id = "platform" + hashlib.sha256(first_certificate_der(server_cert.read_text())).hexdigest()
        # tyk-operator 0.18 uploads without the org (Tyk stores the bare fingerprint) and then looks for
        # org+fingerprint: every reconcile after its first finds nothing, fails to upload again (403) and writes
        # the API back without the certificate. Stored under its org beforehand, it finds them every time.
        for crt, key in pairs.values():
            answered = tyk.post("/tyk/certs", params={"org_id": org}, content=(crt + key).encode())
            assert answered.status_code == 200, answered.text
        mtls_def = api_definition(mtls_name, world.ns, up.url, f"/{marker}/partners/")
        mtls_def["spec"] |= {"protocol": "https", "listen_port": port, "certificates": [server_id],
                             "use_mutual_tls_auth": True, "client_certificate_refs": [client_secret]}  # fmt: skip
        pin_def = api_definition(pin_name, world.ns, pinned, f"/{marker}/pinned/")
        pin_def["spec"]["pinned_public_keys_refs"] = {"*": pin_secret}
        with run_tyk_operator(binary, crds.env, base, world.ns, tmp_path, org=org):
            for body in (mtls_def, pin_def):
                world.custom.create_namespaced_custom_object(GROUP, VERSION, world.ns, PLURAL, body)
            wait_until(lambda: answer(mtls_url, caller(listener, "partner")) == 200, timeout=120,
                       what="tyk-operator's API serving the partner")  # fmt: skip
            assert answer(mtls_url, caller(strangers, "mallory")) in (0, 401, 403)
            wait_until(lambda: tyk.get(f"/tyk/apis/{tyk_operator_api_id(world.ns, pin_name)}").json().get(
                "pinned_public_keys"), timeout=60, what="tyk-operator's pinning API on Tyk")  # fmt: skip
            assert httpx.get(pin_url).status_code >= 500  # "public keys do not match" (Tyk's log)
            partners = Traffic([(mtls_url, {})], verify=caller(listener, "partner")).start()
        try:
            out = tmp_path / "migration-mtls"
            torii_import(live, "--gateway", "tyk", "--from-tyk-operator", "--namespace", world.ns, "-o", str(out))
            manifests = {p.name: yaml.safe_load(p.read_text()) for p in out.glob("*.yaml")}
            assert sorted(manifests) == sorted(f"gatewayapi-{n}.yaml" for n in (mtls_name, pin_name))
            mtls_spec = manifests[f"gatewayapi-{mtls_name}.yaml"]["spec"]
            assert mtls_spec["mtls"] == {"allowed": [{"name": client_secret, "key": "tls.crt"}]}
            pin_spec = manifests[f"gatewayapi-{pin_name}.yaml"]["spec"]
            assert pin_spec["upstream"]["tls"] == {"pinnedPublicKeys": [{"name": pin_secret, "key": "tls.crt"}]}
            apply_dir(out, dry_run=True)
            objs, applied_at, ready_at = switch_from_tyk_operator(world, out, [mtls_name, pin_name], metrics_port)
        finally:
            partners.stop()
        assert_through_the_switch(partners, applied_at, ready_at)
        assert answer(mtls_url, caller(strangers, "mallory")) in (0, 401, 403)
        assert httpx.get(pin_url).status_code == 200  # Ready: pinned, and served
        served = {n: tyk.get(f"/tyk/apis/{o['status']['gatewayId']}").json() for n, o in objs.items()}
        prefix = {n: o["status"]["gatewayId"] for n, o in objs.items()}
        # Torii checks and pins with its own uploads of the Secrets (under each API's prefix), not tyk-operator's.
        assert [c.startswith(prefix[mtls_name]) for c in served[mtls_name]["client_certificates"]] == [True]
        assert served[pin_name]["pinned_public_keys"]["*"].startswith(pin_prefix(prefix[pin_name]))
    delete_everything(world)
