"""A deletion handed over to Torii (`torii.handlers.cleanup`) survives an operator restart, on the real stack
(apiserver, Tyk 5.10.2): an object that kopf let go of but Torii's finalizer still holds (the operator stopped
before its cleanup was done) is found by the next operator from its watch event, cleaned up on the gateway, then
released. Before that, nothing removed it from Tyk."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from support.kube import gone, kubectl
from support.operator import Operator, running_operator, stack_gateways
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import World
from torii.handlers.cleanup import CLEANUP_FINALIZER, KOPF_FINALIZER
from torii.models.common import GROUP, VERSION

Start = Callable[[str], AbstractContextManager[Operator]]


@pytest.fixture
def operator_of(crds: Stack, admin: client.ApiClient, ns: str, tmp_path: Path) -> Start:
    """Start an operator watching the module's namespace (one run at a time)."""
    crds.require("tyk")
    gateways, secret = stack_gateways(crds, "torii-gateways-cleanup")

    def start(run: str) -> AbstractContextManager[Operator]:
        return running_operator(crds, admin, tmp_path / run, gateways=gateways, secret_data=secret, namespaces=[ns],
                                secret_name="torii-gateways-cleanup", drift_interval=30.0)  # fmt: skip

    return start


def test_a_cleanup_left_by_a_stopped_operator_is_finished_by_the_next(
    crds: Stack, admin: client.ApiClient, ns: str, operator_of: Start
) -> None:
    world = World(admin, ns, crds)
    api, tyk = f"api-{uuid.uuid4().hex[:6]}", crds.env["TYK_URL"]
    with upstream("cleanup-restart") as up:
        with operator_of("first"):
            world.create("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/", "upstream": {"url": up.url}})
            world.ready("GatewayAPI", api, timeout=90)
        # Stopped. The deletion is where an operator that handed it over and then stopped left it: kopf's
        # finalizer released, Torii's still there.
        world.delete("GatewayAPI", api, wait=False)
        held = world.get("GatewayAPI", api)["metadata"]["finalizers"]
        assert held == [KOPF_FINALIZER, CLEANUP_FINALIZER], held
        kopf_first = '[{"op": "remove", "path": "/metadata/finalizers/0"}]'
        released = kubectl("patch", "gatewayapi", api, "-n", ns, "--type=json", "-p", kopf_first,
                           kubeconfig=crds.kubeconfig)  # fmt: skip
        assert released.returncode == 0, released.stderr
        assert world.get("GatewayAPI", api)["metadata"]["finalizers"] == [CLEANUP_FINALIZER]
        assert httpx.get(f"{tyk}/{api}/x").status_code == 200  # nothing cleaned up yet
        with operator_of("second"):
            wait_until(lambda: gone(world.custom.get_namespaced_custom_object, GROUP, VERSION, ns, "gatewayapis",
                                    api), timeout=90, what="the left-behind deletion finished")  # fmt: skip
            assert httpx.get(f"{tyk}/{api}/x").status_code == 404
