"""Basic auth and JWT end to end on the real Tyk 5.10.2 and Otoroshi 17.17.0: a valid credential passes, a
missing, wrong or expired one is refused, rotation and revocation hold, and Ready means the gateway serves it."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kubernetes import client

from support.operator import Operator, running_operator, stack_gateways
from support.stack import Stack
from support.upstream import Upstream, upstream
from support.wait import wait_until
from support.world import World


@pytest.fixture(scope="module")
def live(crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    gateways, secret = stack_gateways(crds, "torii-gateways-auth")
    crds.require_any()
    with running_operator(crds, admin, tmp_path_factory.mktemp("auth"), gateways=gateways, secret_data=secret,
                          namespaces=[ns], secret_name="torii-gateways-auth", drift_interval=2.0) as op:  # fmt: skip
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
