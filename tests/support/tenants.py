"""Tenants as a platform team sets them up: a ServiceAccount per namespace whose Role allows the Torii kinds and
Secrets of that namespace, and nothing else (no status subresource, no other namespace). Tests act as the
tenant through a kubeconfig with that identity's token: the real apiserver enforces the RBAC."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client

from support.kube import api_client, kubectl
from support.world import GROUP, PLURALS, World

TENANT_RULES = [
    {"apiGroups": [GROUP], "resources": sorted(PLURALS.values()),
     "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "create", "update", "patch",
                                                            "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
]  # fmt: skip


@dataclass
class Tenant:
    namespace: str
    kubeconfig: str
    api: client.ApiClient

    @property
    def world(self) -> World:
        """The tenant's objects, as the tenant sees them (its own identity, its RBAC)."""
        return World(self.api, self.namespace)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)


def sa_kubeconfig(admin_kubeconfig: str, namespace: str, sa: str, path: Path) -> str:
    """A kubeconfig that authenticates as ServiceAccount `namespace/sa` (a TokenRequest token)."""
    token = kubectl("create", "token", sa, "-n", namespace, "--duration=2h", kubeconfig=admin_kubeconfig)
    assert token.returncode == 0, token.stderr
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    server = admin["clusters"][0]["cluster"]["server"]
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "sa", "user": {"token": token.stdout.strip()}}],
        "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
    }))  # fmt: skip
    return str(path)


def make_tenant(admin: client.ApiClient, admin_kubeconfig: str, namespace: str, directory: Path) -> Tenant:
    """The namespace's tenant identity: ServiceAccount `tenant`, Role `torii-tenant` (TENANT_RULES), binding."""
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "tenant"}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "torii-tenant"}, "rules": TENANT_RULES})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "torii-tenant"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "torii-tenant"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}],
    })  # fmt: skip
    path = sa_kubeconfig(admin_kubeconfig, namespace, "tenant", directory / f"{namespace}.kubeconfig")
    return Tenant(namespace, path, api_client(path))
