"""What Torii sends Tyk: the classic API definition of a GatewayAPI and the session of a GatewayKey."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from torii.gateways.base import (
    KeyRequest,
    ObjectRef,
    deep_merge,
    dotted_get,
    dotted_set,
    fingerprint,
    key_owner,
    without_fields,
)
from torii.models.gatewayapi import TYK_OWNED_FIELDS, AuthMode, GatewayAPISpec
from torii.models.gatewaykey import TYK_KEY_OWNED_FIELDS


def with_fingerprint(definition: dict[str, Any]) -> dict[str, Any]:
    out = deep_merge(definition, {"config_data": {"torii": {"fingerprint": ""}}})
    out["config_data"]["torii"]["fingerprint"] = fingerprint(definition)
    return out


# Fields Torii derives from the neutral spec (routing, auth mode, activation). `spec.tyk` may not change them:
# `use_keyless: true` there would open a key-protected API to everyone. Overridden, and said in Ready's message.
NEUTRAL_FIELDS = {
    "active": "spec.active",
    "use_keyless": "spec.auth",
    "use_standard_auth": "spec.auth",
    "use_oauth2": "spec.auth",
    "proxy.listen_path": "spec.listenPath",
    "proxy.target_url": "spec.upstream",
    "proxy.strip_listen_path": "spec.stripListenPath",
    "proxy.enable_load_balancing": "spec.upstream.targets",
    "proxy.target_list": "spec.upstream.targets",
    "config_data.torii": "(Torii's own bookkeeping)",
}


def overridden_fields(spec: GatewayAPISpec, definition: dict[str, Any]) -> list[str]:
    """The `spec.tyk` fields that Torii overrides in `definition` (each with the neutral field to use)."""
    notes = []
    for path, neutral in NEUTRAL_FIELDS.items():
        present, value = dotted_get(spec.tyk or {}, path)
        if present and value != dotted_get(definition, path)[1]:
            notes.append(f"spec.tyk.{path} is ignored: Torii sets it from {neutral}")
    return notes


def owner_record(ref: ObjectRef, kind: str) -> dict[str, str]:
    return {"kind": ref.kind or kind, "namespace": ref.namespace, "name": ref.name, "uid": ref.uid}


def render_api_definition(ref: ObjectRef, spec: GatewayAPISpec, *, api_id: str, org_id: str) -> dict[str, Any]:
    """The Tyk classic API definition for a GatewayAPI: neutral fields, `spec.tyk` merged over them, then the
    fields of NEUTRAL_FIELDS put back (they follow the neutral spec only)."""
    urls = spec.upstream.urls
    definition: dict[str, Any] = {
        "name": str(ref),
        "api_id": api_id,
        "org_id": org_id,
        "active": spec.active,
        "use_keyless": spec.auth == AuthMode.KEYLESS,
        "use_standard_auth": spec.auth == AuthMode.KEY,
        "use_oauth2": spec.auth == AuthMode.OAUTH2,
        "proxy": {
            "listen_path": spec.listen_path,
            "target_url": urls[0],
            "strip_listen_path": spec.strip_listen_path,
            "enable_load_balancing": len(urls) > 1,
            "target_list": urls if len(urls) > 1 else [],
        },
        "version_data": {
            "not_versioned": True,
            "default_version": "Default",
            "versions": {"Default": {"name": "Default", "use_extended_paths": True}},
        },
        "tags": list(spec.tags),
        # The owner record: Torii never writes or deletes an API whose record names another object.
        "config_data": {"torii": owner_record(ref, "GatewayAPI")},
    }
    if spec.auth == AuthMode.KEY:
        definition["auth"] = {"auth_header_name": "Authorization"}
        definition["auth_configs"] = {"authToken": {"auth_header_name": "Authorization"}}
    if spec.auth == AuthMode.OAUTH2:
        definition["oauth_meta"] = {
            "allowed_access_types": ["authorization_code", "refresh_token", "client_credentials"],
            "allowed_authorize_types": ["code", "token"],
            "auth_login_redirect": "",
        }
        definition["notifications"] = {"shared_secret": "", "oauth_on_keychange_url": ""}
    if spec.rate_limit is not None:
        definition["global_rate_limit"] = {"rate": spec.rate_limit.rate, "per": spec.rate_limit.per}
    if spec.cors is not None:
        definition["CORS"] = {
            "enable": spec.cors.enabled,
            "allowed_origins": spec.cors.allowed_origins,
            "allowed_methods": spec.cors.allowed_methods,
            "allowed_headers": spec.cors.allowed_headers,
            "exposed_headers": spec.cors.exposed_headers,
            "allow_credentials": spec.cors.allow_credentials,
            "max_age": spec.cors.max_age,
            "options_passthrough": False,
        }
    if spec.tyk:
        neutral = definition
        definition = deep_merge(definition, without_fields(spec.tyk, TYK_OWNED_FIELDS, fold=True), fold=True)
        for path in NEUTRAL_FIELDS:
            present, value = dotted_get(neutral, path)
            if present:
                dotted_set(definition, path, value)
    return definition


# Tyk has no "unlimited" rate: a key without spec.rateLimit gets a rate no client can reach.
UNLIMITED_RATE = {"rate": 1_000_000_000, "per": 1}
QUOTA_SECONDS = {"day": 86_400, "month": 2_592_000}
KEY_CORE_FIELDS = (
    "org_id", "rate", "per", "quota_max", "quota_renewal_rate", "expires", "is_inactive",
    "meta_data.torii-fingerprint",
)  # fmt: skip


def _unix(rfc3339: str | None) -> int:
    if not rfc3339:
        return 0
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


def render_session(request: KeyRequest, org_id: str) -> dict[str, Any]:
    """The Tyk session object of a key: access rights from the referenced APIs, limits from the spec."""
    spec = request.spec
    rate = {"rate": spec.rate_limit.rate, "per": spec.rate_limit.per} if spec.rate_limit else UNLIMITED_RATE
    session: dict[str, Any] = {
        "org_id": org_id,
        "alias": str(request.ref),
        **rate,
        "allowance": rate["rate"],
        "quota_max": spec.quota.max if spec.quota else -1,
        "quota_renewal_rate": QUOTA_SECONDS[spec.quota.period.value] if spec.quota else 0,
        "expires": _unix(spec.expires),
        "is_inactive": not spec.enabled,
        "tags": list(spec.tags),
        "meta_data": dict(spec.metadata),
        "access_rights": {
            api.gateway_id: {
                "api_id": api.gateway_id,
                "api_name": api.name,
                "versions": list(api.versions) or ["Default"],
                "allowed_urls": [],
            }
            for api in request.apis
        },
    }
    if spec.tyk:
        session = deep_merge(session, without_fields(spec.tyk, TYK_KEY_OWNED_FIELDS, fold=True), fold=True)
    # The owner record last: neither spec.metadata nor spec.tyk can forge it.
    session["meta_data"] = {k: v for k, v in (session.get("meta_data") or {}).items() if not k.startswith("torii-")}
    session["meta_data"] |= key_owner(request.ref, "GatewayKey")
    session["meta_data"]["torii-fingerprint"] = fingerprint(session)
    return session
