"""Basic auth and JWT end to end on the real Tyk 5.10.2 and Otoroshi 17.17.0: a valid credential passes, a
missing, wrong or expired one is refused, rotation and revocation hold, and Ready means the gateway serves it."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from support.jwt import EcKey, RsaKey, claims, hs256, jwks_server
from support.metrics import assert_no_writes_over_two_drift_passes
from support.operator import Operator, put_secret, running_operator, stack_gateways
from support.stack import Stack
from support.tls import https_front, make_ca_and_server_cert, make_client_cert, mtls_upstream
from support.upstream import Upstream, upstream
from support.wait import wait_until
from support.world import World


@pytest.fixture(scope="module")
def live(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[Operator]:
    gateways, secret = stack_gateways(crds, "torii-gateways-auth")
    crds.require_any()
    with running_operator(crds, admin, tmp_path_factory.mktemp("auth"), gateways=gateways, secret_data=secret,
                          namespaces=[ns], secret_name="torii-gateways-auth", drift_interval=2.0,
                          metrics_port=metrics_port) as op:  # fmt: skip
        yield op


@pytest.fixture(scope="module")
def up() -> Iterator[Upstream]:
    with upstream("auth") as u:
        yield u


# What a gateway answers a request it refuses for its credential: Tyk 401/403, Otoroshi 400 (no or unknown key).
REFUSED = (400, 401, 403)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def call(stack: Stack, gateway: str, path: str, headers: dict[str, str] | None = None) -> int:
    """The status of a GET through `gateway`'s proxy."""
    if gateway == "tyk":
        return httpx.get(f"{stack.env['TYK_URL']}{path}", headers=headers or {}).status_code
    host = {"Host": f"api.{stack.env['OTOROSHI_DOMAIN']}"}
    return httpx.get(f"{stack.env['OTOROSHI_URL']}{path}", headers=host | (headers or {})).status_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api(world: World, gateway: str, up: Upstream, auth: str, **extra: Any) -> str:
    name = uid(f"{gateway[:3]}-{auth[:5].lower()}")
    world.apply("GatewayAPI", name, {"gateway": gateway, "listenPath": f"/{name}/", "upstream": {"url": up.url},
                                     "auth": auth, **extra})  # fmt: skip
    return name


# ---------------------------------------------------------------------------------------------- in sync


def test_every_mode_in_sync_costs_no_write(
    stack: Stack, world: World, admin: client.ApiClient, up: Upstream, metrics_port: int
) -> None:
    """Drift passes over JWT and basic-auth APIs and keys on both gateways write nothing once in sync (the
    policy, the verifier, a password Tyk never returns: all compared without a write)."""
    stack.require("tyk")
    stack.require("otoroshi")
    put_secret(admin, world.ns, "sync-jwt", {"secret": "sync-" + uuid.uuid4().hex, "pem": RsaKey().public_pem()})
    names = []
    for gateway in ("tyk", "otoroshi"):
        shared = api(world, gateway, up, "jwt", jwt={"secretRef": {"name": "sync-jwt", "key": "secret"}})
        public = api(
            world, gateway, up, "jwt", jwt={"algorithm": "RS256", "secretRef": {"name": "sync-jwt", "key": "pem"}}
        )
        names += [("GatewayAPI", shared), ("GatewayAPI", public), ("GatewayAPI", api(world, gateway, up, "basicAuth"))]
        key = uid("user")
        world.apply("GatewayKey", key, {"gateway": gateway, "type": "basicAuth", "apis": [{"name": names[-1][1]}]})
        names.append(("GatewayKey", key))
    per_key = api(world, "tyk", up, "jwt")
    signer = uid("signer")
    world.apply("GatewayKey", signer, {"gateway": "tyk", "type": "jwt", "apis": [{"name": per_key}]})
    names += [("GatewayAPI", per_key), ("GatewayKey", signer)]
    for kind, name in names:
        world.ready(kind, name)
    assert_no_writes_over_two_drift_passes(metrics_port, len(names))


# ----------------------------------------------------------------------------------------------- basic auth


@pytest.mark.parametrize("gateway", ["tyk", "otoroshi"])
def test_basic_auth_key_rotation_and_revocation(stack: Stack, world: World, up: Upstream, gateway: str) -> None:
    stack.require(gateway)
    name = api(world, gateway, up, "basicAuth")
    world.ready("GatewayAPI", name)
    path = f"/{name}/x"
    assert call(stack, gateway, path) in (400, 401)  # no credential (Otoroshi: 400 "no api key")

    key = uid("user")
    spec = {"gateway": gateway, "type": "basicAuth", "apis": [{"name": name}]}
    world.apply("GatewayKey", key, spec)
    obj = world.ready("GatewayKey", key)
    data = world.secret(key)
    assert data["Authorization"] == basic(data["username"], data["password"])
    assert data["password"] not in str(obj)  # never in status
    assert call(stack, gateway, path, {"Authorization": data["Authorization"]}) == 200
    assert call(stack, gateway, path, {"Authorization": basic(data["username"], data["password"] + "x")}) in REFUSED
    if gateway == "otoroshi":  # basic auth only: the client id/secret headers do not open this API
        headers = {"Otoroshi-Client-Id": data["username"], "Otoroshi-Client-Secret": data["password"]}
        assert call(stack, gateway, path, headers) in REFUSED

    # A rotation: the new credential works at once, the old one for the grace period only.
    world.apply("GatewayKey", key, {**spec, "rotation": {"generation": 1, "gracePeriodSeconds": 6}})
    world.ready("GatewayKey", key)
    new = world.secret(key)
    assert new["password"] != data["password"]
    assert call(stack, gateway, path, {"Authorization": new["Authorization"]}) == 200
    wait_until(lambda: call(stack, gateway, path, {"Authorization": data["Authorization"]}) in REFUSED,
               timeout=60, what="the rotated-out credential refused after its grace period")  # fmt: skip
    assert call(stack, gateway, path, {"Authorization": new["Authorization"]}) == 200

    world.delete("GatewayKey", key)  # returns once the gateway refuses it
    assert call(stack, gateway, path, {"Authorization": new["Authorization"]}) in REFUSED


def test_a_key_of_another_type_is_refused(world: World, up: Upstream) -> None:
    name = api(world, "tyk", up, "basicAuth")
    key = world.new("GatewayKey", {"gateway": "tyk", "apis": [{"name": name}]})
    message = world.reason("GatewayKey", key, "InvalidReference")["message"]
    assert "auth 'basicAuth'" in message and "auth: key" in message


# ---------------------------------------------------------------------------------------------------- JWT


def tyk_admin(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.env["TYK_URL"], headers={"X-Tyk-Authorization": stack.env["TYK_SECRET"]})


def otoroshi_admin(stack: Stack) -> httpx.Client:
    env = stack.env
    return httpx.Client(base_url=env["OTOROSHI_URL"], headers={"Host": env["OTOROSHI_API_HOST"]},
                        auth=(env["OTOROSHI_CLIENT_ID"], env["OTOROSHI_CLIENT_SECRET"]))  # fmt: skip


def what_torii_made(stack: Stack, gateway: str, gateway_id: str) -> int:
    """The status of a GET of the JWT API's side object: Tyk's policy, Otoroshi's verifier."""
    if gateway == "tyk":
        return tyk_admin(stack).get(f"/tyk/policies/{gateway_id}").status_code
    return otoroshi_admin(stack).get(f"/api/verifiers/{gateway_id}-jwt").status_code


@pytest.mark.parametrize("gateway", ["tyk", "otoroshi"])
def test_jwt_with_a_shared_secret_follows_its_renewal(
    stack: Stack, world: World, admin: client.ApiClient, up: Upstream, gateway: str
) -> None:
    stack.require(gateway)
    secret_name, first, second = uid("jwt-key"), "first-" + uuid.uuid4().hex, "second-" + uuid.uuid4().hex
    put_secret(admin, world.ns, secret_name, {"secret": first})
    name = api(
        world, gateway, up, "jwt", jwt={"algorithm": "HS256", "secretRef": {"name": secret_name, "key": "secret"}}
    )
    obj = world.ready("GatewayAPI", name)
    assert first not in str(obj)
    path = f"/{name}/x"
    assert call(stack, gateway, path, bearer(hs256(first, claims()))) == 200
    assert call(stack, gateway, path) in REFUSED
    assert call(stack, gateway, path, bearer(hs256("not-the-secret-at-all", claims()))) in REFUSED
    assert call(stack, gateway, path, bearer(hs256(first, claims(ttl=-120)))) in REFUSED  # expired
    assert what_torii_made(stack, gateway, obj["status"]["gatewayId"]) == 200

    # The Secret renewed (as cert-manager or a rotation job would): the gateway follows without any CR change.
    put_secret(admin, world.ns, secret_name, {"secret": second})
    wait_until(lambda: call(stack, gateway, path, bearer(hs256(second, claims()))) == 200, timeout=60,
               what="a token signed with the renewed secret accepted")  # fmt: skip
    assert call(stack, gateway, path, bearer(hs256(first, claims()))) in REFUSED

    world.delete("GatewayAPI", name)
    assert what_torii_made(stack, gateway, obj["status"]["gatewayId"]) == 404


@pytest.mark.parametrize("gateway", ["tyk", "otoroshi"])
def test_an_api_leaving_jwt_leaves_nothing_behind(
    stack: Stack, world: World, admin: client.ApiClient, up: Upstream, gateway: str
) -> None:
    stack.require(gateway)
    put_secret(admin, world.ns, "leaving-jwt", {"secret": "leaving-" + uuid.uuid4().hex})
    name = api(world, gateway, up, "jwt", jwt={"secretRef": {"name": "leaving-jwt", "key": "secret"}})
    obj = world.ready("GatewayAPI", name)
    assert what_torii_made(stack, gateway, obj["status"]["gatewayId"]) == 200
    assert obj["status"]["gatewayObjects"] == ["jwt"]
    world.patch("GatewayAPI", name, {"auth": "keyless", "jwt": None})  # a merge patch: null removes spec.jwt
    obj = world.ready("GatewayAPI", name)
    assert call(stack, gateway, f"/{name}/x") == 200  # open now, as asked
    assert what_torii_made(stack, gateway, obj["status"]["gatewayId"]) == 404
    assert "gatewayObjects" not in obj["status"] or not obj["status"]["gatewayObjects"]


@pytest.mark.parametrize("gateway", ["tyk", "otoroshi"])
def test_jwt_with_public_keys_and_a_jwks(
    stack: Stack, world: World, admin: client.ApiClient, up: Upstream, gateway: str
) -> None:
    stack.require(gateway)
    rsa_key, other, ec_key, issuer = RsaKey("k1"), RsaKey("k2"), EcKey(), RsaKey("idp-1")
    put_secret(admin, world.ns, "jwt-public", {"rsa.pem": rsa_key.public_pem(), "ec.pem": ec_key.public_pem()})
    rs = api(
        world, gateway, up, "jwt", jwt={"algorithm": "RS256", "secretRef": {"name": "jwt-public", "key": "rsa.pem"}}
    )
    es = api(
        world, gateway, up, "jwt", jwt={"algorithm": "ES256", "secretRef": {"name": "jwt-public", "key": "ec.pem"}}
    )
    with jwks_server([issuer]) as jwks_url:
        jwks = api(world, gateway, up, "jwt", jwt={"jwksUrl": jwks_url})
        for name in (rs, es, jwks):
            world.ready("GatewayAPI", name)
        assert call(stack, gateway, f"/{rs}/x", bearer(rsa_key.sign(claims()))) == 200
        assert call(stack, gateway, f"/{rs}/x", bearer(other.sign(claims()))) in REFUSED
        assert call(stack, gateway, f"/{es}/x", bearer(ec_key.sign(claims()))) == 200
        assert call(stack, gateway, f"/{es}/x", bearer(rsa_key.sign(claims()))) in REFUSED
        assert call(stack, gateway, f"/{jwks}/x", bearer(issuer.sign(claims()))) == 200
        assert call(stack, gateway, f"/{jwks}/x", bearer(other.sign(claims()))) in REFUSED
        assert call(stack, gateway, f"/{jwks}/x", bearer(issuer.sign(claims(ttl=-120)))) in REFUSED


def test_otoroshi_jwt_checks_issuer_and_audience(
    stack: Stack, world: World, admin: client.ApiClient, up: Upstream
) -> None:
    stack.require("otoroshi")
    key = "issuer-" + uuid.uuid4().hex
    put_secret(admin, world.ns, "jwt-iss", {"secret": key})
    name = api(world, "otoroshi", up, "jwt", jwt={"secretRef": {"name": "jwt-iss", "key": "secret"},
                                                 "issuer": "https://idp.example", "audience": "orders"})  # fmt: skip
    world.ready("GatewayAPI", name)
    path = f"/{name}/x"
    good = claims(iss="https://idp.example", aud="orders")
    assert call(stack, "otoroshi", path, bearer(hs256(key, good))) == 200
    assert call(stack, "otoroshi", path, bearer(hs256(key, {**good, "iss": "https://evil.example"}))) in REFUSED
    assert call(stack, "otoroshi", path, bearer(hs256(key, {**good, "aud": "billing"}))) in REFUSED


def test_tyk_jwt_keys_each_with_their_own_secret(stack: Stack, world: World, up: Upstream) -> None:
    stack.require("tyk")
    name = api(world, "tyk", up, "jwt")
    world.ready("GatewayAPI", name)
    path = f"/{name}/x"
    key = uid("signer")
    world.apply("GatewayKey", key, {"gateway": "tyk", "type": "jwt", "apis": [{"name": name}]})
    obj = world.ready("GatewayKey", key)
    data = world.secret(key)
    assert data["secret"] not in str(obj) and data["algorithm"] == "HS256"
    assert call(stack, "tyk", path, bearer(hs256(data["secret"], claims(), kid=data["kid"]))) == 200
    assert call(stack, "tyk", path, bearer(hs256("another-secret-entirely", claims(), kid=data["kid"]))) in REFUSED
    assert call(stack, "tyk", path, bearer(hs256(data["secret"], claims()))) in REFUSED  # no kid: no consumer
    world.delete("GatewayKey", key)
    assert call(stack, "tyk", path, bearer(hs256(data["secret"], claims(), kid=data["kid"]))) in REFUSED


# ------------------------------------------------------------------------------------------- several modes


def credential_headers(gateway: str, mode: str, data: dict[str, str]) -> dict[str, str]:
    """How a GatewayKey's Secret is presented: a basic-auth header, Tyk's key, Otoroshi's client id/secret."""
    if mode == "basicAuth":
        return {"Authorization": data["Authorization"]}
    if gateway == "tyk":
        return {"Authorization": data["key"]}
    return {"Otoroshi-Client-Id": data["clientId"], "Otoroshi-Client-Secret": data["clientSecret"]}


@pytest.mark.parametrize(("gateway", "auth", "also"), [("tyk", "key", "jwt"), ("tyk", "jwt", "basicAuth"),
                                                       ("otoroshi", "key", "jwt")])  # fmt: skip
def test_several_modes_each_must_pass_and_the_key_counts(
    stack: Stack, world: World, admin: client.ApiClient, up: Upstream, gateway: str, auth: str, also: str
) -> None:
    """A GatewayKey and a JWT from the identity provider, both required (Tyk multi-auth, Otoroshi plugins):
    either alone is refused, a wrong one of either is refused; the key's quota is what counts."""
    stack.require(gateway)
    secret_name, signing = uid("multi-jwt"), "multi-" + uuid.uuid4().hex
    put_secret(admin, world.ns, secret_name, {"secret": signing})
    name = api(world, gateway, up, auth, additionalAuth=[also],
               jwt={"secretRef": {"name": secret_name, "key": "secret"}, "header": "X-User-Token"})  # fmt: skip
    world.ready("GatewayAPI", name)
    mode = auth if also == "jwt" else also
    key = uid("multi-key")
    world.apply("GatewayKey", key, {"gateway": gateway, "type": mode, "apis": [{"name": name}],
                                    "quota": {"max": 3, "period": "day"}})  # fmt: skip
    world.ready("GatewayKey", key)
    credential = credential_headers(gateway, mode, world.secret(key))
    token = {"X-User-Token": hs256(signing, claims())}
    path = f"/{name}/x"
    assert call(stack, gateway, path) in REFUSED
    assert call(stack, gateway, path, credential) in REFUSED  # the key alone
    assert call(stack, gateway, path, token) in REFUSED  # the JWT alone
    assert call(stack, gateway, path, credential | {"X-User-Token": hs256("not-the-key-" + signing, claims())}) \
        in REFUSED  # fmt: skip
    assert call(stack, gateway, path, credential | {"X-User-Token": hs256(signing, claims(ttl=-120))}) in REFUSED
    wrong = {k: v + "x" for k, v in credential.items()}
    assert call(stack, gateway, path, wrong | token) in REFUSED
    # Both: served, and counted against the key's quota (its session is the identity, not the JWT's).
    assert [call(stack, gateway, path, credential | token) for _ in range(3)] == [200, 200, 200]
    assert call(stack, gateway, path, credential | token) in (403, 429)
    wait_until(lambda: 0 in ((world.ready("GatewayKey", key)["status"].get("quota") or {}).values()), timeout=30,
               what="the key's quota used up in its status")  # fmt: skip


def test_jwt_bad_input_is_named(stack: Stack, world: World, admin: client.ApiClient, up: Upstream) -> None:
    stack.require("tyk")
    stack.require("otoroshi")
    missing = api(world, "tyk", up, "jwt", jwt={"secretRef": {"name": "no-such-secret", "key": "secret"}})
    assert "Secret no-such-secret" in world.reason("GatewayAPI", missing, "WaitingForSecret")["message"]
    put_secret(admin, world.ns, "jwt-wrong", {"plain": "a-shared-secret-not-a-key", "pem": RsaKey().public_pem()})
    wrong = api(
        world, "otoroshi", up, "jwt", jwt={"algorithm": "RS256", "secretRef": {"name": "jwt-wrong", "key": "plain"}}
    )
    message = world.reason("GatewayAPI", wrong, "InvalidSecret")["message"]
    assert "spec.jwt.secretRef" in message and "PEM" in message
    ec_for_rsa = api(
        world, "tyk", up, "jwt", jwt={"algorithm": "ES256", "secretRef": {"name": "jwt-wrong", "key": "pem"}}
    )
    assert "an RSA key" in world.reason("GatewayAPI", ec_for_rsa, "InvalidSecret")["message"]
    issuer = api(world, "tyk", up, "jwt", jwt={"jwksUrl": "https://idp.example/jwks", "issuer": "https://idp.example"})
    assert "spec.jwt.issuer" in world.reason("GatewayAPI", issuer, "Unsupported")["message"]
    https = {"gateway": "tyk", "listenPath": "/tls-bad/", "auth": "keyless"}
    no_secret = uid("tls-missing")
    world.apply("GatewayAPI", no_secret, {**https, "listenPath": f"/{no_secret}/", "upstream": {
        "url": "https://127.0.0.1:9/", "tls": {"clientCertificateSecretName": "no-such-tls"}}})  # fmt: skip
    assert "Secret no-such-tls" in world.reason("GatewayAPI", no_secret, "WaitingForSecret")["message"]
    tls_secret(world, "not-a-certificate", "just text", "more text")
    bad_tls = uid("tls-bad")
    world.apply("GatewayAPI", bad_tls, {**https, "listenPath": f"/{bad_tls}/", "upstream": {
        "url": "https://127.0.0.1:9/", "tls": {"clientCertificateSecretName": "not-a-certificate"}}})  # fmt: skip
    assert "tls.crt holds no PEM CERTIFICATE" in world.reason("GatewayAPI", bad_tls, "InvalidSecret")["message"]
    per_key = api(world, "otoroshi", up, "jwt")
    assert "spec.jwt" in world.reason("GatewayAPI", per_key, "Unsupported")["message"]


# ------------------------------------------------------------------------------------------ upstream mTLS


def tls_secret(world: World, name: str, cert: str, key: str) -> None:
    """A kubernetes.io/tls Secret (as cert-manager writes one), created or replaced."""
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=name), type="kubernetes.io/tls",
                           string_data={"tls.crt": cert, "tls.key": key})  # fmt: skip
    try:
        world.core.create_namespaced_secret(world.ns, body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        world.core.replace_namespaced_secret(name, world.ns, body)


def uploaded(stack: Stack, gateway: str, gateway_id: str) -> list[str]:
    """The ids of the certificates Torii stored on the gateway for one API."""
    if gateway == "tyk":
        prefix = f"{gateway_id}-"
        listed = tyk_admin(stack).get("/tyk/certs", params={"org_id": prefix}).json().get("certs") or []
        return [c for c in listed if c.startswith(prefix)]
    listed = otoroshi_admin(stack).get("/api/certificates").json()
    return [c["id"] for c in listed if c["id"].startswith(f"{gateway_id}-client-")]


@pytest.mark.parametrize("gateway", ["tyk", "otoroshi"])
def test_upstream_client_certificate_from_a_tls_secret(
    stack: Stack, world: World, gateway: str, tmp_path: Path
) -> None:
    stack.require(gateway)
    ca, server_cert, server_key = make_ca_and_server_cert(tmp_path)
    first, second = make_client_cert(tmp_path, "torii-client-1"), make_client_cert(tmp_path, "torii-client-2")
    secret = uid("upstream-client")
    tls_secret(world, secret, *first)
    with mtls_upstream(server_cert, server_key, ca) as (url, seen):
        name = uid(f"{gateway[:3]}-mtls")
        world.apply("GatewayAPI", name, {"gateway": gateway, "listenPath": f"/{name}/", "upstream": {
            "url": url, "tls": {"clientCertificateSecretName": secret, "insecureSkipVerify": True}}})  # fmt: skip
        obj = world.ready("GatewayAPI", name)
        assert call(stack, gateway, f"/{name}/x") == 200 and seen[-1] == "torii-client-1"
        stored = uploaded(stack, gateway, obj["status"]["gatewayId"])
        assert len(stored) == 1

        # Without the certificate, the same upstream refuses the gateway (what the feature is for).
        bare = uid(f"{gateway[:3]}-nocert")
        world.apply("GatewayAPI", bare, {"gateway": gateway, "listenPath": f"/{bare}/",
                                         "upstream": {"url": url, "tls": {"insecureSkipVerify": True}}})  # fmt: skip
        world.ready("GatewayAPI", bare)
        assert call(stack, gateway, f"/{bare}/x") >= 500

        # Renewed (cert-manager replaces the Secret's content): the gateway presents the new certificate, and the
        # old one leaves its store.
        tls_secret(world, secret, *second)
        wait_until(lambda: call(stack, gateway, f"/{name}/x") == 200 and seen[-1] == "torii-client-2", timeout=90,
                   what="the renewed client certificate presented")  # fmt: skip
        wait_until(lambda: len(now := uploaded(stack, gateway, obj["status"]["gatewayId"])) == 1 and now != stored,
                   timeout=60, what="only the renewed certificate stored")  # fmt: skip

        # No client certificate any more: the API stops presenting it, and Torii's copy leaves the store.
        world.patch("GatewayAPI", name, {"upstream": {"tls": {"clientCertificateSecretName": None}}})
        world.ready("GatewayAPI", name)
        assert uploaded(stack, gateway, obj["status"]["gatewayId"]) == []
        # The proxy drops the client certificate once it has synced the route (Otoroshi: a state sync later).
        wait_until(lambda: call(stack, gateway, f"/{name}/x") >= 500, timeout=60,
                   what="the upstream refusing the gateway without its certificate")  # fmt: skip
        world.delete("GatewayAPI", name)


def test_a_certificate_tyk_refuses_is_named_and_nothing_is_removed(stack: Stack, world: World, tmp_path: Path) -> None:
    """Tyk answers 403 to a certificate whose key does not match (as to a duplicate): Torii tells them apart by
    looking the certificate up, reports the refusal, and the working certificate stays."""
    stack.require("tyk")
    make_ca_and_server_cert(tmp_path)
    (cert, key), (_, other_key) = make_client_cert(tmp_path, "good"), make_client_cert(tmp_path, "other")
    secret = uid("refused-tls")
    tls_secret(world, secret, cert, key)
    name = uid("tyk-refused")
    world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/", "upstream": {
        "url": "https://127.0.0.1:9/", "tls": {"clientCertificateSecretName": secret}}})  # fmt: skip
    obj = world.ready("GatewayAPI", name)
    before = uploaded(stack, "tyk", obj["status"]["gatewayId"])
    assert len(before) == 1
    tls_secret(world, secret, make_client_cert(tmp_path, "renewed")[0], other_key)  # a key of another certificate
    condition = wait_until(lambda: (c := world.condition_now("GatewayAPI", name)) and c["status"] == "False" and c,
                           timeout=60, what="the refusal reported")  # fmt: skip
    assert "Tyk refused the certificate" in condition["message"] and "spec.upstream.tls" in condition["message"]
    assert uploaded(stack, "tyk", obj["status"]["gatewayId"]) == before  # the working one is still there


def test_tyk_pins_the_upstreams_public_key(stack: Stack, world: World, admin: client.ApiClient, up: Upstream,
                                          metrics_port: int, tmp_path: Path) -> None:  # fmt: skip
    """Certificate pinning: Tyk serves an upstream whose CA it does not trust once its public key is pinned, and
    refuses it when another key is pinned; the pinned keys Torii stored leave the store with the pin."""
    stack.require("tyk")
    _, server_cert, server_key = make_ca_and_server_cert(tmp_path)  # a private CA Tyk does not trust
    secret = uid("pinned")
    put_secret(admin, world.ns, secret, {"tls.crt": server_cert.read_text()})  # the upstream's certificate

    def pins(gateway_id: str) -> list[str]:
        definition = tyk_admin(stack).get(f"/tyk/apis/{gateway_id}").json()
        return ",".join((definition.get("pinned_public_keys") or {}).values()).split(",") if definition.get(
            "pinned_public_keys") else []  # fmt: skip

    def stored(cid: str) -> bool:
        return tyk_admin(stack).get(f"/tyk/certs/{cid}").status_code == 200

    with https_front(up.url, server_cert, server_key) as url:
        unpinned = uid("tyk-nopin")
        world.apply("GatewayAPI", unpinned, {"gateway": "tyk", "listenPath": f"/{unpinned}/", "upstream": {"url": url}})
        world.ready("GatewayAPI", unpinned)
        assert call(stack, "tyk", f"/{unpinned}/x") >= 500  # CA verification: the private CA is not trusted

        name = uid("tyk-pin")
        world.apply("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/", "upstream": {
            "url": url, "tls": {"pinnedPublicKeys": [{"name": secret, "key": "tls.crt"}]}}})  # fmt: skip
        gateway_id = world.ready("GatewayAPI", name)["status"]["gatewayId"]
        assert call(stack, "tyk", f"/{name}/x") == 200  # its key pinned: served, whoever signed it
        first = pins(gateway_id)
        assert len(first) == 1 and stored(first[0])
        assert_no_writes_over_two_drift_passes(metrics_port, 1)

        # The Secret now holds another certificate (not the upstream's key): the upstream is refused.
        put_secret(admin, world.ns, secret, {"tls.crt": make_client_cert(tmp_path, "impostor")[0]})
        wait_until(lambda: call(stack, "tyk", f"/{name}/x") >= 500, timeout=60,
                   what="the upstream refused once another key is pinned")  # fmt: skip
        second = pins(gateway_id)
        assert len(second) == 1 and second != first and stored(second[0])
        wait_until(lambda: not stored(first[0]), timeout=30, what="the key no longer pinned removed from the store")

        # No pin any more: CA verification again (refused here), and nothing of the pin left in the store.
        world.patch("GatewayAPI", name, {"upstream": {"tls": None}})
        world.ready("GatewayAPI", name)
        assert pins(gateway_id) == [] and not stored(second[0])
        assert call(stack, "tyk", f"/{name}/x") >= 500
        world.delete("GatewayAPI", name)
