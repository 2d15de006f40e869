"""The Torii objects of one namespace, as a test sees them: apply, wait for Ready, read Secrets, delete."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client

from support.kube import gone
from support.stack import Stack
from support.wait import wait_until

GROUP, VERSION = "torii.dev", "v1alpha1"
PLURALS = {"GatewayAPI": "gatewayapis", "GatewayKey": "gatewaykeys", "OAuthClient": "oauthclients"}


class World:
    def __init__(self, api: client.ApiClient, ns: str, stack: Stack) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.ns = ns
        self.stack = stack

    def apply(self, kind: str, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        try:
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], name, {"spec": spec})

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], name)
        return obj

    def ready(self, kind: str, name: str, timeout: float = 90, status: str = "True") -> dict[str, Any]:
        """The object once its Ready condition has `status` at its current generation."""

        def check() -> dict[str, Any] | None:
            obj = self.get(kind, name)
            conds = obj.get("status", {}).get("conditions", [])
            gen = obj["metadata"]["generation"]
            ok = any(
                c["type"] == "Ready" and c["status"] == status and c.get("observedGeneration") == gen for c in conds
            )
            return obj if ok else None

        return wait_until(check, timeout=timeout, what=f"{kind} {name} Ready={status}")

    def list(self, kind: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind])[
            "items"
        ]
        return items

    def delete_all(self) -> None:
        """Delete every Torii object of the namespace through the operator (keys first), waiting for each."""
        for kind in ("GatewayKey", "OAuthClient", "GatewayAPI"):
            for item in self.list(kind):
                self.delete(kind, item["metadata"]["name"])

    @staticmethod
    def condition(obj: dict[str, Any]) -> dict[str, Any]:
        return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")

    def secret(self, name: str) -> dict[str, str]:
        data = self.core.read_namespaced_secret(name, self.ns).data or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def delete(self, kind: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], name)
        wait_until(lambda: gone(self.custom.get_namespaced_custom_object, GROUP, VERSION, self.ns, PLURALS[kind], name),
                   timeout=90, what=f"{kind} {name} deleted")  # fmt: skip
