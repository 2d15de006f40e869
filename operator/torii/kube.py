"""Kubernetes API access outside kopf's own patching (Secrets).

The official client is synchronous: every call runs in a worker thread so it never blocks kopf's event loop.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from torii.gateways.errors import ConfigurationError, GatewayError
from torii.models.common import GROUP, VERSION
from torii.settings import CaBundleRef, NodeServiceRef, SecretKeyRef

log = logging.getLogger("torii")


@cache
def api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        # Explicitly: the client reads $KUBECONFIG into a constant at import time, which may be too early.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    if not client.Configuration.get_default_copy().verify_ssl:
        # The kubeconfig itself opted out of TLS verification (local stacks): say so once, not per request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return client.ApiClient()


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


async def read_secret_key(ref: SecretKeyRef) -> str:
    """The decoded value of one key of a Secret; a ConfigurationError naming the Secret (never the value)."""

    def read() -> str:
        try:
            secret = core().read_namespaced_secret(ref.name, ref.namespace)
        except ApiException as exc:
            raise ConfigurationError(
                f"cannot read Secret {ref.namespace}/{ref.name}: HTTP {exc.status} {exc.reason}"
            ) from None
        data = secret.data or {}
        if ref.key not in data:
            raise ConfigurationError(f"Secret {ref.namespace}/{ref.name} has no key {ref.key!r}")
        return base64.b64decode(data[ref.key]).decode()

    return await asyncio.to_thread(read)


async def read_ca_bundle(ref: CaBundleRef) -> str:
    """The PEM bundle a connection's caBundle names (a Secret or a ConfigMap key); ConfigurationError if absent."""
    if ref.kind == "Secret":
        return await read_secret_key(SecretKeyRef(namespace=ref.namespace, name=ref.name, key=ref.key))

    def read() -> str:
        try:
            config_map = core().read_namespaced_config_map(ref.name, ref.namespace)
        except ApiException as exc:
            raise ConfigurationError(
                f"cannot read ConfigMap {ref.namespace}/{ref.name}: HTTP {exc.status} {exc.reason}"
            ) from None
        value = (config_map.data or {}).get(ref.key)
        if not value:
            raise ConfigurationError(f"ConfigMap {ref.namespace}/{ref.name} has no key {ref.key!r}")
        return str(value)

    return await asyncio.to_thread(read)


class ConflictError(GatewayError):
    """A Kubernetes object changed between read and write (optimistic concurrency): retry soon."""

    reason = "Conflict"


# ---------------------------------------------------------------------------------------- generated Secrets

MANAGED_BY = {"app.kubernetes.io/managed-by": "torii"}
# Labels and annotations Argo CD uses to track what it applied: never copied onto a generated Secret.
ARGO_CD_MARKERS = ("argocd.argoproj.io/", "app.kubernetes.io/instance")


@dataclass(frozen=True)
class Owner:
    """The custom resource a generated Secret belongs to (ownerReference: garbage-collected with it)."""

    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name, "uid": self.uid,
                "controller": True, "blockOwnerDeletion": False}  # fmt: skip


@dataclass(frozen=True)
class SecretView:
    name: str
    data: dict[str, str]
    labels: dict[str, str]
    annotations: dict[str, str]
    owner_uids: tuple[str, ...]
    resource_version: str = ""

    def owned_by(self, owner: Owner) -> bool:
        return self.labels.get("app.kubernetes.io/managed-by") == "torii" and owner.uid in self.owner_uids

    def __repr__(self) -> str:  # data holds credentials
        return f"SecretView(name={self.name!r}, keys={sorted(self.data)})"


def without_argo_markers(values: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in values.items() if not k.startswith(ARGO_CD_MARKERS)}


class KubeSecrets:
    """Generated Secrets through the Kubernetes API (the SecretStore the reconcilers use)."""

    async def get(self, namespace: str, name: str) -> SecretView | None:
        def read() -> SecretView | None:
            try:
                secret = core().read_namespaced_secret(name, namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            meta: Any = secret.metadata
            return SecretView(
                name=name,
                data={k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()},
                labels=dict(meta.labels or {}),
                annotations=dict(meta.annotations or {}),
                owner_uids=tuple(r.uid for r in (meta.owner_references or [])),
                resource_version=str(meta.resource_version or ""),
            )

        return await asyncio.to_thread(read)

    async def write(
        self,
        namespace: str,
        name: str,
        owner: Owner,
        data: dict[str, str],
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
        create: bool,
        resource_version: str = "",
    ) -> str:
        """Create (refusing to replace anything), or replace a Torii-owned Secret as read at `resource_version`.

        A replace, not a patch: keys and annotations Torii dropped (a rotated-out credential) really go away; and
        the resourceVersion makes a concurrent change fail instead of being overwritten.
        """
        body: Any = {  # the client accepts plain dicts
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {**without_argo_markers(labels), **MANAGED_BY},
                "annotations": without_argo_markers(annotations),
                "ownerReferences": [owner.reference()],
                **({"resourceVersion": resource_version} if resource_version else {}),
            },
            "stringData": data,
        }

        def send() -> str:
            try:
                if create:
                    written: Any = core().create_namespaced_secret(namespace, body)
                else:
                    written = core().replace_namespaced_secret(name, namespace, body)
            except ApiException as exc:
                if exc.status == 409:
                    raise ConflictError(
                        f"Secret {namespace}/{name} changed meanwhile ({exc.reason}); retrying"
                    ) from None
                raise
            return str(written.metadata.resource_version)

        return await asyncio.to_thread(send)


class KubeApis:
    """Read GatewayAPI objects (what GatewayKey and OAuthClient refer to)."""

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                obj: Any = client.CustomObjectsApi(api_client()).get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "gatewayapis", name
                )
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            return dict(obj)

        return await asyncio.to_thread(read)

    async def in_group(self, namespace: str, group: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            listing: Any = client.CustomObjectsApi(api_client()).list_namespaced_custom_object(
                GROUP, VERSION, namespace, "gatewayapis"
            )
            items: list[dict[str, Any]] = listing["items"]
            return [i for i in items if (i.get("spec") or {}).get("group") == group]

        return await asyncio.to_thread(read)


# ------------------------------------------------------------------------------- writes of the drift pass


async def patch_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> bool:
    """Merge `status` into an object's status subresource; False when the object is gone."""

    def send() -> bool:
        try:
            client.CustomObjectsApi(api_client()).patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, {"status": status}
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    return await asyncio.to_thread(send)


async def post_event(reference: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """An Event about an object, as kopf posts them (outside a kopf handler, kopf's own queue is not there)."""
    meta = reference["metadata"]
    now = datetime.now(UTC)
    body: Any = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": reference["apiVersion"],
            "kind": reference["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "torii"},
        "reportingComponent": "torii",
        "firstTimestamp": now.isoformat(),
        "lastTimestamp": now.isoformat(),
        "count": 1,
    }

    def send() -> None:
        try:
            core().create_namespaced_event(meta["namespace"], body)
        except ApiException as exc:
            if exc.status not in (403, 404):  # no right to post events, or the namespace is going: not fatal
                raise

    await asyncio.to_thread(send)


def endpoint_urls(ref: NodeServiceRef) -> AsyncIterator[list[str]]:
    """The ready endpoints of a Service as URLs (`scheme://address:port`), sorted, every time they change: its
    EndpointSlices listed, then watched (a thread per Service: the client is synchronous)."""
    return _endpoint_urls(ref)


async def _endpoint_urls(ref: NodeServiceRef) -> AsyncIterator[list[str]]:
    loop = asyncio.get_running_loop()
    changes: asyncio.Queue[list[str]] = asyncio.Queue()
    stop = threading.Event()
    selector = f"kubernetes.io/service-name={ref.name}"

    def publish(slices: dict[str, list[str]]) -> None:
        # A dual-stack Service lists each pod in an IPv4 and an IPv6 slice: one address family, IPv4 first.
        urls = {u for urls in slices.values() for u in urls}
        ipv4 = {u for u in urls if "[" not in u}
        loop.call_soon_threadsafe(changes.put_nowait, sorted(ipv4 or urls))

    def follow() -> None:
        api = client.DiscoveryV1Api(api_client())
        while not stop.is_set():
            try:
                listing: Any = api.list_namespaced_endpoint_slice(ref.namespace, label_selector=selector)
                slices: dict[str, list[str]] = {str(s.metadata.name): slice_urls(s, ref) for s in listing.items}
                publish(slices)
                stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                    api.list_namespaced_endpoint_slice, ref.namespace, label_selector=selector,
                    resource_version=listing.metadata.resource_version, timeout_seconds=60,
                )  # fmt: skip
                for event in stream:
                    if stop.is_set():
                        return
                    item, name = event["object"], str(event["object"].metadata.name)
                    if event["type"] == "DELETED":
                        slices.pop(name, None)
                    else:
                        slices[name] = slice_urls(item, ref)
                    publish(slices)
            except Exception as exc:  # the apiserver away, or a watch expired: list again shortly
                log.warning("EndpointSlices of Service %s/%s: %s %s; listing again in 2 s", ref.namespace, ref.name,
                            type(exc).__name__, getattr(exc, "status", "") or "")  # fmt: skip
                stop.wait(2.0)

    thread = threading.Thread(target=follow, name=f"torii-endpoints-{ref.name}", daemon=True)
    thread.start()
    try:
        while True:
            yield await changes.get()
    finally:
        stop.set()


def slice_urls(endpoint_slice: Any, ref: NodeServiceRef) -> list[str]:
    """URLs of the ready endpoints of one EndpointSlice on the port `ref` names (by name or by number)."""
    numbers = [
        p.port for p in endpoint_slice.ports or []
        if p.port is not None and (p.name == ref.port if isinstance(ref.port, str) else p.port == ref.port)
    ]  # fmt: skip
    if not numbers:
        return []
    urls = []
    for endpoint in endpoint_slice.endpoints or []:
        conditions = endpoint.conditions
        if conditions is not None and conditions.ready is False:  # unset counts as ready (the API's rule)
            continue
        for address in endpoint.addresses or []:
            host = f"[{address}]" if ":" in address else address
            urls.append(f"{ref.scheme}://{host}:{numbers[0]}")
    return urls
