"""Kubernetes API access outside kopf's own patching: Secrets, status, Events, EndpointSlices, GatewayAPI reads.

One async httpx client (httpx is the gateway drivers' client already) with kopf's own login: the official
`kubernetes` package is never imported on the operator's path (its models cost ~15 MiB of RSS, and kopf imports
it whenever it is importable: `torii run` hides it: `torii.kube_hide`). Only a kubeconfig whose user
needs an exec plugin or an auth provider falls back to the official client's login.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import kopf

from torii.acyclic import Client
from torii.gateways.errors import ConfigurationError, GatewayError
from torii.models.common import GROUP, VERSION
from torii.settings import CaBundleRef, NodeServiceRef, SecretKeyRef

log = logging.getLogger("torii")


def _has_credentials(info: kopf.ConnectionInfo | None) -> bool:
    return info is not None and bool(info.token or info.certificate_path or info.certificate_data or info.username)


def login(settings: kopf.OperatorSettings | None = None, **kwargs: Any) -> kopf.ConnectionInfo:
    """The cluster's address and credentials: the pod's service account, else the kubeconfig (kopf's readers);
    the official client's login only for what those cannot do (exec plugins, auth providers)."""
    settings = settings or kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)
    if not _has_credentials(info):
        if sys.modules.get("kubernetes", False) is None:
            del sys.modules["kubernetes"]  # hidden by hide_unused_modules: needed after all
        info = kopf.login_via_client(settings=settings, logger=kwargs.get("logger") or log)
    if info is None:
        raise ConfigurationError("no Kubernetes credentials: neither a service account nor a kubeconfig")
    return info


class Kube:
    """An async client of the apiserver. On 401 it logs in again once (a rotated service-account token)."""

    def __init__(self, login_: Callable[[], kopf.ConnectionInfo]) -> None:
        self._login = login_
        self._client: httpx.AsyncClient | None = None

    def _connect(self) -> httpx.AsyncClient:
        info = self._login()
        headers = {"Accept": "application/json"}
        if info.token:
            headers["Authorization"] = f"{info.scheme or 'Bearer'} {info.token}"
        auth = httpx.BasicAuth(info.username, info.password or "") if info.username else None
        verify: Any = False if info.insecure else info.as_ssl_context()
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)  # each TLS connection buffers ~128 KiB
        return Client(base_url=info.server, headers=headers, auth=auth, verify=verify, limits=limits,
                      timeout=httpx.Timeout(30.0))  # fmt: skip

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.request(method, path, **kwargs)
        if response.status_code == 401:
            stale, self._client = self._client, None
            if stale is not None:
                await stale.aclose()
            response = await self.client.request(method, path, **kwargs)
        return response

    def stream(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.stream(method, path, **kwargs)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


_kube: Kube | None = None


def use(kube: Kube | None) -> None:
    """Set the client every function here uses (`torii run`: built from the operator's login)."""
    global _kube
    _kube = kube


def api() -> Kube:
    global _kube
    if _kube is None:
        _kube = Kube(login)
    return _kube


class KubeError(GatewayError):
    """The apiserver refused or failed a call Torii needs: retried."""

    reason = "KubernetesError"


def _fail(response: httpx.Response, what: str) -> KubeError:
    try:
        message = str(response.json().get("message") or response.reason_phrase)
    except ValueError:
        message = response.reason_phrase
    return KubeError(f"{what}: HTTP {response.status_code} {message}")


def _path(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


def secret_path(namespace: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{_path(namespace)}/secrets" + (f"/{_path(name)}" if name else "")


async def read_secret_key(ref: SecretKeyRef) -> str:
    """The decoded value of one key of a Secret; a ConfigurationError naming the Secret (never the value)."""
    response = await api().request("GET", secret_path(ref.namespace, ref.name))
    if response.status_code != 200:
        raise ConfigurationError(
            f"cannot read Secret {ref.namespace}/{ref.name}: HTTP {response.status_code} {response.reason_phrase}"
        )
    data = response.json().get("data") or {}
    if ref.key not in data:
        raise ConfigurationError(f"Secret {ref.namespace}/{ref.name} has no key {ref.key!r}")
    return base64.b64decode(data[ref.key]).decode()


async def read_ca_bundle(ref: CaBundleRef) -> str:
    """The PEM bundle a connection's caBundle names (a Secret or a ConfigMap key); ConfigurationError if absent."""
    if ref.kind == "Secret":
        return await read_secret_key(SecretKeyRef(namespace=ref.namespace, name=ref.name, key=ref.key))
    response = await api().request("GET", f"/api/v1/namespaces/{_path(ref.namespace)}/configmaps/{_path(ref.name)}")
    if response.status_code != 200:
        raise ConfigurationError(
            f"cannot read ConfigMap {ref.namespace}/{ref.name}: HTTP {response.status_code} {response.reason_phrase}"
        )
    value = (response.json().get("data") or {}).get(ref.key)
    if not value:
        raise ConfigurationError(f"ConfigMap {ref.namespace}/{ref.name} has no key {ref.key!r}")
    return str(value)


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
        response = await api().request("GET", secret_path(namespace, name))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _fail(response, f"reading Secret {namespace}/{name}")
        secret = response.json()
        meta = secret.get("metadata") or {}
        return SecretView(
            name=name,
            data={k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()},
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            owner_uids=tuple(str(r.get("uid")) for r in meta.get("ownerReferences") or []),
            resource_version=str(meta.get("resourceVersion") or ""),
        )

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
        body: dict[str, Any] = {
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
        if create:
            response = await api().request("POST", secret_path(namespace), json=body)
        else:
            response = await api().request("PUT", secret_path(namespace, name), json=body)
        if response.status_code == 409:
            raise ConflictError(f"Secret {namespace}/{name} changed meanwhile ({response.reason_phrase}); retrying")
        if response.status_code not in (200, 201):
            raise _fail(response, f"writing Secret {namespace}/{name}")
        return str((response.json().get("metadata") or {}).get("resourceVersion") or "")


def custom_path(plural: str, namespace: str, name: str = "") -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{_path(namespace)}/{plural}" + (f"/{_path(name)}" if name else "")


class KubeApis:
    """Read GatewayAPI objects (what GatewayKey and OAuthClient refer to)."""

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        response = await api().request("GET", custom_path("gatewayapis", namespace, name))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _fail(response, f"reading GatewayAPI {namespace}/{name}")
        return dict(response.json())

    async def in_group(self, namespace: str, group: str) -> list[dict[str, Any]]:
        response = await api().request("GET", custom_path("gatewayapis", namespace))
        if response.status_code != 200:
            raise _fail(response, f"listing the GatewayAPIs of {namespace}")
        items: list[dict[str, Any]] = response.json().get("items") or []
        return [i for i in items if (i.get("spec") or {}).get("group") == group]


# ------------------------------------------------------------------------------- writes of the drift pass


async def patch_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> bool:
    """Merge `status` into an object's status subresource; False when the object is gone."""
    response = await api().request(
        "PATCH", custom_path(plural, namespace, name) + "/status", content=json.dumps({"status": status}),
        headers={"Content-Type": "application/merge-patch+json"},
    )  # fmt: skip
    if response.status_code == 404:
        return False
    if response.status_code != 200:
        raise _fail(response, f"patching the status of {plural} {namespace}/{name}")
    return True


async def _metadata_of(plural: str, namespace: str, name: str, uid: str) -> dict[str, Any] | None:
    """The object's metadata; None when it is gone or another object (another uid) now has its name."""
    response = await api().request("GET", custom_path(plural, namespace, name))
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise _fail(response, f"reading {plural} {namespace}/{name}")
    meta: dict[str, Any] = response.json().get("metadata") or {}
    return meta if meta.get("uid") == uid else None


async def still_there(plural: str, namespace: str, name: str, uid: str) -> bool:
    """Does the object (this uid, not another one made since under its name) still exist?"""
    return await _metadata_of(plural, namespace, name, uid) is not None


async def release_finalizer(plural: str, namespace: str, name: str, uid: str, finalizers: Collection[str],
                           known: list[str] | None = None) -> None:  # fmt: skip
    """Remove some finalizers of an object (this uid only), leaving the others' alone: a JSON patch that tests the
    uid and each finalizer at its index first. `known`: the finalizers as last seen (saves a read when they are
    still so). Gone, or the finalizers already removed: nothing to do."""
    for _ in range(5):
        if known is None:
            if (meta := await _metadata_of(plural, namespace, name, uid)) is None:
                return
            known = list(meta.get("finalizers") or [])
        at = sorted((i for i, f in enumerate(known) if f in finalizers), reverse=True)  # the last first: indexes hold
        if not at:
            return
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": uid}]
        for i in at:
            ops += [{"op": "test", "path": f"/metadata/finalizers/{i}", "value": known[i]},
                    {"op": "remove", "path": f"/metadata/finalizers/{i}"}]  # fmt: skip
        response = await api().request(
            "PATCH", custom_path(plural, namespace, name), content=json.dumps(ops),
            headers={"Content-Type": "application/json-patch+json"},
        )  # fmt: skip
        if response.status_code in (200, 404):
            return
        if response.status_code not in (409, 422):  # 422: a test failed (the list moved): read it again
            raise _fail(response, f"removing the finalizers of {plural} {namespace}/{name}")
        known = None
    raise KubeError(f"removing the finalizers of {plural} {namespace}/{name}: they kept changing; retrying")


# Events of the drift pass and the wakes go out this many at a time: a pass repairing thousands of objects (a
# gateway restarted empty) must not open thousands of apiserver requests at once.
EVENT_POSTERS = asyncio.Semaphore(8)


async def post_event(reference: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """An Event about an object, as kopf posts them (outside a kopf handler, kopf's own queue is not there)."""
    meta = reference["metadata"]
    now = datetime.now(UTC)
    body: dict[str, Any] = {
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
    async with EVENT_POSTERS:
        response = await api().request("POST", f"/api/v1/namespaces/{_path(meta['namespace'])}/events", json=body)
    # No right to post events, or the namespace is going: not fatal.
    if response.status_code not in (200, 201, 403, 404):
        raise _fail(response, f"posting an Event about {meta['namespace']}/{meta['name']}")


async def endpoint_urls(ref: NodeServiceRef) -> AsyncIterator[list[str]]:
    """The ready endpoints of a Service as URLs (`scheme://address:port`), sorted, every time they change: its
    EndpointSlices listed, then watched."""
    path = f"/apis/discovery.k8s.io/v1/namespaces/{_path(ref.namespace)}/endpointslices"
    selector = f"kubernetes.io/service-name={ref.name}"

    def urls_of(slices: dict[str, list[str]]) -> list[str]:
        # A dual-stack Service lists each pod in an IPv4 and an IPv6 slice: one address family, IPv4 first.
        urls = {u for urls in slices.values() for u in urls}
        ipv4 = {u for u in urls if "[" not in u}
        return sorted(ipv4 or urls)

    while True:
        try:
            listing = await api().request("GET", path, params={"labelSelector": selector})
            if listing.status_code != 200:
                raise _fail(listing, f"listing the EndpointSlices of Service {ref.namespace}/{ref.name}")
            body = listing.json()
            slices = {str(s["metadata"]["name"]): slice_urls(s, ref) for s in body.get("items") or []}
            yield urls_of(slices)
            params = {"labelSelector": selector, "watch": "true", "timeoutSeconds": "60",
                      "resourceVersion": str((body.get("metadata") or {}).get("resourceVersion") or "")}  # fmt: skip
            async with api().stream("GET", path, params=params, timeout=httpx.Timeout(90.0)) as stream:
                async for line in stream.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        break  # expired: list again
                    item = event.get("object") or {}
                    name = str((item.get("metadata") or {}).get("name"))
                    if event.get("type") == "DELETED":
                        slices.pop(name, None)
                    elif event.get("type") in ("ADDED", "MODIFIED"):
                        slices[name] = slice_urls(item, ref)
                    else:
                        continue
                    yield urls_of(slices)
        except (httpx.HTTPError, GatewayError, ValueError) as exc:  # the apiserver away: list again shortly
            log.warning("EndpointSlices of Service %s/%s: %s; listing again in 2 s", ref.namespace, ref.name,
                        type(exc).__name__)  # fmt: skip
            await asyncio.sleep(2.0)


def slice_urls(endpoint_slice: dict[str, Any], ref: NodeServiceRef) -> list[str]:
    """URLs of the ready endpoints of one EndpointSlice (as the API returns it) on the port `ref` names (by name
    or by number)."""
    numbers = [
        p["port"] for p in endpoint_slice.get("ports") or []
        if p.get("port") is not None and (p.get("name") if isinstance(ref.port, str) else p["port"]) == ref.port
    ]  # fmt: skip
    if not numbers:
        return []
    urls = []
    for endpoint in endpoint_slice.get("endpoints") or []:
        if (endpoint.get("conditions") or {}).get("ready") is False:  # unset counts as ready (the API's rule)
            continue
        for address in endpoint.get("addresses") or []:
            host = f"[{address}]" if ":" in address else address
            urls.append(f"{ref.scheme}://{host}:{numbers[0]}")
    return urls
