"""Tyk API definitions and keys as GatewayAPI / GatewayKey manifests that adopt them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from torii.gateways.base import Credential, Inventory, KeyRequest, ObjectRef, ResolvedApi, dotted_get
from torii.gateways.tyk_keys import OTHER_CREDENTIAL_FIELDS, session_form
from torii.gateways.tyk_render import NEUTRAL_FIELDS, UNLIMITED_RATE, render_api_definition, render_session
from torii.gateways.tyk_sync import core
from torii.importer.manifests import KeyedApi, Manifest, Names, Skipped, key_state, to_manifest
from torii.importer.overrides import first_error, is_zero, minimal_override, prune, without
from torii.models.gatewayapi import LISTEN_PATH_PATTERN, TYK_OWNED_FIELDS, URL_PATTERN, GatewayAPISpec
from torii.models.gatewaykey import TYK_KEY_OWNED_FIELDS, GatewayKeySpec
from torii.models.oauthclient import OAuthClientSpec

# Authentication modes Torii has no neutral field for: an API using one cannot be adopted without changing
# who may call it.
OTHER_AUTH = (
    "use_openid", "enable_signature_checking",
    "use_go_plugin_auth", "enable_coprocess_auth", "external_oauth.enabled",
)  # fmt: skip
# The auth modes Torii maps, as the flag that turns each on: an API must use exactly one.
AUTH_FLAGS = {"use_standard_auth": "key", "use_oauth2": "oauth2", "use_basic_auth": "basicAuth", "enable_jwt": "jwt"}
# JWT settings that let a token choose its own rights (a policy, another key's): Torii grants access itself.
JWT_TOKEN_CHOSEN = ("jwt_policy_field_name", "jwt_client_base_field", "jwt_scope_to_policy_mapping",
                    "scopes.jwt.scope_to_policy")  # fmt: skip
ALGORITHMS = {"": "HS256", "hmac": "HS256", "rsa": "RS256", "ecdsa": "ES256"}
# Session fields Tyk maintains itself (counters, timestamps): never part of a manifest.
KEY_RUNTIME_FIELDS = (
    "last_check", "allowance", "date_created", "quota_renews", "quota_remaining", "last_updated",
    "id_extractor_deadline",
)  # fmt: skip
# Session fields that make a key something else than an access key, or hold secret material.
KEY_CREDENTIAL_FIELDS = ("basic_auth_data", "jwt_data", *OTHER_CREDENTIAL_FIELDS)  # every credential a session holds
QUOTA_PERIODS = {86_400: "day", 2_592_000: "month"}


def _unversioned_noise(override: dict[str, Any]) -> dict[str, Any]:
    """Drop version_data differences that change nothing: an unversioned API whose only version has no
    extended paths is served the same whatever its default_version and use_extended_paths say."""
    data = override.get("version_data")
    if not isinstance(data, dict) or set(data) - {"default_version", "versions"}:
        return override
    versions = data.get("versions") or {}
    if set(versions) - {"Default"} or set(versions.get("Default") or {}) - {"use_extended_paths"}:
        return override
    if data.get("default_version", "") not in ("", "Default"):
        return override
    return {k: v for k, v in override.items() if k != "version_data"}


def api_manifest(definition: dict[str, Any], *, gateway: str, org_id: str, names: Names,
                 name: str | None = None, namespace: str | None = None, source: str | None = None,
                 refs: dict[str, Any] | None = None) -> Manifest | Skipped:  # fmt: skip
    """`refs`: the tyk-operator ApiDefinition's spec, whose `*_refs` name the Secrets its store certificates came
    from (tyk-operator uploads `tls.crt` + `tls.key` of each): those Secrets are what Torii's spec names."""
    api_id = str(definition.get("api_id") or "")
    what = source or f"Tyk API {api_id} ({definition.get('name', '')})"
    torii = dotted_get(definition, "config_data.torii")[1]
    if isinstance(torii, dict) and torii.get("name"):
        return Skipped(what, f"already managed by Torii (GatewayAPI {torii.get('namespace')}/{torii.get('name')})")
    if not api_id:
        return Skipped(what, "has no api_id")
    proxy = definition.get("proxy") or {}
    listen_path = str(proxy.get("listen_path") or "")
    if not re.match(LISTEN_PATH_PATTERN, listen_path):
        return Skipped(what, f"listen path {listen_path!r} is not a path Torii accepts (must start with /)")
    urls = list(proxy.get("target_list") or []) if proxy.get("enable_load_balancing") else []
    urls = urls or [str(proxy.get("target_url") or "")]
    if bad := [u for u in urls if not re.match(URL_PATTERN, u)]:
        return Skipped(what, f"upstream {bad[0]!r} is not an http(s) URL")
    certificates = certificate_fields(definition, urls, refs or {})
    if isinstance(certificates, str):
        return Skipped(what, certificates)
    other = [f for f in OTHER_AUTH if dotted_get(definition, f)[1]]
    if other:
        return Skipped(what, f"authentication {', '.join(other)} has no Torii equivalent (keyless, key, "
                             "basicAuth, jwt, oauth2)")  # fmt: skip
    modes = [mode for flag, mode in AUTH_FLAGS.items() if definition.get(flag)]
    if len(modes) > 1:
        return Skipped(what, several_modes_note(modes))
    auth = modes[0] if modes else "keyless"
    if auth == "keyless" and not definition.get("use_keyless"):
        return Skipped(what, "no authentication mode is enabled (Tyk refuses every request to it)")
    jwt: dict[str, Any] | None = None
    if auth == "jwt":
        if chosen := [f for f in JWT_TOKEN_CHOSEN if not is_zero(dotted_get(definition, f)[1])]:
            return Skipped(what, f"JWT {', '.join(chosen)} let a token choose its rights; Torii grants access itself")
        jwt, note = jwt_spec(definition)
        if note:
            return Skipped(what, note)

    spec = neutral_spec(definition, gateway, listen_path, urls, auth)
    if jwt:
        spec["jwt"] = jwt
    if tls := certificates.get("tls"):
        spec["upstream"]["tls"] = tls
    if mtls := certificates.get("mtls"):
        spec["mtls"] = mtls
    api_org = str(definition.get("org_id") or "")
    spec["adopt"] = {"id": api_id, **({"orgId": api_org} if api_org != org_id else {})}
    k8s_name = name or names.claim(str(definition.get("name") or ""), api_id)
    try:
        parsed = GatewayAPISpec.model_validate(spec)
        # spec.mtls left out here: it needs the listener spec.tyk will carry, and its fields are neutral anyway.
        rendered = render_api_definition(ObjectRef(namespace or "default", k8s_name),
                                         parsed.model_copy(update={"mtls": None}), api_id=api_id,
                                         org_id=api_org)  # fmt: skip
        # Torii derives these from the neutral spec (and Tyk OSS serves an API whatever its `active` says).
        actual = without(definition, [*TYK_OWNED_FIELDS, *NEUTRAL_FIELDS])
        override = _unversioned_noise(prune(minimal_override(actual, without(rendered, list(NEUTRAL_FIELDS)), {})))
    except (ValidationError, ValueError) as exc:
        return Skipped(what, f"cannot be expressed as a GatewayAPI: {first_error(exc)}")
    made = to_manifest("GatewayAPI", GatewayAPISpec, k8s_name, spec, "tyk", override, what, namespace)
    if isinstance(made, Skipped):
        return made
    parsed = GatewayAPISpec.model_validate(made.spec)
    check = render_api_definition(ObjectRef(namespace or "default", k8s_name), parsed, api_id=api_id, org_id=api_org)
    differing = [k for k, v in core(check).items() if not k.startswith("config_data.torii.") and k != "owner"
                 and k != "active" and v != core(definition).get(k)]  # fmt: skip
    if differing:
        return Skipped(what, f"would not be served the same way ({', '.join(differing)} differ)")
    return made


def certificate_fields(definition: dict[str, Any], urls: list[str], refs: dict[str, Any]) -> dict[str, Any] | str:
    """spec.upstream.tls / spec.mtls for the store certificates an API uses, when the tyk-operator ApiDefinition
    (`refs`) names the Secret behind each; else why the API is listed. Tyk's admin API returns a certificate's
    metadata only, never its PEM: without the Secret there is nothing to name."""
    tls: dict[str, Any] = {}
    upstreams = [urlsplit(u) for u in urls]
    https = all(u.scheme == "https" for u in upstreams)  # Torii's upstream TLS is for https upstreams only

    def one_secret(field: str, refs_field: str) -> str | None:
        # Torii presents or pins for every host of the API (`*`): a per-host map maps only when its one host is
        # the API's, and tyk-operator uploaded every Secret it names (it skips a missing one and serves without).
        live, named = definition.get(field) or {}, refs.get(refs_field) or {}
        if not https or len(live) != 1 or set(live) != set(named) or not isinstance(named, dict):
            return None
        [(domain, secret)] = named.items()
        every_host = all(domain in (u.hostname, u.netloc) for u in upstreams)
        return str(secret) if domain == "*" or every_host else None

    if definition.get("upstream_certificates") and not definition.get("upstream_certificates_disabled"):
        if (secret := one_secret("upstream_certificates", "upstream_certificate_refs")) is None:
            return ("presents upstream client certificates from Tyk's store; put the certificate in a "
                    "kubernetes.io/tls Secret and set spec.upstream.tls.clientCertificateSecretName")  # fmt: skip
        tls["clientCertificateSecretName"] = secret
    if definition.get("pinned_public_keys") and not definition.get("certificate_pinning_disabled"):
        if (secret := one_secret("pinned_public_keys", "pinned_public_keys_refs")) is None:
            return ("pins upstream public keys from Tyk's store; put each key (or the upstream's certificate) in a "
                    "Secret and set spec.upstream.tls.pinnedPublicKeys")  # fmt: skip
        tls["pinnedPublicKeys"] = [{"name": secret, "key": "tls.crt"}]
    found: dict[str, Any] = {"tls": tls} if tls else {}
    if definition.get("use_mutual_tls_auth"):
        named = [str(n) for n in refs.get("client_certificate_refs") or []]
        if not named or len(named) != len(definition.get("client_certificates") or []):
            return ("checks client certificates from Tyk's store; put each (or their CA) in a Secret and set "
                    "spec.mtls.allowed")  # fmt: skip
        listener = {k.lower(): v for k, v in definition.items()}
        if str(listener.get("protocol", "")).lower() != "https" or not listener.get("listen_port"):
            return ("checks client certificates on the shared listener, where Tyk only asks for one (any chain "
                    "holding an allowed certificate passes); Torii requires the API's own listener: set "
                    "protocol https and listen_port first")  # fmt: skip
        found["mtls"] = {"allowed": [{"name": n, "key": "tls.crt"} for n in named]}
    return found


def several_modes_note(modes: list[str]) -> str:
    """Why an API of several modes is listed, and what GatewayAPI would serve it."""
    others = [m for m in modes if m != "jwt"]
    if len(modes) == 2 and len(others) == 1:
        return (f"combines {others[0]} and jwt: write it as spec.auth: {others[0]} with spec.additionalAuth: [jwt], "
                "the JWT key in a Secret named by spec.jwt.secretRef (or spec.jwt.jwksUrl) and spec.jwt.header "
                "another header than Authorization (the importer never writes a key into a manifest)")  # fmt: skip
    return (f"combines several auth modes ({', '.join(modes)}): Torii combines jwt with one of key, basicAuth "
            "and oauth2 (they all read the Authorization header)")  # fmt: skip


def jwt_spec(definition: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """spec.jwt of a Tyk JWT API, or why it cannot be one. A key in `jwt_source` is never written into a manifest:
    the API is listed with the Secret to create instead."""
    source = str(definition.get("jwt_source") or "")
    method = str(definition.get("jwt_signing_method") or "")
    if method not in ALGORITHMS:
        return None, f"JWT signing method {method!r} is not hmac, rsa or ecdsa"
    jwt: dict[str, Any] = {}
    if ALGORITHMS[method] != "HS256":
        jwt["algorithm"] = ALGORITHMS[method]
    claim = definition.get("jwt_identity_base_field")
    if claim and claim != "sub":
        jwt["identityClaim"] = str(claim)
    header = dotted_get(definition, "auth_configs.jwt.auth_header_name")[1]
    if header and header != "Authorization":
        jwt["header"] = str(header)
    if re.match(r"^https?://", source):
        if ALGORITHMS[method] == "HS256":
            return None, "JWT from a JWKS with signing method hmac: Torii checks JWKS tokens as RS or ES"
        if definition.get("jwt_default_policies"):
            return None, (f"JWT callers get policies {definition['jwt_default_policies']} (their limits and "
                          "rights); a Torii JWT API grants its callers that API only, without limits")  # fmt: skip
        return None, ("JWT from a JWKS with no default policy: Tyk refuses every token; adopted, Torii would let "
                      "the identity provider's tokens in")  # fmt: skip
    if not source and ALGORITHMS[method] != "HS256":
        return None, "per-key JWT with RSA/ECDSA public keys: Torii's GatewayKeys of type jwt carry HMAC secrets"
    if source:
        return None, ("JWT key held in jwt_source: put it in a Secret of the target namespace and set "
                      "spec.jwt.secretRef (the importer never writes a key into a manifest)")  # fmt: skip
    return jwt or None, None


def neutral_spec(definition: dict[str, Any], gateway: str, listen_path: str, urls: list[str], auth: str
                 ) -> dict[str, Any]:  # fmt: skip
    """The GatewayAPI fields a Tyk definition maps onto (the rest goes to spec.tyk)."""
    proxy = definition.get("proxy") or {}
    spec: dict[str, Any] = {"gateway": gateway, "listenPath": listen_path}
    spec["upstream"] = {"targets": urls} if len(urls) > 1 else {"url": urls[0]}
    if not proxy.get("strip_listen_path"):
        spec["stripListenPath"] = False
    if auth != "keyless":
        spec["auth"] = auth
    limit = definition.get("global_rate_limit") or {}
    if (limit.get("rate") or 0) >= 1 and (limit.get("per") or 0) >= 1:
        spec["rateLimit"] = {"rate": int(limit["rate"]), "per": int(limit["per"])}
    cors = definition.get("CORS") or {}
    if cors.get("enable"):
        spec["cors"] = {
            "allowedOrigins": cors.get("allowed_origins") or [],
            "allowedMethods": cors.get("allowed_methods") or [],
            "allowedHeaders": cors.get("allowed_headers") or [],
            "exposedHeaders": cors.get("exposed_headers") or [],
            "allowCredentials": bool(cors.get("allow_credentials")),
            "maxAge": int(cors.get("max_age") or 0),
        }
    if tags := [t for t in definition.get("tags") or [] if isinstance(t, str)]:
        spec["tags"] = tags
    return spec


def key_form(session: dict[str, Any]) -> tuple[str | None, str]:
    """The GatewayKey type of a Tyk session (`key`, `basicAuth`, `jwt`), or None and why none fits."""
    form = session_form(session)
    if form is None:
        fields = ", ".join(f for f in OTHER_CREDENTIAL_FIELDS if session.get(f))
        return None, f"is an HMAC, certificate or OAuth credential ({fields}): no GatewayKey type"
    return form.value, ""


def key_manifest(key_id: str, session: dict[str, Any], *, gateway: str, apis: dict[str, KeyedApi], names: Names,
                 namespace: str | None = None) -> Manifest | Skipped:  # fmt: skip
    """`apis`: Tyk api_id -> the GatewayAPI that adopts it (and the key type its callers hold). Keys, basic-auth
    users and JWT consumers are adopted by their hash: Tyk never returns a password, and a consumer's kid is the
    key's name, which Tyk only lists hashed (hand it over in spec.adopt.credentialSecretRef)."""
    what = f"Tyk key {key_id} ({session.get('alias') or 'no alias'})"
    meta = session.get("meta_data") or {}
    if meta.get("torii-object"):
        return Skipped(what, f"already managed by Torii (GatewayKey {meta['torii-object']})")
    form, why = key_form(session)
    if form is None:
        return Skipped(what, why)
    if session.get("apply_policies") or session.get("apply_policy_id"):
        return Skipped(what, "takes its rights from policies; a GatewayKey carries its own (spec.apis, limits)")
    rights = session.get("access_rights") or {}
    refs = []
    for api_id, right in rights.items():
        if api_id not in apis:
            return Skipped(what, f"gives access to API {api_id}, which this import does not adopt as an API "
                                 "with keys, basic-auth users or JWT consumers")  # fmt: skip
        if apis[api_id].key_type != form:
            return Skipped(what, f"is a {form} credential for API {api_id}, whose callers hold "
                                 f"{apis[api_id].key_type} credentials")  # fmt: skip
        if not is_zero(right.get("limit")) or right.get("allowed_urls") or right.get("restricted_types"):
            return Skipped(what, f"has per-API limits or allowed URLs for {api_id}; a GatewayKey has one set")
        ref: dict[str, Any] = {"name": apis[api_id].name}
        versions = list(right.get("versions") or [])
        if versions and versions != ["Default"]:
            ref["versions"] = versions
        refs.append(ref)
    if not refs:
        return Skipped(what, "gives access to no API")
    spec: dict[str, Any] = {"gateway": gateway, **({"type": form} if form != "key" else {}), "apis": refs}
    rate, per = session.get("rate") or 0, session.get("per") or 0
    if rate >= 1 and per >= 1 and {"rate": rate, "per": per} != UNLIMITED_RATE:
        spec["rateLimit"] = {"rate": int(rate), "per": int(per)}
    quota_max, renewal = int(session.get("quota_max") or -1), int(session.get("quota_renewal_rate") or 0)
    if quota_max >= 1 and renewal in QUOTA_PERIODS:
        spec["quota"] = {"max": quota_max, "period": QUOTA_PERIODS[renewal]}
    key_state(spec, expires_unix=max(0, int(session.get("expires") or 0)), enabled=not session.get("is_inactive"),
              tags=session.get("tags"), metadata=meta)  # fmt: skip
    spec["adopt"] = {"id": key_id}
    k8s_name = names.claim(str(session.get("alias") or ""), f"key-{key_id}")
    ref_obj = ObjectRef(namespace or "default", k8s_name)
    resolved = tuple(ResolvedApi(r["name"], api_id, tuple(r.get("versions", ()))) for api_id, r in
                     zip(rights, refs, strict=True))  # fmt: skip
    try:
        parsed = GatewayKeySpec.model_validate(spec)
        rendered = render_session(KeyRequest(ref_obj, parsed, resolved, None, Credential()), str(session.get("org_id")))
        ignored = [*TYK_KEY_OWNED_FIELDS, *KEY_RUNTIME_FIELDS, *KEY_CREDENTIAL_FIELDS, "meta_data.torii-fingerprint",
                   "meta_data.torii-object"]  # fmt: skip
        override = prune(minimal_override(without(session, ignored), without(rendered, ignored), {}))
    except (ValidationError, ValueError) as exc:
        return Skipped(what, f"cannot be expressed as a GatewayKey: {first_error(exc)}")
    made = to_manifest("GatewayKey", GatewayKeySpec, k8s_name, spec, "tyk", override, what, namespace)
    return made


def oauth_client_manifest(api_id: str, body: dict[str, Any], *, gateway: str, apis: dict[str, str], names: Names,
                          namespace: str | None = None) -> Manifest | Skipped:  # fmt: skip
    """`apis`: Tyk api_id -> name of the GatewayAPI (auth: oauth2) that adopts it. The client's secret stays on
    the gateway: the operator copies it into the OAuthClient's Secret."""
    client_id = str(body.get("client_id") or "")
    what = f"Tyk OAuth client {client_id} of API {api_id}"
    meta = body.get("meta_data") or {}
    if isinstance(meta, dict) and meta.get("torii-object"):
        return Skipped(what, f"already managed by Torii (OAuthClient {meta['torii-object']})")
    if api_id not in apis:
        return Skipped(what, f"belongs to API {api_id}, which this import does not adopt as an oauth2 API")
    spec: dict[str, Any] = {"gateway": gateway, "api": apis[api_id], "redirectUri": body.get("redirect_uri") or ""}
    if body.get("policy_id"):
        spec["policy"] = body["policy_id"]
    if body.get("description"):
        spec["description"] = body["description"]
    if isinstance(meta, dict) and (strings := {k: v for k, v in meta.items() if isinstance(v, str)}):
        spec["metadata"] = strings
    spec["adopt"] = {"clientId": client_id}
    try:
        OAuthClientSpec.model_validate(spec)
    except ValidationError as exc:
        return Skipped(what, f"cannot be expressed as an OAuthClient: {first_error(exc)}")
    name = names.claim(str(body.get("description") or ""), f"oauth-{client_id}")
    return Manifest("OAuthClient", name, spec, what, namespace)


def map_api(item: dict[str, Any], inventory: Inventory, *, gateway: str, names: Names,
            namespace: str | None) -> Manifest | Skipped:  # fmt: skip
    return api_manifest(item, gateway=gateway, org_id=inventory.rendering["org_id"], names=names, namespace=namespace)


def map_key(key_id: str, body: dict[str, Any], inventory: Inventory, *, gateway: str, apis: dict[str, KeyedApi],
            names: Names, namespace: str | None) -> Manifest | Skipped:  # fmt: skip
    return key_manifest(key_id, body, gateway=gateway, apis=apis, names=names, namespace=namespace)
