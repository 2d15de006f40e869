"""The Torii objects of one namespace, as a test sees them: the one way tests create, read, await and delete them
(as the admin, or as a tenant through its own ApiClient)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from kubernetes import client

from support.kube import gone
from support.stack import Stack
from support.wait import wait_until
from torii.crds import RESOURCES
from torii.models.common import API_VERSION, GROUP, VERSION

PLURALS = {r.kind: r.plural for r in RESOURCES}
__all__ = ["GROUP", "PLURALS", "VERSION", "World"]


class World:
    def __init__(self, api: client.ApiClient, ns: str, stack: Stack | None = None) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.ns = ns
        self.stack = stack

    def create(self, kind: str, name: str, spec: dict[str, Any], *, namespace: str | None = None) -> None:
        """Create (an ApiException when the apiserver refuses it, as `kubectl create` would fail)."""
        body = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace or self.ns, PLURALS[kind], body)

    def new(self, kind: str, spec: dict[str, Any], prefix: str = "obj") -> str:
        """Create an object under a fresh name; the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.create(kind, name, spec)
        return name

    def apply(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        """Create, or merge `spec` into the existing object."""
        try:
            self.create(kind, name, spec)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            self.patch(kind, name, spec)

    def patch(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], name, {"spec": spec})

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], name)
        return obj

    def condition_now(self, kind: str, name: str) -> dict[str, Any] | None:
        """The Ready condition of the object's current generation (None: not reconciled yet)."""
        obj = self.get(kind, name)
        gen = obj["metadata"]["generation"]
        return next((dict(c) for c in obj.get("status", {}).get("conditions", [])
                     if c["type"] == "Ready" and c.get("observedGeneration") == gen), None)  # fmt: skip

    def ready(
        self, kind: str, name: str, timeout: float = 90, status: str = "True", reason: str | None = None
    ) -> dict[str, Any]:
        """The object once its Ready condition has `status` (and `reason`) at its current generation."""
        seen: list[dict[str, Any] | None] = [None]

        def check() -> dict[str, Any] | None:
            cond = seen[0] = self.condition_now(kind, name)
            ok = cond is not None and cond["status"] == status and reason in (None, cond["reason"])
            return self.get(kind, name) if ok else None

        try:
            return wait_until(check, timeout=timeout, what=f"{kind} {name} Ready={status} {reason or ''}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its Ready condition: {seen[0]}") from None

    def reconciled(self, kind: str, name: str, timeout: float = 60) -> dict[str, Any]:
        """The object once it has a Ready condition for its current generation, whatever it says."""
        return wait_until(lambda: self.condition_now(kind, name) and self.get(kind, name), timeout=timeout,
                          what=f"{kind} {name} has a Ready condition")  # fmt: skip

    def reason(self, kind: str, name: str, reason: str, timeout: float = 90) -> dict[str, Any]:
        """The Ready condition once it is False with `reason`."""
        return self.condition(self.ready(kind, name, timeout=timeout, status="False", reason=reason))

    def list(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind])[
            "items"
        ]
        return items

    def events(self, name: str) -> list[client.CoreV1Event]:
        return list(self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={name}").items)

    def delete_all(self, timeout: float = 180) -> None:
        """Delete every Torii object of the namespace through the operator: keys and clients first, then APIs,
        each group at once, waiting until it is gone."""
        for kinds in (("GatewayKey", "OAuthClient"), ("GatewayAPI",)):
            for kind in kinds:
                for item in self.list(kind):
                    self.delete(kind, item["metadata"]["name"], wait=False)
            wait_until(lambda kinds=kinds: not any(self.list(k) for k in kinds), timeout=timeout,  # type: ignore[misc]
                       what=f"every {'/'.join(kinds)} of {self.ns} deleted")  # fmt: skip

    @staticmethod
    def condition(obj: dict[str, Any]) -> dict[str, Any]:
        return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")

    def secret(self, name: str) -> dict[str, str]:
        data = self.core.read_namespaced_secret(name, self.ns).data or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def delete(self, kind: str, name: str, *, wait: bool = True, timeout: float = 90) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], name)
        if wait:
            wait_until(lambda: gone(self.custom.get_namespaced_custom_object, GROUP, VERSION, self.ns, PLURALS[kind],
                                    name), timeout=timeout, what=f"{kind} {name} deleted")  # fmt: skip
