"""kopf's workers bounded (`maxObjectWorkers`), on the real stack (apiserver, Tyk 5.10.2): this module's operator
processes two objects of a kind at once and holds one change (`maxHeldChanges: 1`). A key applied before its
GatewayAPI waits for it inside one of the two workers; the APIs still go through the other, the key is woken and
served, and a deletion of everything, each waiting for Tyk inside a worker, leaves nothing behind. Deletions that
an unreachable gateway refuses are retried by Torii, not inside kopf's workers: two of them leave both GatewayAPI
workers free for a new API, and `deletionPolicy: Orphan` releases them at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client

from support.operator import Operator, release_all, running_operator, stack_gateways, unreachable_gateways
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import World


@pytest.fixture(scope="module")
def live(crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    crds.require("tyk")
    gateways, secret = stack_gateways(crds, "torii-gateways-workers")
    [down], _ = unreachable_gateways("torii-gateways-workers")  # a closed port, its credential the stack Tyk's
    gateways.append({**down, "name": "down"})
    with running_operator(
        crds, admin, tmp_path_factory.mktemp("workers"), gateways=gateways, secret_data=secret, namespaces=[ns],
        secret_name="torii-gateways-workers", drift_interval=30.0,
        settings={"maxObjectWorkers": 2, "maxHeldChanges": 1},
    ) as op:  # fmt: skip
        yield op
        release_all(admin, ns)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_two_workers_converge_apis_past_a_waiting_key_and_delete_everything(
    world: World, live: Operator, crds: Stack
) -> None:
    apis, key = [unique("api") for _ in range(4)], unique("key")
    protected = apis[-1]
    tyk = crds.env["TYK_URL"]
    world.create("GatewayKey", key, {"gateway": "tyk", "apis": [{"name": protected}]})
    world.reason("GatewayKey", key, "WaitingForAPI", timeout=60)
    with upstream("workers") as up:
        for name in apis:
            auth = {"auth": "key"} if name == protected else {}
            world.create("GatewayAPI", name, {"gateway": "tyk", "listenPath": f"/{name}/", **auth,
                                              "upstream": {"url": up.url}})  # fmt: skip
        for name in apis:
            world.ready("GatewayAPI", name, timeout=90)
        assert [httpx.get(f"{tyk}/{name}/x").status_code for name in apis[:-1]] == [200] * 3  # Ready means served
        assert httpx.get(f"{tyk}/{protected}/x").status_code == 401  # keys only
        # Woken by its API (not left waiting behind the workers): its Secret's key gets through Tyk.
        world.ready("GatewayKey", key, timeout=90)
        assert httpx.get(f"{tyk}/{protected}/x", headers=world.secret(key)).status_code == 200
    for name in apis:
        world.delete("GatewayAPI", name, wait=False)
    world.delete("GatewayKey", key, wait=False)
    wait_until(lambda: not world.list("GatewayAPI") and not world.list("GatewayKey"), timeout=120,
               what="every object's finalizer released")  # fmt: skip
    assert [httpx.get(f"{tyk}/{name}/x").status_code for name in apis] == [404] * 4


def test_deletions_stuck_on_an_unreachable_gateway_hold_no_worker_and_orphaning_frees_them(
    world: World, live: Operator, crds: Stack
) -> None:
    stuck = [world.new("GatewayAPI", {"gateway": "down", "listenPath": f"/{unique('down')}/",
                                      "upstream": {"url": "http://127.0.0.1:9/"}}) for _ in range(2)]  # fmt: skip
    for name in stuck:
        world.reason("GatewayAPI", name, "GatewayUnavailable", timeout=60)
        world.delete("GatewayAPI", name, wait=False)
    for name in stuck:
        world.reason("GatewayAPI", name, "DeleteFailed", timeout=60)
        # Retried by Torii: kopf's worker lets go, the finalizer (left to Torii) holds the object.
        wait_until(lambda n=name: world.get("GatewayAPI", n)["metadata"]["finalizers"] == ["torii.dev/cleanup"],
                   timeout=30, what=f"{name} held by Torii's finalizer alone")  # fmt: skip
    api, key = unique("api"), unique("key")
    with upstream("workers-bound") as up:
        # Both of the kind's two workers are free: a new API is served while the deletions still wait.
        world.create("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "auth": "key",
                                         "upstream": {"url": up.url}})  # fmt: skip
        world.create("GatewayKey", key, {"gateway": "tyk", "apis": [{"name": api}]})
        world.ready("GatewayAPI", api, timeout=90)
        world.ready("GatewayKey", key, timeout=90)
        tyk = crds.env["TYK_URL"]
        assert httpx.get(f"{tyk}/{api}/x", headers=world.secret(key)).status_code == 200
        assert {obj["metadata"]["name"] for obj in world.list("GatewayAPI")} >= set(stuck)  # still waiting
        for name in stuck:
            world.patch("GatewayAPI", name, {"deletionPolicy": "Orphan"})  # the documented escape, taken at once
        wait_until(lambda: not any(obj["metadata"]["name"] in stuck for obj in world.list("GatewayAPI")),
                   timeout=30, what="orphaned deletions released")  # fmt: skip
    world.delete("GatewayKey", key)
    world.delete("GatewayAPI", api)
    assert httpx.get(f"{tyk}/{api}/x").status_code == 404
