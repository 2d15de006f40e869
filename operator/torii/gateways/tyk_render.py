"""What Torii sends Tyk: the classic API definition of a GatewayAPI and the session of a GatewayKey."""

from __future__ import annotations

import base64
import hashlib
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
from torii.gateways.errors import PermanentGatewayError, Unsupported
from torii.gateways.tyk_certs import cert_id, pin_id
from torii.models.gatewayapi import TYK_OWNED_FIELDS, ApiJwt, AuthMode, GatewayAPISpec
from torii.models.gatewaykey import TYK_KEY_OWNED_FIELDS, KeyType


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
    "use_basic_auth": "spec.auth",
    "enable_jwt": "spec.auth",
    "base_identity_provided_by": "spec.additionalAuth",
    "jwt_source": "spec.jwt",
    "jwt_signing_method": "spec.jwt.algorithm",
    "jwt_identity_base_field": "spec.jwt.identityClaim",
    "jwt_default_policies": "spec.jwt",
    "jwt_policy_field_name": "spec.jwt",
    "jwt_client_base_field": "spec.jwt",
    "upstream_certificates": "spec.upstream.tls",
    "pinned_public_keys": "spec.upstream.tls.pinnedPublicKeys",
    "use_mutual_tls_auth": "spec.mtls",
    "client_certificates": "spec.mtls",
    "proxy.listen_path": "spec.listenPath",
    "proxy.target_url": "spec.upstream",
    "proxy.strip_listen_path": "spec.stripListenPath",
    "proxy.enable_load_balancing": "spec.upstream.targets",
    "proxy.target_list": "spec.upstream.targets",
    "config_data.torii": "(Torii's own bookkeeping)",
}


# Neutral fields only some specs render (an auth mode, upstream TLS): where Torii's definition has none,
# spec.tyk's is dropped (not only overridden: a tenant's `upstream_certificates` could name another's).
AUTH_ONLY_FIELDS = frozenset({
    "use_basic_auth", "enable_jwt", "jwt_source", "jwt_signing_method", "jwt_identity_base_field",
    "jwt_default_policies", "jwt_policy_field_name", "jwt_client_base_field", "upstream_certificates",
    "use_mutual_tls_auth", "client_certificates", "pinned_public_keys", "base_identity_provided_by",
})  # fmt: skip


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
        "use_standard_auth": AuthMode.KEY in spec.modes,
        "use_oauth2": AuthMode.OAUTH2 in spec.modes,
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
    configs: dict[str, Any] = {}
    if AuthMode.KEY in spec.modes:
        definition["auth"] = {"auth_header_name": "Authorization"}
        configs["authToken"] = {"auth_header_name": "Authorization"}
    if AuthMode.BASIC_AUTH in spec.modes:
        definition["use_basic_auth"] = True
        configs["basic"] = {"auth_header_name": "Authorization"}
    if AuthMode.JWT in spec.modes:
        jwt = jwt_fields(spec, api_id)
        configs |= jwt.pop("auth_configs")
        definition |= jwt
    if configs:
        definition["auth_configs"] = configs
    if len(spec.modes) > 1:
        # Tyk runs every enabled mode's middleware and each must pass; only the base identity's sets the
        # session whose rate limit and quota count (the others' would be a second, unlimited one).
        definition["base_identity_provided_by"] = BASE_IDENTITY[spec.identity]
    if AuthMode.OAUTH2 in spec.modes:
        definition["oauth_meta"] = {
            "allowed_access_types": ["authorization_code", "refresh_token", "client_credentials"],
            "allowed_authorize_types": ["code", "token"],
            "auth_login_redirect": "",
        }
        definition["notifications"] = {"shared_secret": "", "oauth_on_keychange_url": ""}
    tls = spec.upstream.tls
    if tls is not None:
        if tls.pair is not None:
            # Uploaded under this API's own prefix (`tyk_certs`): every host of the API presents it.
            definition["upstream_certificates"] = {"*": cert_id(api_id, tls.pair[0])}
        if tls.pins:
            # Tyk pins per upstream host (`*`: every host of the API) and then skips CA verification.
            definition["pinned_public_keys"] = {"*": ",".join(pin_id(api_id, pin) for pin in tls.pins)}
        if tls.insecure_skip_verify:
            definition["proxy"]["transport"] = {"ssl_insecure_skip_verify": True}
    if spec.mtls is not None:
        listener = {k.lower(): v for k, v in (spec.tyk or {}).items()}
        if str(listener.get("protocol", "")).lower() != "https" or not listener.get("listen_port"):
            # Verified in 5.10.2's cert.go: on a port shared with an API that does not require client
            # certificates, Tyk only asks for one and then accepts any presented chain holding an allowed
            # certificate (a public CA certificate sent along a self-signed one passes).
            raise Unsupported("spec.mtls: Tyk enforces client certificates only on a listener of the API's own: "
                              "set spec.tyk.protocol: https and spec.tyk.listen_port (a port no other API uses), "
                              "with its server certificate in spec.tyk.certificates")  # fmt: skip
        # Checked before any other authentication (Tyk: a gate, with keyless as with keys). A CA lets in what it
        # signed, another certificate itself (Tyk compares the peer's chain with each).
        definition["use_mutual_tls_auth"] = True
        definition["client_certificates"] = [cert_id(api_id, c) for c in spec.mtls.certificates]
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
            elif path in AUTH_ONLY_FIELDS:
                # Absent from Torii's definition (another auth mode): spec.tyk may not bring it in (an
                # `enable_jwt` with a token-chosen policy on a key API); Tyk's zero value is what Torii means.
                dotted_delete(definition, path)
    return definition


def dotted_delete(data: dict[str, Any], path: str) -> None:
    """Remove `path`, in any spelling (Tyk reads field names case-insensitively: `Upstream_Certificates`)."""
    *parents, last = path.split(".")
    for part in parents:
        child = next((v for k, v in data.items() if k.lower() == part.lower()), None)
        if not isinstance(child, dict):
            return
        data = child
    for key in [k for k in data if k.lower() == last.lower()]:
        del data[key]


SIGNING_METHODS = {"HS": "hmac", "RS": "rsa", "ES": "ecdsa"}
# Tyk's names of the mode that provides the session (`apidef.AuthTypeEnum`).
BASE_IDENTITY = {AuthMode.KEY: "auth_token", AuthMode.BASIC_AUTH: "basic_auth_user", AuthMode.OAUTH2: "oauth_key",
                 AuthMode.JWT: "jwt_claim"}  # fmt: skip


def jwt_fields(spec: GatewayAPISpec, api_id: str) -> dict[str, Any]:
    """A JWT API's fields. Verified on 5.10.2: `jwt_source` set = every token signed by that key passes, as the
    policy `jwt_default_policies` names (Torii's own, `render_policy`: without a loaded policy Tyk answers 403);
    no `jwt_source` = the token's `kid` names a key whose `jwt_data.secret` signs it (GatewayKeys of type jwt).
    A base64 `jwt_source` is the HMAC secret or the PEM key; a raw http(s) URL is a JWKS. The claims that would
    let a token pick its own policy or borrow another key's are turned off: access comes from Torii only."""
    jwt = spec.jwt or ApiJwt()
    if jwt.issuer or jwt.audience:
        raise Unsupported("spec.jwt.issuer/audience: Tyk classic APIs do not check the iss and aud claims (Tyk "
                          "checks them on OAS APIs only); remove them, or check them upstream")  # fmt: skip
    fields: dict[str, Any] = {
        "enable_jwt": True,
        "jwt_signing_method": SIGNING_METHODS[jwt.effective_algorithm.family],
        "jwt_identity_base_field": jwt.identity_claim,
        "jwt_policy_field_name": "",
        "jwt_client_base_field": "",
        "jwt_source": "",
        "jwt_default_policies": [],
        "auth_configs": {"jwt": {"auth_header_name": jwt.header}},
    }
    if jwt.jwks_url is not None:
        fields |= {"jwt_source": jwt.jwks_url, "jwt_default_policies": [api_id]}
    elif jwt.secret_ref is not None:
        if jwt.key is None:
            raise PermanentGatewayError("spec.jwt.secretRef: the verification key was not read")
        fields |= {"jwt_source": base64.b64encode(jwt.key.encode()).decode(), "jwt_default_policies": [api_id]}
    return fields


def render_policy(ref: ObjectRef, *, api_id: str, org_id: str) -> dict[str, Any]:
    """The policy a JWT API with its own key grants its callers: that API, no limit (the API's own rate limit
    still applies). Its id is the API's."""
    return {
        "id": api_id,
        "name": f"{ref} (JWT)",
        "org_id": org_id,
        "active": True,
        **UNLIMITED_RATE,
        "quota_max": -1,
        "access_rights": {
            api_id: {"api_id": api_id, "api_name": str(ref), "versions": ["Default"], "allowed_urls": []}
        },
        "tags": ["torii"],
        "meta_data": key_owner(ref, "GatewayAPI"),
    }


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
    secret = request.credential.client_secret
    if spec.type != KeyType.KEY and secret:
        # Tyk never returns a basic-auth password (and Torii never reads a secret back): the fingerprint covers a
        # salted digest of it, so a new password or JWT secret is written, the same one is not.
        session["meta_data"]["torii-secret"] = hashlib.sha256(f"{request.ref.uid}\0{secret}".encode()).hexdigest()
    session["meta_data"]["torii-fingerprint"] = fingerprint(session)
    session["meta_data"].pop("torii-secret", None)
    if spec.type == KeyType.BASIC_AUTH and secret:
        session["basic_auth_data"] = {"password": secret, "hash_type": ""}  # Tyk hashes it (bcrypt)
        # A user's name is no secret: should its API turn to per-key JWT, a token whose kid names the user must
        # not verify with an empty secret. One derived from the password nobody else knows.
        derived = hashlib.sha256(f"{request.ref.uid}\0{secret}\0jwt".encode()).hexdigest()
        session["jwt_data"] = {"secret": derived}
    elif spec.type == KeyType.JWT and secret:
        session["jwt_data"] = {"secret": secret}  # HS256 tokens whose `kid` is this key's name
    return session
