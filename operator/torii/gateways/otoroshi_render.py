"""What Torii sends Otoroshi: the ServiceDescriptor of a GatewayAPI and the ApiKey of a GatewayKey, and where in
the admin API a key lives (its scope)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from torii.gateways.base import (
    KeyRequest,
    ObjectRef,
    deep_merge,
    fingerprint,
    is_subset,
    key_owner,
    without_fields,
)
from torii.gateways.errors import OwnershipConflict, PermanentGatewayError, Unsupported
from torii.gateways.http import admin_path
from torii.models.gatewayapi import OTOROSHI_OWNED_FIELDS, AuthMode, GatewayAPISpec
from torii.models.gatewaykey import OTOROSHI_KEY_OWNED_FIELDS


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
    if spec.upstream.tls is not None or spec.mtls is not None:
        raise Unsupported("spec.upstream.tls and spec.mtls need Otoroshi routes; this connection writes service "
                          "descriptors (set its entity to routes)")  # fmt: skip
    if spec.auth in (AuthMode.BASIC_AUTH, AuthMode.JWT):
        raise Unsupported(f"spec.auth: {spec.auth.value} needs Otoroshi routes; this connection writes service "
                          "descriptors (set its entity to routes)")  # fmt: skip
    if spec.additional_auth:
        raise Unsupported("spec.additionalAuth needs Otoroshi routes; this connection writes service descriptors "
                          "(set its entity to routes)")  # fmt: skip
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


def owned_by(ref: ObjectRef, entity: dict[str, Any]) -> bool:
    """Does an Otoroshi entity's owner record (its metadata, as `owner_metadata` writes it) name `ref`?"""
    meta = entity.get("metadata") or {}
    return ref.owns(meta.get("torii.dev/namespace"), meta.get("torii.dev/name"))


def claim_owned(gateway: str, what: str, ref: ObjectRef, entity: dict[str, Any]) -> None:
    """OwnershipConflict unless the entity (a verifier, a certificate Torii stored for a route) is `ref`'s."""
    if not owned_by(ref, entity):
        raise OwnershipConflict(
            f"gateway {gateway}: {what} {entity.get('id')} is not Torii's for GatewayAPI {ref}; Torii leaves it alone"
        )


def owner_metadata(ref: ObjectRef, kind: str) -> dict[str, str]:
    return {"torii.dev/namespace": ref.namespace, "torii.dev/name": ref.name, "torii.dev/kind": ref.kind or kind,
            "torii.dev/uid": ref.uid}  # fmt: skip


KEY_CORE_FIELDS = (
    "clientId", "clientSecret", "enabled", "throttlingQuota", "dailyQuota", "monthlyQuota", "validUntil",
    "rotation.enabled", "rotation.nextSecret", "restrictions", "metadata.torii-fingerprint",
)  # fmt: skip
# Every key Torii writes forbids itself one path: a request there with the key's credential is answered 403 by
# Otoroshi once the secret checks out, before quotas are counted and before the upstream is called (verified on
# 17.17: restrictions are handled after the secret, before the quota increment). That is how Torii confirms at
# the proxy that a credential gets through, without client traffic reaching the application.
PROBE_SUFFIX = ".torii-probe"
PROBE_RESTRICTION = {"method": "*", "path": "/.*\\.torii-probe"}
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


SCOPE_KINDS = ("services", "routes", "groups")
# Otoroshi's own entities (its admin API's service/route, group; the default group): never adopted, and a key
# authorised on them is never adopted either (17.17.0 defaults; `app.adminapi.defaultValues.*`).
RESERVED_IDS = frozenset({"admin-api-service", "admin-api-group", "default"})
ADMIN_ENTITIES = frozenset({"group_admin-api-group", "service_admin-api-service", "route_admin-api-service",
                            "admin-api-group"})  # fmt: skip


def scoped(scope: str, rest: str, *values: str) -> str:
    """An admin path under a key scope (`routes/<id>`, `services/<id>` or `groups/<id>`):
    `/api/routes/<id>/apikeys/...`."""
    kind, _, entity = scope.partition("/")
    if kind not in SCOPE_KINDS:
        raise PermanentGatewayError(f"internal: unknown key scope kind {kind!r}")
    return admin_path(f"/api/{kind}/{{}}{rest}", entity, *values)


def key_scope(request: KeyRequest, entity: str = "service") -> str:
    """Where the key lives in the admin API: under its group (apiGroup) or its (first) route or service."""
    if request.group_id:
        return f"groups/{request.group_id}"
    return f"{entity}s/{request.apis[0].gateway_id}"


def restrictions(given: Any) -> dict[str, Any]:
    """The key's restrictions: those of spec.otoroshi (when enabled there), and Torii's probe path forbidden."""
    mine = given if isinstance(given, dict) and given.get("enabled") else {}
    forbidden = [r for r in mine.get("forbidden") or [] if r != PROBE_RESTRICTION]
    return {"enabled": True, "allowLast": mine.get("allowLast", True), "allowed": mine.get("allowed") or [],
            "notFound": mine.get("notFound") or [], "forbidden": [PROBE_RESTRICTION, *forbidden]}  # fmt: skip


def render_apikey(request: KeyRequest, entity: str = "service") -> dict[str, Any]:
    """The Otoroshi ApiKey of a GatewayKey; `entity`: `route` or `service`, what its APIs are on the gateway."""
    spec = request.spec
    cred = request.credential
    if request.group_id:
        entities = [f"group_{request.group_id}"]
    else:
        entities = [f"{entity}_{api.gateway_id}" for api in request.apis]
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
    body["restrictions"] = restrictions(body.get("restrictions"))
    # The owner record last: neither spec.metadata nor spec.otoroshi can forge it.
    body["metadata"] = {k: v for k, v in (body.get("metadata") or {}).items() if not k.startswith("torii-")}
    body["metadata"] |= key_owner(request.ref, "GatewayKey")
    body["metadata"]["torii-fingerprint"] = fingerprint(body)
    return body
