"""Client mutual TLS on the real Tyk 5.10.2: certificates allowed from Secrets (a CA, or a certificate), uploaded
to Tyk's store for that API only, renewals followed, removal cleaned up, and mTLS combined with keys.

The API is served over TLS on a port of its own (`protocol: https`, `listen_port`, its server certificate from
Tyk's store): how a platform team serves it is its choice (tenancy singleTeam here); the client certificates are
Torii's neutral `spec.mtls`.
"""

from __future__ import annotations

import hashlib
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from support.operator import SINGLE_TEAM, Operator, free_port, one_gateway_operator, put_secret
from support.stack import Stack
from support.tls import make_ca_and_server_cert, make_client_cert
from support.upstream import Upstream, upstream
from support.wait import wait_until
from support.world import World
from torii.pem import first_certificate_der


@pytest.fixture(scope="module")
def live(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[Operator]:
    crds.require("tyk")
    with one_gateway_operator(crds, admin, ns, tmp_path_factory.mktemp("mtls"), "tyk", metrics_port=metrics_port,
                              drift_interval=2.0, tenancy=SINGLE_TEAM) as op:  # fmt: skip
        yield op


@pytest.fixture(scope="module")
def up() -> Iterator[Upstream]:
    with upstream("mtls") as u:
        yield u


def tyk_admin(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.env["TYK_URL"], headers={"X-Tyk-Authorization": stack.env["TYK_SECRET"]})


def stored(stack: Stack, api_id: str) -> list[str]:
    listed = tyk_admin(stack).get("/tyk/certs", params={"org_id": f"{api_id}-"}).json().get("certs") or []
    return [c for c in listed if c.startswith(f"{api_id}-")]


def status(url: str, ca: Path, cert: tuple[Path, Path] | None, headers: dict[str, str] | None = None) -> int:
    """The answer's status, or 0 when the TLS handshake itself was refused."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(*cert)
    try:
        return httpx.get(url, verify=context, headers=headers or {}, timeout=10).status_code
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return 0


def test_only_allowed_client_certificates_get_in(stack: Stack, world: World, admin: client.ApiClient,
                                                 up: Upstream, tmp_path: Path) -> None:  # fmt: skip
    partners, strangers, renewed = tmp_path / "partners", tmp_path / "strangers", tmp_path / "renewed"
    for d in (partners, strangers, renewed):
        d.mkdir()
    ca, server_cert, server_key = make_ca_and_server_cert(partners)
    make_ca_and_server_cert(strangers)
    make_ca_and_server_cert(renewed)
    paths = {}
    # Verified on 5.10.2: Tyk checks a client certificate against an allowed CA as if it were a server's (Go's
    # default key usage), so one whose extended key usage is clientAuth only is refused (403). These carry none;
    # `pinned` (allowed as itself, compared by its SHA-256) keeps the usual clientAuth.
    for where, cn, usage in ((partners, "acme", None), (strangers, "mallory", None), (renewed, "acme-2027", None),
                             (strangers, "pinned", "clientAuth")):  # fmt: skip
        make_client_cert(where, cn, usage)
        paths[cn] = (where / f"{cn}.crt", where / f"{cn}.key")
    # The API's TLS listener: a server certificate in Tyk's store (the platform's, not a tenant's).
    server = tyk_admin(stack).post("/tyk/certs", params={"org_id": "platform"},
                                   content=server_cert.read_bytes() + server_key.read_bytes())  # fmt: skip
    assert server.status_code in (200, 403), server.text  # 403: already stored (same certificate)
    server_id = "platform" + hashlib.sha256(first_certificate_der(server_cert.read_text())).hexdigest()
    put_secret(admin, world.ns, "partners-ca", {"ca.crt": ca.read_text()})
    put_secret(admin, world.ns, "pinned-client", {"tls.crt": paths["pinned"][0].read_text()})

    port = free_port()
    name = f"mtls-{uuid.uuid4().hex[:6]}"
    world.apply("GatewayAPI", name, {
        "gateway": "tyk", "listenPath": f"/{name}/", "upstream": {"url": up.url},
        "mtls": {"allowed": [{"name": "partners-ca", "key": "ca.crt"}, {"name": "pinned-client", "key": "tls.crt"}]},
        "tyk": {"protocol": "https", "listen_port": port, "certificates": [server_id]},
    })  # fmt: skip
    obj = world.ready("GatewayAPI", name)
    api_id = obj["status"]["gatewayId"]
    url = f"https://127.0.0.1:{port}/{name}/x"
    wait_until(lambda: status(url, ca, paths["acme"]) == 200, timeout=30, what="the TLS listener serving the API")
    assert status(url, ca, None) in (0, 401, 403)  # no client certificate
    assert status(url, ca, paths["mallory"]) in (0, 401, 403)  # signed by another CA
    assert status(url, ca, paths["pinned"]) == 200  # allowed as itself (its CA is not)
    pinned = set(stored(stack, api_id))
    assert len(pinned) == 2

    # The CA renewed in its Secret: its clients get in, the old CA's no longer, and the old copy leaves Tyk.
    put_secret(admin, world.ns, "partners-ca", {"ca.crt": (renewed / "ca.crt").read_text()})
    wait_until(lambda: status(url, ca, paths["acme-2027"]) == 200, timeout=120, what="the renewed CA's client let in")
    wait_until(lambda: status(url, ca, paths["acme"]) in (0, 401, 403), timeout=120,
               what="the old CA's client refused")  # fmt: skip
    now = set(stored(stack, api_id))
    assert len(now) == 2 and len(now & pinned) == 1  # the renewed CA replaced the old one; the pinned one stays

    # mTLS and a key together (both must pass).
    world.patch("GatewayAPI", name, {"auth": "key"})
    world.ready("GatewayAPI", name)
    key = f"k-{uuid.uuid4().hex[:6]}"
    world.apply("GatewayKey", key, {"gateway": "tyk", "apis": [{"name": name}]})
    world.ready("GatewayKey", key)
    token = world.secret(key)["Authorization"]
    wait_until(lambda: status(url, ca, paths["acme-2027"]) in (401, 403), timeout=30, what="a key now required")
    assert status(url, ca, paths["acme-2027"], {"Authorization": token}) == 200
    assert status(url, ca, paths["mallory"], {"Authorization": token}) in (0, 401, 403)

    world.delete("GatewayKey", key)
    world.delete("GatewayAPI", name)
    assert stored(stack, api_id) == []
