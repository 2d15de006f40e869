"""Otoroshi driver (admin API reached through Otoroshi's own proxy with `Host: <api host>`, basic auth).

A GatewayAPI becomes a ServiceDescriptor reached at `<subdomain>.<domain>` (from the gateway connection) under
`matchingRoot` = the listen path. Otoroshi applies changes immediately: no reload step.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from torii.gateways.base import ConvergeResult, ObjectRef, deep_merge, fingerprint, is_subset, pick
from torii.gateways.errors import PermanentGatewayError, RetryableGatewayError, Unsupported
from torii.gateways.http import AdminClient, CallObserver
from torii.models.gatewayapi import OTOROSHI_OWNED_FIELDS, ApiHealth, AuthMode, GatewayAPISpec

CORE_FIELDS = (
    "id", "enabled", "domain", "subdomain", "matchingRoot", "stripPath", "root", "targets",
    "publicPatterns", "privatePatterns", "metadata.torii-fingerprint",
)  # fmt: skip


def with_fingerprint(service: dict[str, Any]) -> dict[str, Any]:
    # Metadata keys must not contain dots: CORE_FIELDS paths are dotted.
    return deep_merge(service, {"metadata": {"torii-fingerprint": fingerprint(service)}})


def in_sync(desired: dict[str, Any], current: dict[str, Any] | None) -> bool:
    if current is None:
        return False
    want, have = pick(desired, CORE_FIELDS), pick(current, CORE_FIELDS)
    # Otoroshi stores targets with many defaulted fields: compare only what Torii sets.
    want_targets, have_targets = want.pop("targets") or [], have.pop("targets") or []
    return want == have and is_subset(want_targets, have_targets)


def _targets(urls: list[str]) -> tuple[list[dict[str, Any]], str]:
    targets = []
    root = "/"
    for url in urls:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        targets.append({"host": f"{parts.hostname}:{port}", "scheme": parts.scheme})
        root = parts.path or "/"
    return targets, root


def render_service(
    ref: ObjectRef, spec: GatewayAPISpec, *, service_id: str, domain: str, subdomain: str, group: str
) -> dict[str, Any]:
    """The Otoroshi ServiceDescriptor for a GatewayAPI: neutral fields, then `spec.otoroshi` merged over."""
    if spec.auth == AuthMode.OAUTH2:
        raise Unsupported("spec.auth: oauth2 is not supported on Otoroshi gateways by Torii; use keyless or key")
    if spec.rate_limit is not None:
        raise Unsupported(
            "spec.rateLimit: Otoroshi has no per-service global rate limit; set per-key throttling with "
            "GatewayKey.spec.rateLimit instead"
        )
    targets, root = _targets(spec.upstream.urls)
    keyless = spec.auth == AuthMode.KEYLESS
    service: dict[str, Any] = {
        "id": service_id,
        "name": str(ref),
        "env": "prod",
        "domain": domain,
        "subdomain": subdomain,
        "groups": [group],
        "targets": targets,
        "root": root,
        "matchingRoot": spec.listen_path,
        "stripPath": spec.strip_listen_path,
        "enabled": spec.active,
        "forceHttps": False,
        "enforceSecureCommunication": False,
        "publicPatterns": ["/.*"] if keyless else [],
        "privatePatterns": [] if keyless else ["/.*"],
        "metadata": {"torii.dev/namespace": ref.namespace, "torii.dev/name": ref.name}
        | {f"torii.dev/tag.{i}": tag for i, tag in enumerate(spec.tags)},
    }
    if spec.cors is not None:
        service["cors"] = {
            "enabled": spec.cors.enabled,
            "allowOrigin": ",".join(spec.cors.allowed_origins),
            "allowMethods": spec.cors.allowed_methods,
            "allowHeaders": spec.cors.allowed_headers,
            "exposeHeaders": spec.cors.exposed_headers,
            "allowCredentials": spec.cors.allow_credentials,
            "maxAge": spec.cors.max_age,
            "excludedPatterns": [],
        }
    if spec.otoroshi:
        overrides = {k: v for k, v in spec.otoroshi.items() if k not in OTOROSHI_OWNED_FIELDS}
        service = deep_merge(service, overrides)
    return service


class OtoroshiDriver:
    type = "otoroshi"

    def __init__(
        self,
        name: str,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        api_host: str = "otoroshi-api.oto.tools",
        domain: str = "oto.tools",
        subdomain: str = "api",
        group: str = "default",
        id_prefix: str = "torii",
        transport: httpx.AsyncBaseTransport | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self.name = name
        self.domain = domain
        self.subdomain = subdomain
        self.group = group
        self.id_prefix = id_prefix
        self._http = AdminClient(
            name,
            url,
            headers={"Host": api_host, "Accept": "application/json"},
            auth=(client_id, client_secret),
            transport=transport,
            observer=observer,
        )

    @property
    def admin_calls(self) -> int:
        return self._http.calls

    @property
    def public_host(self) -> str:
        return f"{self.subdomain}.{self.domain}" if self.subdomain else self.domain

    async def aclose(self) -> None:
        await self._http.aclose()

    async def check(self) -> str:
        await self._http.request("GET", "/api/groups", op="list groups")
        return f"Otoroshi at {self._http.base_url} (services on {self.public_host})"

    async def get_service(self, service_id: str) -> dict[str, Any] | None:
        response = await self._http.request("GET", f"/api/services/{service_id}", op="get service", passthrough=(404,))
        if response.status_code == 404:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def converge_api(self, ref: ObjectRef, spec: GatewayAPISpec) -> ConvergeResult:
        service_id = ref.gateway_id(self.id_prefix)
        desired = with_fingerprint(
            render_service(
                ref, spec, service_id=service_id, domain=self.domain, subdomain=self.subdomain, group=self.group
            )
        )
        current = await self.get_service(service_id)
        if in_sync(desired, current):
            return ConvergeResult(service_id, changed=False)
        if current is None:
            try:
                await self._http.request("POST", "/api/services", op="create service", json=desired)
            except PermanentGatewayError as exc:
                # Created concurrently (or by a previous attempt whose answer was lost): update instead.
                if "already exists" not in exc.message:
                    raise
                await self._put(service_id, desired)
        else:
            await self._put(service_id, desired)
        served = await self.get_service(service_id)
        if served is None:
            raise RetryableGatewayError(f"gateway {self.name}: service {service_id} not found right after writing it")
        return ConvergeResult(service_id, changed=True, created=current is None)

    async def _put(self, service_id: str, desired: dict[str, Any]) -> None:
        await self._http.request("PUT", f"/api/services/{service_id}", op="update service", json=desired)

    async def delete_api(self, ref: ObjectRef) -> bool:
        service_id = ref.gateway_id(self.id_prefix)
        response = await self._http.request(
            "DELETE", f"/api/services/{service_id}", op="delete service", passthrough=(404,)
        )
        return response.status_code != 404

    async def list_api_ids(self) -> set[str]:
        response = await self._http.request("GET", "/api/services", op="list services")
        prefix = f"{self.id_prefix}."
        return {s["id"] for s in response.json() or [] if str(s.get("id", "")).startswith(prefix)}

    async def api_health(self, ref: ObjectRef) -> ApiHealth | None:
        return None
