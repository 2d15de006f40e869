"""Deletions across an operator restart, on the real stack (apiserver, Tyk 5.10.2): a deletion the operator did not
finish (stopped, its cleanup handed over and pending, or deleted while it was down) is finished by the next one; and
objects from before session 21, held by the older finalizer (`torii.dev/finalizer`) alone, are cleaned up too: one
deleted while no operator ran (kopf sees no finalizer of its own on it, so runs no deletion handler: Torii finds it
from its watch event), one that gets kopf's finalizer and is deleted later. Each is released only once Tyk serves
nothing of it."""

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
from torii.handlers.cleanup import FINALIZER, LEGACY_FINALIZER
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


def test_a_cleanup_left_by_a_stopped_operator_and_older_objects_are_finished_by_the_next(
    crds: Stack, admin: client.ApiClient, ns: str, operator_of: Start
) -> None:
    world = World(admin, ns, crds)
    tyk = crds.env["TYK_URL"]
    left, older_deleted, older = (f"{what}-{uuid.uuid4().hex[:6]}" for what in ("left", "older-deleted", "older"))
    names = (left, older_deleted, older)

    def served(api: str) -> int:
        return httpx.get(f"{tyk}/{api}/x").status_code

    def released(api: str) -> bool:
        return gone(world.custom.get_namespaced_custom_object, GROUP, VERSION, ns, "gatewayapis", api)

    with upstream("cleanup-restart") as up:
        with operator_of("first"):
            for api in names:
                world.create("GatewayAPI", api, {"gateway": "tyk", "listenPath": f"/{api}/",
                                                 "upstream": {"url": up.url}})  # fmt: skip
            for api in names:
                world.ready("GatewayAPI", api, timeout=90)
                assert world.get("GatewayAPI", api)["metadata"]["finalizers"] == [FINALIZER]
        # Stopped. Two objects as an older Torii left them: held by the older finalizer alone.
        for api in (older_deleted, older):
            to_older = f'[{{"op": "replace", "path": "/metadata/finalizers", "value": ["{LEGACY_FINALIZER}"]}}]'
            patched = kubectl("patch", "gatewayapi", api, "-n", ns, "--type=json", "-p", to_older,
                              kubeconfig=crds.kubeconfig)  # fmt: skip
            assert patched.returncode == 0, patched.stderr
        for api in (left, older_deleted):
            world.delete("GatewayAPI", api, wait=False)
        assert world.get("GatewayAPI", left)["metadata"]["finalizers"] == [FINALIZER]
        assert world.get("GatewayAPI", older_deleted)["metadata"]["finalizers"] == [LEGACY_FINALIZER]
        assert [served(api) for api in names] == [200, 200, 200]  # nothing cleaned up yet
        with operator_of("second"):
            for api in (left, older_deleted):
                wait_until(lambda a=api: released(a), timeout=90, what=f"{api}'s deletion finished")
                assert served(api) == 404
            # The older object still served gets kopf's finalizer; its deletion releases both.
            wait_until(lambda: FINALIZER in world.get("GatewayAPI", older)["metadata"]["finalizers"], timeout=60,
                       what="kopf's finalizer added to the older object")  # fmt: skip
            assert served(older) == 200
            world.delete("GatewayAPI", older, wait=False)
            wait_until(lambda: released(older), timeout=90, what="the older object's deletion finished")
            assert served(older) == 404
