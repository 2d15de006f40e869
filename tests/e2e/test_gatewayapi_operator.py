"""The operator against the real apiserver, on the paths that need no working gateway.

Gateways here are real connection failures (a closed port), unknown names, unsupported features and unreadable
credentials: Ready=False with a reason and a message saying what to fix, Events, finalizers that never hang
when the user says Orphan, and one bad object never blocking another.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from support.kube import gone
from support.operator import Operator, release_all, running_operator, unreachable_gateways
from support.stack import Stack
from support.wait import wait_until
from support.world import World

KIND = "GatewayAPI"
LEAK_WATCH: list[str] = []  # the admin credentials this module's operator holds


@pytest.fixture(scope="module")
def live(crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    gateways, secrets = unreachable_gateways("torii-gateways-errors", ("tyk", "tyk"), ("otoroshi", "otoroshi"))
    # Credentials that cannot be read: only the objects using this gateway are affected.
    gateways.append({**gateways[0], "name": "broken", "secretRef": {**gateways[0]["secretRef"], "key": "nope"}})
    LEAK_WATCH.extend([secrets["tyk"], secrets["secret"]])  # the client id is not a secret
    with running_operator(crds, admin, tmp_path_factory.mktemp("operator"), gateways=gateways, secret_data=secrets,
                          namespaces=[ns], secret_name="torii-gateways-errors") as op:  # fmt: skip
        yield op
        release_all(admin, ns)


SPEC = {"listenPath": "/orders/", "upstream": {"url": "http://127.0.0.1:9/"}}


def test_unreachable_gateway_is_reported_and_does_not_block_others(world: World, live: Operator) -> None:
    unreachable = world.new(KIND, {**SPEC, "gateway": "tyk"})
    unknown = world.new(KIND, {**SPEC, "gateway": "nope"})

    cond = world.reason(KIND, unreachable, "GatewayUnavailable", timeout=60)
    assert cond["status"] == "False"
    assert "gateway tyk" in cond["message"] and "cannot reach" in cond["message"]

    cond = world.reason(KIND, unknown, "GatewayNotConfigured", timeout=60)
    assert "no gateway connection named 'nope'" in cond["message"]
    assert "tyk" in cond["message"]  # lists what is configured

    obj = world.get(KIND, unreachable)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["gateway"] == "tyk"
    assert obj["metadata"]["finalizers"] == ["torii.dev/cleanup"]
    assert not any(k.startswith("kopf.zalando.org") for k in obj["metadata"].get("annotations", {}))
    wait_until(
        lambda: any(e.reason == "GatewayUnavailable" and e.type == "Warning" for e in world.events(unreachable)),
        what="GatewayUnavailable event",
    )


def test_unsupported_feature_is_permanent_and_named(world: World, live: Operator) -> None:
    name = world.new(KIND, {**SPEC, "gateway": "otoroshi", "auth": "oauth2"})
    cond = world.reason(KIND, name, "Unsupported", timeout=60)
    assert "spec.auth" in cond["message"] and "oauth2" in cond["message"]


def test_unreadable_gateway_credentials_affect_only_that_gateway(world: World, live: Operator) -> None:
    name = world.new(KIND, {**SPEC, "gateway": "broken"})
    cond = world.reason(KIND, name, "GatewayNotConfigured", timeout=60)
    assert "gateway broken is misconfigured" in cond["message"]
    assert "torii-gateways-errors" in cond["message"] and "'nope'" in cond["message"]


def test_delete_with_unreachable_gateway_keeps_finalizer_until_orphaned(world: World, live: Operator) -> None:
    name = world.new(KIND, {**SPEC, "gateway": "tyk"})
    world.reason(KIND, name, "GatewayUnavailable", timeout=60)
    world.delete(KIND, name, wait=False)

    cond = world.reason(KIND, name, "DeleteFailed", timeout=60)
    assert "cannot reach" in cond["message"] and "deletionPolicy: Orphan" in cond["message"]
    obj = world.get(KIND, name)
    # Held by its finalizer, which kopf leaves to Torii (the retries are Torii's, not a kopf worker's).
    assert obj["metadata"].get("deletionTimestamp") and "torii.dev/cleanup" in obj["metadata"]["finalizers"]
    wait_until(lambda: any(e.reason == "DeleteFailed" for e in world.events(name)), what="DeleteFailed event")

    world.patch(KIND, name, {"deletionPolicy": "Orphan"})
    wait_until(lambda: gone(world.get, KIND, name), timeout=90, what="orphaned object released")


def test_orphan_policy_releases_immediately(world: World, live: Operator) -> None:
    name = world.new(KIND, {**SPEC, "gateway": "tyk", "deletionPolicy": "Orphan"})
    world.reason(KIND, name, "GatewayUnavailable", timeout=60)
    world.delete(KIND, name, wait=False)
    wait_until(lambda: gone(world.get, KIND, name), timeout=30, what="orphaned object deleted")


def test_admin_credentials_never_leak(world: World, live: Operator, tmp_path: Path) -> None:
    name = world.new(KIND, {**SPEC, "gateway": "tyk"})
    world.reason(KIND, name, "GatewayUnavailable", timeout=60)
    everything = str(world.list(KIND))
    everything += str(world.core.list_namespaced_event(world.ns).to_dict())
    everything += live.log()
    assert LEAK_WATCH and not [secret for secret in LEAK_WATCH if secret in everything]
