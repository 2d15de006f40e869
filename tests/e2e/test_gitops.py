"""GitOps behaviour on the real apiserver: after the operator reconciled, a server-side diff of the applied
manifests is empty (the operator never writes spec, labels or the user's annotations), and the Argo CD health
script maps the statuses the operator actually wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.argocd import health
from support.kube import kubectl, namespace
from support.operator import Operator, release_all, running_operator, unreachable_gateways
from support.stack import Stack
from support.world import World
from torii.models.common import API_VERSION


@pytest.fixture(scope="module")
def live(crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    gateways, secrets = unreachable_gateways("torii-gateways-gitops")
    with running_operator(crds, admin, tmp_path_factory.mktemp("gitops"), gateways=gateways, secret_data=secrets,
                          namespaces=[ns], secret_name="torii-gateways-gitops") as op:  # fmt: skip
        yield op
        release_all(admin, ns)


def manifests(ns: str) -> list[dict[str, Any]]:
    meta = {"namespace": ns, "labels": {"team": "shop", "argocd.argoproj.io/instance": "shop"},
            "annotations": {"owner": "shop-team@example.com"}}  # fmt: skip
    return [
        {"apiVersion": API_VERSION, "kind": "GatewayAPI", "metadata": {"name": "orders", **meta},
         "spec": {"listenPath": "/orders/", "upstream": {"url": "http://orders:8080"}, "auth": "key",
                  "deletionPolicy": "Orphan"}},
        {"apiVersion": API_VERSION, "kind": "GatewayKey", "metadata": {"name": "checkout", **meta},
         "spec": {"apis": [{"name": "orders"}], "rateLimit": {"rate": 5, "per": 1}}},
        {"apiVersion": API_VERSION, "kind": "OAuthClient", "metadata": {"name": "web", **meta},
         "spec": {"api": "orders", "redirectUri": "https://web/cb"}},
    ]  # fmt: skip


def test_server_side_diff_is_empty_after_reconcile(crds: Stack, world: World, ns: str, tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump_all(manifests(ns)))
    applied = kubectl("apply", "--server-side", "--field-manager=argocd-controller", "-f", str(path),
                      kubeconfig=crds.kubeconfig)  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    objects = [world.reconciled(k, n) for k, n in (("GatewayAPI", "orders"), ("GatewayKey", "checkout"),
                                                   ("OAuthClient", "web"))]  # fmt: skip
    for obj in objects:
        assert obj["metadata"]["labels"] == {"team": "shop", "argocd.argoproj.io/instance": "shop"}
        assert obj["metadata"]["annotations"]["owner"] == "shop-team@example.com"
    diff = kubectl("diff", "--server-side", "--field-manager=argocd-controller", "-f", str(path),
                   kubeconfig=crds.kubeconfig)  # fmt: skip
    assert diff.returncode == 0, f"unexpected diff:\n{diff.stdout}{diff.stderr}"


def test_argocd_health_of_real_statuses(world: World, admin: client.ApiClient) -> None:
    spec = {"listenPath": "/h/", "upstream": {"url": "http://h:80"}, "deletionPolicy": "Orphan"}
    world.create("GatewayAPI", "health", spec)
    failing = world.reconciled("GatewayAPI", "health")
    assert health(failing) == (
        "Degraded",
        next(f"{c['reason']}: {c['message']}" for c in failing["status"]["conditions"] if c["type"] == "Ready"),
    )
    # The same real status, seen right after someone edits the spec (generation moves ahead of the status).
    edited = {**failing, "metadata": {**failing["metadata"], "generation": failing["metadata"]["generation"] + 1}}
    assert health(edited)[0] == "Progressing"
    with namespace(admin, "unwatched") as other:  # no operator here: no status at all
        unwatched = World(admin, other)
        unwatched.create("GatewayAPI", "health", spec)
        untouched = unwatched.get("GatewayAPI", "health")
        assert "status" not in untouched and health(untouched)[0] == "Progressing"
