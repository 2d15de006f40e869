"""Otoroshi driver (admin API reached through Otoroshi's own proxy with `Host: <api host>`, basic auth).

A GatewayAPI becomes a ServiceDescriptor reached at `<subdomain>.<domain>` (from the gateway connection) under
`matchingRoot` = the listen path.

Verified on Otoroshi 17.17: an admin write is stored at once, but the proxy serves it only after its next state
sync (`otoroshi.next.state-sync-interval`, 10 s by default). So after writing a service the driver waits one
sync interval and then asks the proxy itself: a route Otoroshi does not know answers 404 with the header
`Otoroshi-Error-Msg: no route found !`. Ready therefore means "the proxy routes it", not "the admin API stored it".
"""

from __future__ import annotations

import asyncio
import math
import ssl
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from torii.gateways.base import (
    ConvergeResult,
    Credential,
    Inventory,
    KeyRequest,
    KeyResult,
    OAuthClientRequest,
    ObjectRef,
    api_gateway_id,
    deep_merge,
    fingerprint,
    group_id,
    is_subset,
    key_owner,
    owner_claim,
    pick,
    without_fields,
)
from torii.gateways.errors import (
    AdoptionFailed,
    OwnershipConflict,
    PermanentGatewayError,
    PolicyViolation,
    RetryableGatewayError,
    Unsupported,
)
from torii.gateways.http import AdminClient, CallObserver, admin_path
from torii.gateways.otoroshi_sync import OtoroshiServiceSync
from torii.models.gatewayapi import OTOROSHI_OWNED_FIELDS, ApiHealth, AuthMode, GatewayAPISpec
from torii.models.gatewaykey import OTOROSHI_KEY_OWNED_FIELDS, QuotaState


def with_fingerprint(service: dict[str, Any]) -> dict[str, Any]:
    # Metadata keys must not contain dots: CORE_FIELDS paths are dotted.
    return deep_merge(service, {"metadata": {"torii-fingerprint": fingerprint(service)}})


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
    ref: ObjectRef,
    spec: GatewayAPISpec,
    *,
    service_id: str,
    domain: str,
    subdomain: str,
    group: str,
    api_group: str | None = None,
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
        "groups": [group, *([api_group] if api_group else [])],
        "targets": targets,
        "root": root,
        "matchingRoot": spec.listen_path,
        "stripPath": spec.strip_listen_path,
        "enabled": spec.active,
        "forceHttps": False,
        "enforceSecureCommunication": False,
        "publicPatterns": ["/.*"] if keyless else [],
        "privatePatterns": [] if keyless else ["/.*"],
        "metadata": {f"torii.dev/tag.{i}": tag for i, tag in enumerate(spec.tags)},
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
    # The owner record goes last: no escape hatch can forge it (Torii never writes or deletes a service whose
    # record names another object).
    service["metadata"] = {k: v for k, v in (service.get("metadata") or {}).items() if not k.startswith("torii.dev/")
                           or k.startswith("torii.dev/tag.")} | owner_metadata(ref, "GatewayAPI")  # fmt: skip
    return service


def owner_metadata(ref: ObjectRef, kind: str) -> dict[str, str]:
    return {"torii.dev/namespace": ref.namespace, "torii.dev/name": ref.name, "torii.dev/kind": ref.kind or kind,
            "torii.dev/uid": ref.uid}  # fmt: skip


# ------------------------------------------------------------------------------------------------------ keys

KEY_CORE_FIELDS = (
    "clientId", "clientSecret", "enabled", "throttlingQuota", "dailyQuota", "monthlyQuota", "validUntil",
    "rotation.enabled", "rotation.nextSecret", "metadata.torii-fingerprint",
)  # fmt: skip
DEFAULT_QUOTA = 10_000_000  # Otoroshi's own default for throttling, daily and monthly quotas


def _epoch_ms(rfc3339: str | None) -> int | None:
    if not rfc3339:
        return None
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def json_patch(desired: dict[str, Any], current: dict[str, Any]) -> list[dict[str, Any]]:
    """RFC 6902 operations turning `current` into `desired` for the top-level fields Torii sets (Otoroshi's
    PATCH takes a JSON Patch array, not a merge patch)."""
    ops = []
    for key, value in desired.items():
        if key not in current:
            ops.append({"op": "add", "path": f"/{key}", "value": value})
        elif not is_subset(value, current[key]):
            ops.append({"op": "replace", "path": f"/{key}", "value": value})
    return ops


SCOPE_KINDS = ("services", "groups")
# Otoroshi's own entities (its admin API's service/route, group; the default group): never adopted, and a key
# authorised on them is never adopted either (17.17.0 defaults; `app.adminapi.defaultValues.*`).
RESERVED_IDS = frozenset({"admin-api-service", "admin-api-group", "default"})
ADMIN_ENTITIES = frozenset({"group_admin-api-group", "service_admin-api-service", "route_admin-api-service",
                            "admin-api-group"})  # fmt: skip


def scoped(scope: str, rest: str, *values: str) -> str:
    """An admin path under a key scope (`services/<id>` or `groups/<id>`): `/api/services/<id>/apikeys/...`."""
    kind, _, entity = scope.partition("/")
    if kind not in SCOPE_KINDS:
        raise PermanentGatewayError(f"internal: unknown key scope kind {kind!r}")
    return admin_path(f"/api/{kind}/{{}}{rest}", entity, *values)


def key_scope(request: KeyRequest) -> str:
    """Where the key lives in the admin API: under its service group (apiGroup) or its (first) service."""
    if request.group_id:
        return f"groups/{request.group_id}"
    return f"services/{request.apis[0].gateway_id}"


def render_apikey(request: KeyRequest) -> dict[str, Any]:
    spec = request.spec
    cred = request.credential
    if request.group_id:
        entities = [f"group_{request.group_id}"]
    else:
        entities = [f"service_{api.gateway_id}" for api in request.apis]
    throttling = DEFAULT_QUOTA
    if spec.rate_limit is not None:
        # Otoroshi throttles per 10-second window.
        throttling = max(1, math.ceil(spec.rate_limit.rate * 10 / spec.rate_limit.per))
    body: dict[str, Any] = {
        "clientId": cred.client_id,
        "clientSecret": cred.client_secret,
        "clientName": str(request.ref),
        "description": f"managed by Torii for GatewayKey {request.ref}",
        "authorizedEntities": entities,
        "enabled": spec.enabled,
        "throttlingQuota": throttling,
        "dailyQuota": spec.quota.max if spec.quota and spec.quota.period.value == "day" else DEFAULT_QUOTA,
        "monthlyQuota": spec.quota.max if spec.quota and spec.quota.period.value == "month" else DEFAULT_QUOTA,
        "tags": list(spec.tags),
        "metadata": dict(spec.metadata),
        "rotation": {
            # Otoroshi's native rotation: during the grace period both clientSecret and nextSecret are valid.
            "enabled": request.next_credential is not None,
            "rotationEvery": 31 * 24,
            "gracePeriod": max(1, math.ceil(request.grace_seconds / 3600)),
            "nextSecret": request.next_credential.client_secret if request.next_credential else None,
        },
    }
    valid_until = _epoch_ms(spec.expires)
    if valid_until is not None:
        body["validUntil"] = valid_until
    if spec.otoroshi:
        body = deep_merge(body, without_fields(spec.otoroshi, OTOROSHI_KEY_OWNED_FIELDS))
    # The owner record last: neither spec.metadata nor spec.otoroshi can forge it.
    body["metadata"] = {k: v for k, v in (body.get("metadata") or {}).items() if not k.startswith("torii-")}
    body["metadata"] |= key_owner(request.ref, "GatewayKey")
    body["metadata"]["torii-fingerprint"] = fingerprint(body)
    return body


class OtoroshiKeys:
    """Key operations of the Otoroshi driver (mixed into OtoroshiDriver)."""

    name: str
    state_sync_seconds: float
    admin_client_id: str
    _http: AdminClient

    async def _key_synced(self) -> None:
        """Wait until the proxy has synced a key write. Unlike a service, a key cannot be confirmed through the
        proxy without sending client traffic to the upstream, so this waits out the worst case: the sync that
        starts just after the write, plus that sync's own run time (up to a second on a busy machine, measured),
        before a key is reported Active, updated or revoked."""
        await asyncio.sleep(self.state_sync_seconds * 2 + 0.5)

    async def ensure_group(self, group_id: str, description: str) -> None:
        response = await self._http.request(
            "GET", admin_path("/api/groups/{}", group_id), op="get group", passthrough=(404,)
        )
        if response.status_code == 404:
            await self._http.request(
                "POST", "/api/groups", op="create group",
                json={"id": group_id, "name": group_id, "description": description}, passthrough=(400,),
            )  # fmt: skip

    async def _find_key(self, scope: str, client_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(the key, whether it was found under `scope`). Looked up under the scope it should have; a key whose
        scope changed since (spec.apis edited) is found by its clientId alone."""
        response = await self._http.request(
            "GET", scoped(scope, "/apikeys/{}", client_id), op="get key", passthrough=(404,)
        )
        if response.status_code == 200:
            return response.json(), True
        response = await self._http.request(
            "GET", admin_path("/api/apikeys/{}", client_id), op="find key", passthrough=(404,)
        )
        return (response.json() if response.status_code == 200 else None), False

    async def converge_key(self, request: KeyRequest) -> KeyResult:
        if not request.apis and not request.group_id:
            raise PermanentGatewayError("spec.apis/apiGroup: the key refers to no API")
        scope = key_scope(request)
        client_id = request.credential.client_id
        desired = render_apikey(request)
        current, in_scope = await self._find_key(scope, client_id)
        if (
            current is not None
            and (
                refused := owner_claim(
                    self.name, "key", request.ref, current.get("metadata"), adopting=request.adopting
                )
            )
            is not None
        ):
            raise refused  # fmt: skip
        if current is not None and pick(desired, KEY_CORE_FIELDS) == pick(current, KEY_CORE_FIELDS):
            return KeyResult(client_id, scope, changed=False)
        if current is None:
            await self._http.request("POST", scoped(scope, "/apikeys"), op="create key", json=desired)
        elif in_scope:
            # Only what differs, as an RFC 6902 patch. (Under a scope, Otoroshi keeps that scope's entity.)
            await self._http.request(
                "PATCH", scoped(scope, "/apikeys/{}", client_id), op="patch key", json=json_patch(desired, current)
            )
        else:
            # Moved to another service or group (spec.apis edited). Verified on 17.17: the scoped PUT answers 404
            # for a key not yet on that service, and a scoped write keeps its scope's entity; the unscoped PUT
            # replaces the key whole, so the old service's access goes.
            await self._http.request("PUT", admin_path("/api/apikeys/{}", client_id), op="update key", json=desired)
        await self._key_synced()
        return KeyResult(client_id, scope, changed=True, created=current is None)

    async def delete_key(self, request: KeyRequest) -> bool:
        client_id = request.credential.client_id
        scope = key_scope(request) if request.apis or request.group_id else None
        current, in_scope = await self._find_key(scope, client_id) if scope else (await self._get_any(client_id), False)
        if current is None:
            return False
        if (refused := owner_claim(self.name, "key", request.ref, current.get("metadata"),
                                   adopting=request.adopting)) is not None:  # fmt: skip
            raise refused
        # Under the scope it should have, or (moved, or no scope known) wherever it is.
        path = (
            scoped(scope, "/apikeys/{}", client_id) if scope and in_scope else admin_path("/api/apikeys/{}", client_id)
        )
        response = await self._http.request("DELETE", path, op="delete key", passthrough=(404,))
        return response.status_code != 404

    async def _get_any(self, client_id: str) -> dict[str, Any] | None:
        response = await self._http.request(
            "GET", admin_path("/api/apikeys/{}", client_id), op="find key", passthrough=(404,)
        )
        return response.json() if response.status_code == 200 else None

    async def revoke_previous(self, request: KeyRequest, previous: Credential) -> None:
        # Same clientId: writing the key with the new clientSecret and no nextSecret ends the old secret's grace.
        await self.converge_key(request)

    async def adopted_credential(
        self, request: KeyRequest, key_id: str, supplied: Credential | None, *, read_allowed: bool
    ) -> Credential | None:
        # Otoroshi returns the clientSecret to its admin API: the existing credential is always recovered, which
        # is reading a credential from the gateway (a tenancy grant), and never the connection's own admin key.
        if key_id == self.admin_client_id:
            raise OwnershipConflict(f"gateway {self.name}: spec.adopt.id: that key is one Torii itself uses; it "
                                    "cannot be adopted")  # fmt: skip
        if not read_allowed:
            raise PolicyViolation(
                f"refused by the tenancy policy of gateway {self.name}: spec.adopt.id: adopting an Otoroshi key "
                "means reading its secret from the gateway (tenancy.adoption.credentials)"
            )
        body = await self._get_any(key_id)
        if body is None:
            raise AdoptionFailed(f"gateway {self.name}: spec.adopt.id: no apikey with clientId {key_id} exists")
        entities = {str(e) for e in body.get("authorizedEntities") or []} | {str(body.get("authorizedGroup"))}
        if entities & ADMIN_ENTITIES:
            raise OwnershipConflict(f"gateway {self.name}: spec.adopt.id: that key opens Otoroshi's own admin API; "
                                    "it cannot be adopted")  # fmt: skip
        if (refused := owner_claim(self.name, "key", request.ref, body.get("metadata"), adopting=True)) is not None:
            raise refused
        return Credential(client_id=str(body["clientId"]), client_secret=str(body["clientSecret"]))

    async def expire_by_id(self, request: KeyRequest, key_id: str, at_unix: int) -> None:
        return None  # never needed: an adopted Otoroshi key's credential is always known

    async def revoke_by_id(self, request: KeyRequest, key_id: str) -> None:
        if key_id == request.credential.client_id or (current := await self._get_any(key_id)) is None:
            return
        if (refused := owner_claim(self.name, "key", request.ref, current.get("metadata"),
                                   adopting=request.adopting)) is not None:  # fmt: skip
            raise refused
        await self._http.request("DELETE", admin_path("/api/apikeys/{}", key_id), op="delete key", passthrough=(404,))

    async def list_keys(self, scope: str | None = None) -> list[dict[str, Any]]:
        """Every apikey (`GET /api/apikeys`), or those of one service's group or of a group
        (`GET /api/services/{id}/apikeys`, `GET /api/groups/{id}/apikeys`)."""
        path = scoped(scope, "/apikeys") if scope else "/api/apikeys"
        response = await self._http.request("GET", path, op="list keys")
        return list(response.json())

    async def key_quota(self, request: KeyRequest) -> QuotaState | None:
        response = await self._http.request(
            "GET", scoped(key_scope(request), "/apikeys/{}/quotas", request.credential.client_id), op="get quotas",
            passthrough=(404,),
        )  # fmt: skip
        if response.status_code == 404:
            return None
        q = response.json()
        return QuotaState(
            max=q.get("authorizedCallsPerDay"),
            remaining=q.get("remainingCallsPerDay"),
            remaining_per_day=q.get("remainingCallsPerDay"),
            remaining_per_month=q.get("remainingCallsPerMonth"),
            checked_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    async def reset_key_quota(self, request: KeyRequest) -> None:
        await self._http.request(
            "DELETE", scoped(key_scope(request), "/apikeys/{}/quotas", request.credential.client_id), op="reset quota"
        )
        await self._key_synced()

    async def converge_oauth_client(self, request: OAuthClientRequest) -> bool:
        raise Unsupported("OAuth clients are not supported on Otoroshi gateways by Torii (Tyk only)")

    async def delete_oauth_client(self, request: OAuthClientRequest) -> bool:
        return False

    async def adopted_oauth_client(self, ref: ObjectRef, api_id: str, client_id: str) -> str:
        raise Unsupported("OAuth clients are not supported on Otoroshi gateways by Torii (Tyk only)")


class OtoroshiDriver(OtoroshiKeys):
    type = "otoroshi"
    neutral_fields: frozenset[str] = frozenset()

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
        proxy_url: str | None = None,
        state_sync_seconds: float = 10.0,
        serve_timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: CallObserver | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.admin_client_id = client_id  # never adoptable, never touched
        self.admin_urls = [url, *([proxy_url] if proxy_url else [])]
        self.domain = domain
        self.subdomain = subdomain
        self.group = group
        self.id_prefix = id_prefix
        self.state_sync_seconds = state_sync_seconds
        self.serve_timeout = serve_timeout
        self._http = AdminClient(
            name,
            url,
            headers={"Host": api_host, "Accept": "application/json"},
            auth=(client_id, client_secret),
            transport=transport,
            observer=observer,
            verify=verify,
            timeout=timeout,
            secrets=[client_secret],
        )
        self._groups: set[str] = set()  # service groups known to exist (created or found)
        # Client traffic, to confirm what the proxy serves (never with admin credentials).
        self._proxy = httpx.AsyncClient(
            base_url=(proxy_url or url).rstrip("/"), headers={"Host": self.public_host}, timeout=10.0,
            transport=transport, verify=verify,
        )  # fmt: skip
        self.services = OtoroshiServiceSync(
            name, self._http, self.routed, state_sync_seconds=state_sync_seconds, serve_timeout=serve_timeout
        )

    @property
    def admin_calls(self) -> int:
        return self._http.calls

    @property
    def public_host(self) -> str:
        return f"{self.subdomain}.{self.domain}" if self.subdomain else self.domain

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._proxy.aclose()

    async def routed(self, listen_path: str, host: str | None = None) -> bool:
        """Does the proxy route `listen_path` (on `host`, default the connection's public host) to a service?
        (Any answer but Otoroshi's own "no route".)"""
        try:
            response = await self._proxy.get(listen_path, headers={"Host": host} if host else None)
        except httpx.HTTPError as exc:
            # Unreachable: fail now (retried) rather than wait out the serve timeout on a gateway that is down.
            raise RetryableGatewayError(
                f"gateway {self.name}: proxy unreachable while confirming {listen_path} ({type(exc).__name__})"
            ) from None
        return not (response.status_code == 404 and "no route" in response.headers.get("Otoroshi-Error-Msg", ""))

    async def check(self) -> str:
        await self._http.request("GET", "/api/groups", op="list groups")
        return f"Otoroshi at {self._http.base_url} (services on {self.public_host})"

    async def converge_api(self, ref: ObjectRef, spec: GatewayAPISpec, *, max_age: float = 0.0) -> ConvergeResult:
        service_id = api_gateway_id(ref, spec, self.id_prefix)
        if spec.adopt is not None and spec.adopt.id in RESERVED_IDS:
            raise OwnershipConflict(f"gateway {self.name}: spec.adopt.id: that id is one of Otoroshi's own "
                                    "entities; it cannot be adopted")  # fmt: skip
        api_group = group_id(self.id_prefix, ref.namespace, spec.group) if spec.group else None
        desired = with_fingerprint(
            render_service(
                ref, spec, service_id=service_id, domain=self.domain, subdomain=self.subdomain, group=self.group,
                api_group=api_group,
            )
        )  # fmt: skip
        if api_group and api_group not in self._groups:
            await self.ensure_group(api_group, f"Torii API group {spec.group} of namespace {ref.namespace}")
            self._groups.add(api_group)
        applied = await self.services.put(service_id, desired, max_age=max_age, adopting=spec.adopt is not None)
        return ConvergeResult(service_id, changed=applied.changed, created=applied.created)

    async def delete_api(self, ref: ObjectRef, gateway_id: str | None = None) -> bool:
        return await self.services.remove(gateway_id or ref.gateway_id(self.id_prefix), (ref.namespace, ref.name))

    async def inventory(self) -> Inventory:
        async def get(path: str, op: str) -> Any:
            return (await self._http.request("GET", path, op=op)).json()

        return Inventory(
            apis=list(await get("/api/services", "list services")),
            keys=[(str(k.get("clientId")), k) for k in await get("/api/apikeys", "list keys")],
            oauth_clients=[],
            api_defaults=await get("/api/services/_template", "service template"),
            key_defaults=await get("/api/apikeys/_template", "apikey template"),
            rendering={"domain": self.domain, "subdomain": self.subdomain, "group": self.group},
        )

    async def api_health(self, ref: ObjectRef, gateway_id: str | None = None) -> ApiHealth | None:
        return None
