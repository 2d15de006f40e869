"""Otoroshi services and apikeys as GatewayAPI / GatewayKey manifests that adopt them."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from torii.gateways.base import Credential, Inventory, KeyRequest, ObjectRef, ResolvedApi
from torii.gateways.otoroshi_render import DEFAULT_QUOTA, render_apikey, render_service
from torii.importer.manifests import Manifest, Names, Skipped, key_state, to_manifest
from torii.importer.overrides import first_error, minimal_override, prune, without
from torii.models.gatewayapi import LISTEN_PATH_PATTERN, GatewayAPISpec
from torii.models.gatewaykey import OTOROSHI_KEY_OWNED_FIELDS, GatewayKeySpec

# Service fields Torii derives from the neutral spec or keeps for itself.
SERVICE_DERIVED = ("id", "matchingRoot", "stripPath", "enabled", "metadata.torii-fingerprint")
KEY_IGNORED = (*OTOROSHI_KEY_OWNED_FIELDS, "metadata.torii-fingerprint", "metadata.torii-object")


def service_manifest(service: dict[str, Any], template: dict[str, Any], *, gateway: str, domain: str,
                     subdomain: str, group: str, names: Names, namespace: str | None = None,
                     ) -> Manifest | Skipped:  # fmt: skip
    service_id = str(service.get("id") or "")
    what = f"Otoroshi service {service_id} ({service.get('name', '')})"
    meta = service.get("metadata") or {}
    if meta.get("torii.dev/name"):
        return Skipped(what, f"already managed by Torii (GatewayAPI {meta.get('torii.dev/namespace')}/"
                             f"{meta['torii.dev/name']})")  # fmt: skip
    listen_path = service.get("matchingRoot")
    if not isinstance(listen_path, str) or not re.match(LISTEN_PATH_PATTERN, listen_path):
        return Skipped(what, "routes every path of its host (no matchingRoot): a GatewayAPI has a listen path")
    root = str(service.get("root") or "/")
    urls = [f"{t.get('scheme', 'http')}://{t.get('host')}{root}" for t in service.get("targets") or []]
    if not urls:
        return Skipped(what, "has no targets")
    private, public = service.get("privatePatterns") or [], service.get("publicPatterns") or []
    auth = "keyless" if public == ["/.*"] and not private else "key"
    spec: dict[str, Any] = {"gateway": gateway, "listenPath": listen_path}
    spec["upstream"] = {"targets": urls} if len(urls) > 1 else {"url": urls[0]}
    if service.get("stripPath") is False:
        spec["stripListenPath"] = False
    if auth != "keyless":
        spec["auth"] = auth
    if service.get("enabled") is False:
        spec["active"] = False
    spec["adopt"] = {"id": service_id}
    k8s_name = names.claim(str(service.get("name") or ""), service_id)
    try:
        parsed = GatewayAPISpec.model_validate(spec)
        rendered = render_service(ObjectRef(namespace or "default", k8s_name), parsed, service_id=service_id,
                                  domain=domain, subdomain=subdomain, group=group)  # fmt: skip
        derived = [*SERVICE_DERIVED, "metadata.torii.dev/namespace", "metadata.torii.dev/name"]
        override = prune(minimal_override(without(service, derived), without(rendered, derived), template))
    except (ValidationError, ValueError) as exc:
        return Skipped(what, f"cannot be expressed as a GatewayAPI: {first_error(exc)}")
    made = to_manifest("GatewayAPI", GatewayAPISpec, k8s_name, spec, "otoroshi", override, what, namespace)
    return made


def key_manifest(key: dict[str, Any], template: dict[str, Any], *, gateway: str, apis: dict[str, str],
                 names: Names, namespace: str | None = None) -> Manifest | Skipped:  # fmt: skip
    """`apis`: Otoroshi service id -> name of the GatewayAPI that adopts it."""
    client_id = str(key.get("clientId") or "")
    what = f"Otoroshi apikey {client_id} ({key.get('clientName', '')})"
    meta = key.get("metadata") or {}
    if meta.get("torii-object"):
        return Skipped(what, f"already managed by Torii (GatewayKey {meta['torii-object']})")
    if (key.get("rotation") or {}).get("enabled"):
        return Skipped(what, "uses Otoroshi's automatic rotation; a GatewayKey rotates declaratively (spec.rotation)")
    refs = []
    for entity in key.get("authorizedEntities") or []:
        kind, _, ident = str(entity).partition("_")
        if kind != "service":
            return Skipped(what, f"authorizes {entity}: only service authorizations map to spec.apis")
        if ident not in apis:
            return Skipped(what, f"authorizes service {ident}, which this import does not adopt as a keyed API")
        refs.append({"name": apis[ident]})
    if not refs:
        return Skipped(what, "authorizes no service")
    spec: dict[str, Any] = {"gateway": gateway, "apis": refs}
    throttling = int(key.get("throttlingQuota") or DEFAULT_QUOTA)
    if throttling != DEFAULT_QUOTA:
        spec["rateLimit"] = {"rate": throttling, "per": 10}  # Otoroshi throttles per 10-second window
    daily, monthly = int(key.get("dailyQuota") or DEFAULT_QUOTA), int(key.get("monthlyQuota") or DEFAULT_QUOTA)
    if daily != DEFAULT_QUOTA:
        spec["quota"] = {"max": daily, "period": "day"}
    elif monthly != DEFAULT_QUOTA:
        spec["quota"] = {"max": monthly, "period": "month"}
    key_state(spec, expires_unix=int(key.get("validUntil") or 0) / 1000, enabled=key.get("enabled") is not False,
              tags=key.get("tags"), metadata=meta)  # fmt: skip
    spec["adopt"] = {"id": client_id}
    k8s_name = names.claim(str(key.get("clientName") or ""), f"key-{client_id}")
    try:
        parsed = GatewayKeySpec.model_validate(spec)
        resolved = tuple(ResolvedApi(r["name"], sid) for sid, r in zip(
            [str(e).partition("_")[2] for e in key.get("authorizedEntities") or []], refs, strict=True))  # fmt: skip
        request = KeyRequest(ObjectRef(namespace or "default", k8s_name), parsed, resolved, None, Credential())
        rendered = render_apikey(request)
        override = prune(minimal_override(without(key, KEY_IGNORED), without(rendered, KEY_IGNORED), template))
    except (ValidationError, ValueError) as exc:
        return Skipped(what, f"cannot be expressed as a GatewayKey: {first_error(exc)}")
    made = to_manifest("GatewayKey", GatewayKeySpec, k8s_name, spec, "otoroshi", override, what, namespace)
    return made


def map_api(item: dict[str, Any], inventory: Inventory, *, gateway: str, names: Names,
            namespace: str | None) -> Manifest | Skipped:  # fmt: skip
    rendering = inventory.rendering
    return service_manifest(item, inventory.api_defaults, gateway=gateway, domain=rendering["domain"],
                            subdomain=rendering["subdomain"], group=rendering["group"], names=names,
                            namespace=namespace)  # fmt: skip


def map_key(key_id: str, body: dict[str, Any], inventory: Inventory, *, gateway: str, apis: dict[str, str],
            names: Names, namespace: str | None) -> Manifest | Skipped:  # fmt: skip
    return key_manifest(body, inventory.key_defaults, gateway=gateway, apis=apis, names=names, namespace=namespace)
