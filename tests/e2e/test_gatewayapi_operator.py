"""The operator against the real apiserver, on the paths that need no working gateway.

Gateways here are real connection failures (a closed port), unknown names, unsupported features and unreadable
credentials: Ready=False with a reason and a message saying what to fix, Events, finalizers that never hang
when the user says Orphan, and one bad object never blocking another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.kube import gone
from support.operator import Operator, release_all, running_operator, unreachable_gateways
from support.stack import Stack
from support.wait import wait_until

GROUP, VERSION, PLURAL = "torii.dev", "v1alpha1", "gatewayapis"
LEAK_WATCH: list[str] = []  # the admin credentials this module's operator holds


@pytest.fixture(scope="module")
def operator(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    gateways, secrets = unreachable_gateways("torii-gateways-errors", ("tyk", "tyk"), ("otoroshi", "otoroshi"))
    # Credentials that cannot be read: only the objects using this gateway are affected.
    gateways.append({**gateways[0], "name": "broken", "secretRef": {**gateways[0]["secretRef"], "key": "nope"}})
    LEAK_WATCH.extend([secrets["tyk"], secrets["secret"]])  # the client id is not a secret
    with running_operator(crds, admin, tmp_path_factory.mktemp("operator"), gateways=gateways, secret_data=secrets,
                          namespaces=[ns], secret_name="torii-gateways-errors") as op:  # fmt: skip
        yield op
        release_all(admin, ns)


def create(admin: client.ApiClient, ns: str, spec: dict[str, Any]) -> str:
    name = f"api-{uuid.uuid4().hex[:6]}"
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GatewayAPI", "metadata": {"name": name}, "spec": spec}
    client.CustomObjectsApi(admin).create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
    return name


def get(admin: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = client.CustomObjectsApi(admin).get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    return obj


def ready_condition(admin: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    obj = get(admin, ns, name)
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == "Ready" and cond.get("observedGeneration") == obj["metadata"]["generation"]:
            return dict(cond)
    return None


def wait_ready_reason(admin: client.ApiClient, ns: str, name: str, reason: str) -> dict[str, Any]:
    return wait_until(
        lambda: (c := ready_condition(admin, ns, name)) and c["reason"] == reason and c,
        timeout=60,
        what=f"{name} Ready reason {reason}",
    )


def events_for(admin: client.ApiClient, ns: str, name: str) -> list[client.CoreV1Event]:
    events = client.CoreV1Api(admin).list_namespaced_event(ns, field_selector=f"involvedObject.name={name}")
    return list(events.items)


SPEC = {"listenPath": "/orders/", "upstream": {"url": "http://127.0.0.1:9/"}}


def test_unreachable_gateway_is_reported_and_does_not_block_others(
    operator: Operator, admin: client.ApiClient, ns: str
) -> None:
    unreachable = create(admin, ns, {**SPEC, "gateway": "tyk"})
    unknown = create(admin, ns, {**SPEC, "gateway": "nope"})

    cond = wait_ready_reason(admin, ns, unreachable, "GatewayUnavailable")
    assert cond["status"] == "False"
    assert "gateway tyk" in cond["message"] and "cannot reach" in cond["message"]

    cond = wait_ready_reason(admin, ns, unknown, "GatewayNotConfigured")
    assert "no gateway connection named 'nope'" in cond["message"]
    assert "tyk" in cond["message"]  # lists what is configured

    obj = get(admin, ns, unreachable)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["gateway"] == "tyk"
    assert "torii.dev/finalizer" in obj["metadata"]["finalizers"]
    assert not any(k.startswith("kopf.zalando.org") for k in obj["metadata"].get("annotations", {}))
    wait_until(
        lambda: any(
            e.reason == "GatewayUnavailable" and e.type == "Warning" for e in events_for(admin, ns, unreachable)
        ),
        what="GatewayUnavailable event",
    )


def test_unsupported_feature_is_permanent_and_named(operator: Operator, admin: client.ApiClient, ns: str) -> None:
    name = create(admin, ns, {**SPEC, "gateway": "otoroshi", "auth": "oauth2"})
    cond = wait_ready_reason(admin, ns, name, "Unsupported")
    assert "spec.auth" in cond["message"] and "oauth2" in cond["message"]


def test_unreadable_gateway_credentials_affect_only_that_gateway(
    operator: Operator, admin: client.ApiClient, ns: str
) -> None:
    name = create(admin, ns, {**SPEC, "gateway": "broken"})
    cond = wait_ready_reason(admin, ns, name, "GatewayNotConfigured")
    assert "gateway broken is misconfigured" in cond["message"]
    assert "torii-gateways-errors" in cond["message"] and "'nope'" in cond["message"]


def test_delete_with_unreachable_gateway_keeps_finalizer_until_orphaned(
    operator: Operator, admin: client.ApiClient, ns: str
) -> None:
    name = create(admin, ns, {**SPEC, "gateway": "tyk"})
    wait_ready_reason(admin, ns, name, "GatewayUnavailable")
    custom = client.CustomObjectsApi(admin)
    custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)

    cond = wait_ready_reason(admin, ns, name, "DeleteFailed")
    assert "cannot reach" in cond["message"] and "deletionPolicy: Orphan" in cond["message"]
    obj = get(admin, ns, name)
    assert obj["metadata"].get("deletionTimestamp") and "torii.dev/finalizer" in obj["metadata"]["finalizers"]
    wait_until(lambda: any(e.reason == "DeleteFailed" for e in events_for(admin, ns, name)), what="DeleteFailed event")

    custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, {"spec": {"deletionPolicy": "Orphan"}})
    wait_until(lambda: gone(custom.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name),
               timeout=90, what="orphaned object released")  # fmt: skip


def test_orphan_policy_releases_immediately(operator: Operator, admin: client.ApiClient, ns: str) -> None:
    name = create(admin, ns, {**SPEC, "gateway": "tyk", "deletionPolicy": "Orphan"})
    wait_ready_reason(admin, ns, name, "GatewayUnavailable")
    custom = client.CustomObjectsApi(admin)
    custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    wait_until(lambda: gone(custom.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name),
               timeout=30, what="orphaned object deleted")  # fmt: skip


def test_admin_credentials_never_leak(operator: Operator, admin: client.ApiClient, ns: str, tmp_path: Path) -> None:
    name = create(admin, ns, {**SPEC, "gateway": "tyk"})
    wait_ready_reason(admin, ns, name, "GatewayUnavailable")
    custom = client.CustomObjectsApi(admin)
    everything = str(custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL))
    everything += str(client.CoreV1Api(admin).list_namespaced_event(ns).to_dict())
    everything += operator.log()
    assert LEAK_WATCH and not [secret for secret in LEAK_WATCH if secret in everything]
