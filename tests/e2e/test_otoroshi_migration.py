"""Switching an Otoroshi connection from services to routes, on the real Otoroshi 17.17.0.

Torii publishes 12 APIs as service descriptors (`entity: services`): keyed ones with a key each, keyless ones,
and an API group with a group key. A client loop sends traffic to every API with the credentials of their
Secrets. The operator is then restarted with the connection's default entity, `routes`: every service becomes a
route with the same id, the keys are authorised on the routes, the services are deleted. Not one client request
may fail, no credential may change, and afterwards `GET /api/services` holds nothing of Torii's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from support.operator import Operator, one_gateway_operator
from support.stack import Stack
from support.traffic import Traffic
from support.upstream import upstream
from support.wait import wait_until
from support.world import World

KEYED, KEYLESS, GROUPED = 6, 3, 3
DRIFT = 2.0


@pytest.fixture(scope="module")
def live() -> Operator | None:
    return None  # this module runs its own operators, one per entity


def oto_admin(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.env["OTOROSHI_URL"], auth=(stack.env["OTOROSHI_CLIENT_ID"], stack.env["OTOROSHI_CLIENT_SECRET"]),
        headers={"Host": stack.env["OTOROSHI_API_HOST"]}, timeout=30,
    )  # fmt: skip


def ids_of(oto: httpx.Client, kind: str) -> set[str]:
    return {str(o["id"]) for o in oto.get(f"/api/{kind}").json()}


def test_switching_to_routes_moves_every_service_without_a_failed_request(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path: Path, metrics_port: int
) -> None:
    crds.require("otoroshi")
    world = World(admin, ns, crds)
    apis = [f"keyed-{i}" for i in range(KEYED)] + [f"open-{i}" for i in range(KEYLESS)]
    apis += [f"grouped-{i}" for i in range(GROUPED)]
    keys = [f"key-{i}" for i in range(KEYED)] + ["group-key"]
    host = f"api.{crds.env['OTOROSHI_DOMAIN']}"
    run = {"metrics_port": metrics_port, "drift_interval": DRIFT}
    with upstream("migrate") as up, oto_admin(crds) as oto:
        with one_gateway_operator(crds, admin, ns, tmp_path / "services", "otoroshi", entity="services", **run):
            for name in apis:
                spec: dict[str, Any] = {"gateway": "otoroshi", "listenPath": f"/{ns}/{name}/",
                                        "upstream": {"url": up.url}}  # fmt: skip
                if not name.startswith("open"):
                    spec["auth"] = "key"
                if name.startswith("grouped"):
                    spec["group"] = "shop"
                world.apply("GatewayAPI", name, spec)
            for i in range(KEYED):
                world.apply("GatewayKey", f"key-{i}", {"gateway": "otoroshi", "apis": [{"name": f"keyed-{i}"}]})
            world.apply("GatewayKey", "group-key", {"gateway": "otoroshi", "apiGroup": "shop"})
            gateway_ids = {n: world.ready("GatewayAPI", n, timeout=120)["status"]["gatewayId"] for n in apis}
            for name in keys:
                world.ready("GatewayKey", name, timeout=120)
            assert set(gateway_ids.values()) <= ids_of(oto, "services")
            assert not set(gateway_ids.values()) & ids_of(oto, "routes")
        credentials = {name: world.secret(name) for name in keys}

        def headers(name: str) -> dict[str, str]:
            key = "group-key" if name.startswith("grouped") else f"key-{name.split('-')[1]}"
            if name.startswith("open"):
                return {"Host": host}
            cred = credentials[key]
            return {"Host": host, "Otoroshi-Client-Id": cred["clientId"],
                    "Otoroshi-Client-Secret": cred["clientSecret"]}  # fmt: skip

        base = crds.env["OTOROSHI_URL"]
        traffic = Traffic([(f"{base}/{ns}/{name}/x", headers(name)) for name in apis]).start()
        try:
            with one_gateway_operator(crds, admin, ns, tmp_path / "routes", "otoroshi", **run):
                switched = traffic.total

                def migrated() -> bool:
                    routes, services = ids_of(oto, "routes"), ids_of(oto, "services")
                    keys_on_routes = all(
                        f"route_{gateway_ids[f'keyed-{i}']}"
                        in oto.get(f"/api/apikeys/{credentials[f'key-{i}']['clientId']}").json()["authorizedEntities"]
                        for i in range(KEYED)
                    )
                    ids = set(gateway_ids.values())
                    return ids <= routes and not ids & services and keys_on_routes

                wait_until(migrated, timeout=180, what="every service moved to a route, every key authorised on it")
                for name in apis:
                    world.ready("GatewayAPI", name, timeout=120)
                for name in keys:
                    world.ready("GatewayKey", name, timeout=120)
                # A few more rounds of traffic on the routes alone.
                settled = traffic.total
                wait_until(lambda: traffic.total >= settled + 3 * len(apis), timeout=60, what="traffic on routes")
                traffic.stop()
                assert traffic.failures == [], f"{len(traffic.failures)} of {traffic.total}: {traffic.failures[:5]}"
                assert switched < settled  # traffic went on across the switch
                assert {name: world.secret(name) for name in keys} == credentials  # no credential changed
                stored = oto.get(f"/api/routes/{gateway_ids['keyed-0']}").json()
                assert stored["metadata"]["torii.dev/name"] == "keyed-0"
                world.delete_all()
                assert not set(gateway_ids.values()) & (ids_of(oto, "routes") | ids_of(oto, "services"))
        finally:
            traffic.stop()
