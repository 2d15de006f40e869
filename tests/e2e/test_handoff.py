"""Changes a kopf handler hands off (`torii.handlers.kinds.Holding`, beyond `maxHeldChanges`): the reconcile goes
on without kopf and writes its own status, on the real stack (apiserver, Tyk 5.10.2). This module's operator
holds none (`maxHeldChanges: 0`), so every change is handed off, as the changes of a big burst are.

A handed-off API is Ready only once Tyk serves it, with its status and event written by Torii. A key waiting for
its GatewayAPI, changed again while it waits: the older change stops and the newer one's status is the one left.
Deleted while it waits: nothing is created on the gateway afterwards. A deletion is handed over too: kopf lets go,
the finalizer, left to Torii, holds the object until the gateway serves nothing of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client

from support.kube import gone
from support.metrics import counter
from support.operator import Operator, running_operator, stack_gateways
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import World
from torii.handlers.cleanup import FINALIZER
from torii.models.common import GROUP, VERSION

HANDLED = "torii.dev/last-handled-configuration"  # kopf writes it when the change handler returns


@pytest.fixture(scope="module")
def live(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[Operator]:
    crds.require("tyk")
    gateways, secret = stack_gateways(crds, "torii-gateways-handoff")
    with running_operator(
        crds, admin, tmp_path_factory.mktemp("handoff"), gateways=gateways, secret_data=secret, namespaces=[ns],
        secret_name="torii-gateways-handoff", drift_interval=30.0, settings={"maxHeldChanges": 0},
        metrics_port=metrics_port,
    ) as op:  # fmt: skip
        yield op
        World(admin, ns, crds).delete_all()


def handed_off(port: int, kind: str) -> float:
    """Changes of `kind` the operator converged without a kopf worker (its metric)."""
    return counter(httpx.get(f"http://127.0.0.1:{port}/metrics").text, "torii_changes_handed_off_total", kind=kind)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def handled(world: World, kind: str, name: str) -> str:
    """The digest kopf recorded when the object's last change handler returned ("" before)."""
    return str((world.get(kind, name)["metadata"].get("annotations") or {}).get(HANDLED, ""))


def test_a_handed_off_api_is_ready_once_served_with_its_status_and_event(
    world: World, live: Operator, crds: Stack, metrics_port: int
) -> None:
    api = unique("api")
    before = handed_off(metrics_port, "GatewayAPI")
    with upstream("handoff") as up:
        world.create("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "upstream": {"url": up.url}})
        obj = world.ready("GatewayAPI", api, timeout=90)
        assert handled(world, "GatewayAPI", api)  # kopf's handler returned: the status came from Torii alone
        assert handed_off(metrics_port, "GatewayAPI") == before + 1  # this change went the handed-off way
        assert httpx.get(f"{crds.env['TYK_URL']}/{api}/x").status_code == 200  # Ready means served
    assert World.condition(obj)["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["gatewayId"]
    wait_until(lambda: "Created" in {e.reason for e in world.events(api)}, timeout=30, what="its Created event")


def test_a_newer_change_supersedes_a_handed_off_one(world: World, live: Operator, crds: Stack) -> None:
    api, key = unique("api"), unique("key")
    world.create("GatewayKey", key, {"gateway": "tyk", "apis": [{"name": api}], "rateLimit": {"rate": 3, "per": 60}})
    world.reason("GatewayKey", key, "WaitingForAPI", timeout=60)
    wait_until(lambda: handled(world, "GatewayKey", key), timeout=60, what="the first change handed off")
    first = handled(world, "GatewayKey", key)
    world.apply("GatewayKey", key, {"gateway": "tyk", "apis": [{"name": api}], "rateLimit": {"rate": 7, "per": 60}})
    wait_until(lambda: handled(world, "GatewayKey", key) not in ("", first), timeout=60,
               what="the second change handed off")  # fmt: skip
    # Both changes still wait for the API: now it comes, and wakes them.
    with upstream("handoff") as up:
        world.create("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "auth": "key",
                                         "upstream": {"url": up.url}})  # fmt: skip
        obj = world.ready("GatewayKey", key, timeout=90)
        # Ready means served: the Secret's key gets through Tyk.
        assert httpx.get(f"{crds.env['TYK_URL']}/{api}/x", headers=world.secret(key)).status_code == 200
    assert World.condition(obj)["observedGeneration"] == obj["metadata"]["generation"] == 2
    tyk = httpx.Client(base_url=crds.env["TYK_URL"], headers={"X-Tyk-Authorization": crds.env["TYK_SECRET"]})
    session = tyk.get(f"/tyk/keys/{obj['status']['keyId']}", params={"hashed": "1"}).json()
    assert (session["rate"], session["per"]) == (7, 60), session  # the newer spec's, not the older one's


def test_a_key_deleted_while_its_change_waits_leaves_nothing(world: World, live: Operator, crds: Stack) -> None:
    api, key, witness = unique("api"), unique("key"), unique("witness")
    tyk = httpx.Client(base_url=crds.env["TYK_URL"], headers={"X-Tyk-Authorization": crds.env["TYK_SECRET"]})
    before = set(tyk.get("/tyk/keys/").json().get("keys") or [])
    for name in (key, witness):
        world.create("GatewayKey", name, {"gateway": "tyk", "apis": [{"name": api}]})
    for name in (key, witness):
        world.reason("GatewayKey", name, "WaitingForAPI", timeout=60)
        wait_until(lambda n=name: handled(world, "GatewayKey", n), timeout=60, what=f"{name}'s change handed off")
    world.delete("GatewayKey", key)
    with upstream("handoff") as up:
        world.create("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "auth": "key",
                                         "upstream": {"url": up.url}})  # fmt: skip
        # The API being served wakes both waiting changes at once: the witness's goes on, the deleted key's stops.
        made = world.ready("GatewayKey", witness, timeout=90)["status"]["keyId"]
    api_id = world.get("GatewayAPI", api)["status"]["gatewayId"]
    new = set(tyk.get("/tyk/keys/").json().get("keys") or []) - before  # (other modules' keys too, in parallel)
    for_api = {h for h in new if api_id in (tyk.get(f"/tyk/keys/{h}", params={"hashed": "1"}).json().get(
        "access_rights") or {})}  # fmt: skip
    assert for_api == {made}, for_api
    assert key not in [s.metadata.name for s in world.core.list_namespaced_secret(world.ns).items]


def test_a_handed_over_deletion_is_held_by_its_finalizer_until_the_gateway_serves_nothing(
    world: World, live: Operator, crds: Stack, metrics_port: int
) -> None:
    api = unique("api")
    tyk = crds.env["TYK_URL"]
    with upstream("handoff") as up:
        world.create("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "upstream": {"url": up.url}})
        world.ready("GatewayAPI", api, timeout=90)
        # One finalizer, kopf's; Torii releases it for a handed-over deletion (torii.handlers.cleanup).
        assert world.get("GatewayAPI", api)["metadata"]["finalizers"] == [FINALIZER]
        assert httpx.get(f"{tyk}/{api}/x").status_code == 200
        before = handed_off(metrics_port, "GatewayAPI")
        world.delete("GatewayAPI", api, wait=False)
        # kopf lets go at once (its worker and the body freed); the finalizer holds the object meanwhile.
        wait_until(lambda: handed_off(metrics_port, "GatewayAPI") == before + 1, timeout=30,
                   what="the deletion handed over")  # fmt: skip
        wait_until(lambda: gone(world.custom.get_namespaced_custom_object, GROUP, VERSION, world.ns, "gatewayapis",
                                api), timeout=90, what="the object released")  # fmt: skip
        # Released only once Tyk serves nothing of it.
        assert httpx.get(f"{tyk}/{api}/x").status_code == 404
