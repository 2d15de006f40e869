"""The local control plane is a real one: apiserver, etcd, RBAC, namespace and garbage-collector controllers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from kubernetes import client

from support.kube import api_client, gone, namespace, status_of
from support.stack import Stack
from support.wait import wait_until


@pytest.fixture(scope="module")
def admin(stack: Stack) -> Iterator[client.ApiClient]:
    api = api_client(stack.kubeconfig)
    yield api
    api.close()


def test_apiserver_answers_readyz(admin: client.ApiClient) -> None:
    cfg = admin.configuration
    token = cfg.auth_settings()["BearerToken"]["value"]
    resp = httpx.get(f"{cfg.host}/readyz", headers={"Authorization": token}, verify=False)
    assert resp.status_code == 200
    assert resp.text == "ok"
    # /readyz is public by design; the API itself is not.
    assert httpx.get(f"{cfg.host}/api/v1/namespaces", verify=False).status_code in (401, 403)
    version = client.VersionApi(admin).get_code()
    assert version.major == "1" and version.git_version.startswith("v1.32.")


def test_crd_and_custom_resource_in_a_namespace(admin: client.ApiClient) -> None:
    group, plural = "stacktest.torii.dev", f"widgets{uuid.uuid4().hex[:6]}"
    ext = client.ApiextensionsV1Api(admin)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": "Widget" + plural[7:].upper()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)
    try:
        wait_until(
            lambda: any(
                c.type == "Established" and c.status == "True"
                for c in (ext.read_custom_resource_definition(f"{plural}.{group}").status.conditions or [])
            ),
            what="CRD established",
        )
        custom = client.CustomObjectsApi(admin)
        with namespace(admin) as ns:
            body = {
                "apiVersion": f"{group}/v1",
                "kind": crd["spec"]["names"]["kind"],  # type: ignore[index]
                "metadata": {"name": "w1"},
                "spec": {"size": 3},
            }
            # The apiserver may need a moment to serve a just-established CRD's endpoint.
            wait_until(
                lambda: status_of(custom.create_namespaced_custom_object, group, "v1", ns, plural, body) == 200,
                what="custom resource created",
            )
            got = custom.get_namespaced_custom_object(group, "v1", ns, plural, "w1")
            assert got["spec"] == {"size": 3}
            # The schema is enforced: size must be >= 1.
            bad = {**body, "metadata": {"name": "w2"}, "spec": {"size": 0}}
            assert status_of(custom.create_namespaced_custom_object, group, "v1", ns, plural, bad) == 422
    finally:
        ext.delete_custom_resource_definition(f"{plural}.{group}")


def test_namespace_deletion_completes(admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    with namespace(admin, "del") as ns:
        core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c")))
    # The namespace controller must empty it and remove the finalizer; without it this hangs in Terminating.
    wait_until(lambda: gone(core.read_namespace, ns), timeout=60, what=f"namespace {ns} deleted")


def test_owner_reference_garbage_collection(admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    with namespace(admin, "gc") as ns:
        owner = core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
        ref = client.V1OwnerReference(api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid)
        core.create_namespaced_secret(
            ns, client.V1Secret(metadata=client.V1ObjectMeta(name="owned", owner_references=[ref]))
        )
        core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="unowned")))
        core.delete_namespaced_config_map("owner", ns)
        wait_until(lambda: gone(core.read_namespaced_secret, "owned", ns), timeout=60, what="owned secret GC'd")
        assert status_of(core.read_namespaced_secret, "unowned", ns) == 200


def test_default_service_account_is_created(admin: client.ApiClient) -> None:
    core = client.CoreV1Api(admin)
    with namespace(admin, "sa") as ns:
        wait_until(
            lambda: status_of(core.read_namespaced_service_account, "default", ns) == 200, what="default ServiceAccount"
        )


def test_restricted_user_needs_rbac(stack: Stack, admin: client.ApiClient) -> None:
    restricted = api_client(stack.restricted_kubeconfig)
    rcore = client.CoreV1Api(restricted)
    rbac = client.RbacAuthorizationV1Api(admin)
    with namespace(admin, "rbac") as ns:
        assert status_of(rcore.list_namespaced_config_map, ns) == 403
        assert status_of(rcore.list_namespace) == 403
        rbac.create_namespaced_role(
            ns,
            client.V1Role(
                metadata=client.V1ObjectMeta(name="read-configmaps"),
                rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["get", "list"])],
            ),
        )
        rbac.create_namespaced_role_binding(
            ns,
            client.V1RoleBinding(
                metadata=client.V1ObjectMeta(name="read-configmaps"),
                role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="read-configmaps"),
                subjects=[
                    client.RbacV1Subject(kind="User", name="torii-restricted", api_group="rbac.authorization.k8s.io")
                ],
            ),
        )
        wait_until(lambda: status_of(rcore.list_namespaced_config_map, ns) == 200, what="RBAC grant effective")
        # Only what was granted: still no secrets, still nothing cluster-wide.
        assert status_of(rcore.list_namespaced_secret, ns) == 403
        assert status_of(rcore.list_namespace) == 403
    restricted.close()
