"""Which escape-hatch fields (`spec.tyk`, `spec.otoroshi`) a namespace may set.

A field is a dotted path to a leaf of the escape hatch (lists are entered, their indexes are segments). It is
allowed when an `allowed` rule covers it (a rule covers a path when it matches the path's first segments; `*`
matches one segment) and no `denied` rule does. The defaults are an allow-list of fields that only shape the
tenant's own API (caching, CORS, headers, its own limits) and a deny-list of fields that run code, route
traffic (hosts, ports, listen paths, internal APIs), authenticate or authorise, touch certificates or policies,
or make the gateway call other addresses: an upstream rule that the escape hatch could bypass would be no rule.
The lists were read in Tyk 5.10.2's and Otoroshi 17.17.0's sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any

from torii.tenancy.config import EscapeHatchRules

RUNS_CODE = "runs code on the gateway"
ROUTING = "changes routing"
AUTH = "changes authentication or authorisation"
CERTS = "changes certificates or TLS"
OUTBOUND = "sends requests to other addresses"
POLICIES = "applies policies"
TORIIS = "is Torii's"

# Tyk classic API definition: fields that only shape the tenant's own API.
TYK_ALLOWED = [
    "name", "slug", "expiration", "cache_options", "cors", "global_rate_limit", "disable_rate_limit",
    "disable_quota", "enable_context_vars", "enable_detailed_recording", "do_not_track", "expire_analytics_after",
    "tags", "tag_headers", "internal", "allowed_ips", "enable_ip_whitelisting", "blacklisted_ips",
    "enable_ip_blacklisting", "strip_auth_data", "config_data", "detailed_tracing", "version_data", "definition",
    "proxy.strip_listen_path", "proxy.disable_strip_slash",
]  # fmt: skip
TYK_DENIED = {
    "api_id": TORIIS, "org_id": TORIIS, "id": TORIIS, "config_data.torii": TORIIS,
    "custom_middleware": RUNS_CODE, "custom_middleware_bundle": RUNS_CODE,
    "custom_middleware_bundle_disabled": RUNS_CODE, "custom_plugin_auth_enabled": RUNS_CODE,
    "enable_coprocess_auth": RUNS_CODE, "analytics_plugin": RUNS_CODE, "event_handlers": RUNS_CODE,
    "response_processors": RUNS_CODE,
    "version_data.versions.*.extended_paths.virtual": RUNS_CODE,
    "version_data.versions.*.extended_paths.go_plugin": RUNS_CODE,
    "version_data.versions.*.extended_paths.transform_jq": RUNS_CODE,
    "version_data.versions.*.extended_paths.transform_jq_response": RUNS_CODE,
    "domain": ROUTING, "listen_port": ROUTING, "protocol": ROUTING, "proxy.listen_path": ROUTING,
    "proxy.preserve_host_header": ROUTING, "definition.versions": ROUTING,
    "version_data.versions.*.extended_paths.url_rewrites": ROUTING,
    "proxy.target_url": OUTBOUND, "proxy.target_list": OUTBOUND, "proxy.enable_load_balancing": OUTBOUND,
    "proxy.service_discovery": OUTBOUND, "proxy.check_host_against_uptime_tests": OUTBOUND,
    "uptime_tests": OUTBOUND, "graphql": OUTBOUND, "version_data.versions.*.override_target": OUTBOUND,
    "proxy.transport": CERTS,
    "use_keyless": AUTH, "use_standard_auth": AUTH, "use_oauth2": AUTH, "use_basic_auth": AUTH,
    "use_mutual_tls_auth": AUTH, "enable_jwt": AUTH, "enable_signature_checking": AUTH, "use_openid": AUTH,
    "openid_options": AUTH, "external_oauth": AUTH, "auth": AUTH, "auth_configs": AUTH, "auth_provider": AUTH,
    "session_provider": AUTH, "base_identity_provided_by": AUTH, "oauth_meta": AUTH, "notifications": AUTH,
    "basic_auth": AUTH, "hmac_allowed_clock_skew": AUTH, "hmac_allowed_algorithms": AUTH,
    "jwt_signing_method": AUTH, "jwt_source": AUTH, "jwt_identity_base_field": AUTH, "jwt_client_base_field": AUTH,
    "jwt_policy_field_name": AUTH, "jwt_issued_at_validation_skew": AUTH, "jwt_expires_at_validation_skew": AUTH,
    "jwt_not_before_validation_skew": AUTH, "jwt_skip_kid": AUTH, "jwt_scope_to_policy_mapping": AUTH,
    "jwt_scope_claim_name": AUTH, "scopes": AUTH, "session_lifetime": AUTH,
    "session_lifetime_respects_key_expiration": AUTH, "dont_set_quota_on_create": AUTH,
    "version_data.versions.*.paths.ignored": AUTH, "version_data.versions.*.extended_paths.ignored": AUTH,
    "certificates": CERTS, "client_certificates": CERTS, "upstream_certificates": CERTS,
    "upstream_certificates_disabled": CERTS, "pinned_public_keys": CERTS, "certificate_pinning_disabled": CERTS,
    "jwt_default_policies": POLICIES, "apply_policies": POLICIES,
}  # fmt: skip

# Otoroshi ServiceDescriptor.
OTOROSHI_ALLOWED = [
    "name", "description", "targetsLoadBalancing", "stripPath", "userFacing", "forceHttps", "logAnalyticsOnServer",
    "useAkkaHttpClient", "useNewWSClient", "maintenanceMode", "buildMode", "sendOtoroshiHeadersBack", "readOnly",
    "xForwardedHeaders", "allowHttp10", "additionalHeaders", "additionalHeadersOut", "missingOnlyHeadersIn",
    "missingOnlyHeadersOut", "removeHeadersIn", "removeHeadersOut", "headersVerification", "gzip", "metadata",
    "tags", "chaosConfig", "cors", "clientConfig", "ipFiltering",
]  # fmt: skip
OTOROSHI_DENIED = {
    "id": TORIIS, "_loc": TORIIS, "metadata.torii-fingerprint": TORIIS, "metadata.torii.dev/*": TORIIS,
    "metadata.otoroshi-core-*": "drives Otoroshi internals (capture, certificates)",
    "domain": ROUTING, "subdomain": ROUTING, "hosts": ROUTING, "paths": ROUTING, "matchingRoot": ROUTING,
    "groups": ROUTING, "groupId": ROUTING, "enabled": ROUTING, "redirection": ROUTING, "strictlyPrivate": ROUTING,
    "tcpUdpTunneling": ROUTING, "tcpTunneling": ROUTING, "env": ROUTING,
    "targets": OUTBOUND, "root": OUTBOUND, "healthCheck": OUTBOUND, "clientConfig.proxy": OUTBOUND,
    "canary": OUTBOUND, "mirror": OUTBOUND, "redirectToLocal": OUTBOUND, "localHost": OUTBOUND,
    "localScheme": OUTBOUND,
    "plugins": RUNS_CODE, "transformerRef": RUNS_CODE, "transformerRefs": RUNS_CODE, "transformerConfig": RUNS_CODE,
    "accessValidator": RUNS_CODE, "preRouting": RUNS_CODE,
    "publicPatterns": AUTH, "privatePatterns": AUTH, "privateApp": AUTH, "authConfigRef": AUTH,
    "securityExcludedPatterns": AUTH, "apiKeyConstraints": AUTH, "jwtVerifier": AUTH, "secComSettings": AUTH,
    "secComUseSameAlgo": AUTH, "secComSettingsIn": AUTH, "secComSettingsOut": AUTH, "secComExcludedPatterns": AUTH,
    "enforceSecureCommunication": AUTH, "sendInfoToken": AUTH, "sendStateChallenge": AUTH, "secComHeaders": AUTH,
    "secComTtl": AUTH, "secComVersion": AUTH, "secComInfoTokenVersion": AUTH, "detectApiKeySooner": AUTH,
    "restrictions": AUTH,
    "clientValidatorRef": CERTS, "tlsSettings": CERTS, "issueCert": CERTS, "issueCertCA": CERTS,
}  # fmt: skip

# Otoroshi NgRoute (`routes` connections; the fields of NgRoute.fmt in 17.17.0).
OTOROSHI_ROUTE_ALLOWED = [
    "name", "description", "tags", "metadata", "export_reporting", "frontend.exact", "frontend.methods",
    "backend.rewrite", "backend.load_balancing", "backend.client",
]  # fmt: skip
OTOROSHI_ROUTE_DENIED = {
    "id": TORIIS, "_loc": TORIIS, "metadata.torii-*": TORIIS, "metadata.torii.dev/*": TORIIS,
    "metadata.otoroshi-core-*": "drives Otoroshi internals (capture, certificates)",
    "debug_flow": "records requests on the gateway", "capture": "records requests on the gateway",
    "enabled": ROUTING, "groups": ROUTING, "bound_listeners": ROUTING, "frontend.domains": ROUTING,
    "frontend.headers": ROUTING, "frontend.query": ROUTING, "frontend.cookies": ROUTING,
    "backend.targets": OUTBOUND, "backend.root": OUTBOUND, "backend.health_check": OUTBOUND,
    "backend.client.proxy": OUTBOUND, "backend_ref": OUTBOUND,
    "plugins": RUNS_CODE,
}  # fmt: skip

DEFAULTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "tyk": (TYK_ALLOWED, TYK_DENIED),
    "otoroshi": (OTOROSHI_ALLOWED, OTOROSHI_DENIED),
    "otoroshi-routes": (OTOROSHI_ROUTE_ALLOWED, OTOROSHI_ROUTE_DENIED),
}
# Tyk decodes JSON with Go's encoding/json, which matches field names case-insensitively (`Proxy` is `proxy`):
# its rules and paths are compared folded. Otoroshi's reads are case-sensitive.
FOLDED = {"tyk": True, "otoroshi": False, "otoroshi-routes": False}

# Strings a gateway expands into secrets of its own when it loads or serves a definition (Tyk: KV references
# in the raw JSON and `$secret_*` variables; Otoroshi: its expression language, vault references included).
SECRET_REFERENCES = {
    "tyk": ("env://", "secrets://", "consul://", "vault://", "$secret_env.", "$secret_conf.", "$secret_vault.",
            "$secret_consul."),
    "otoroshi": ("${",),
    "otoroshi-routes": ("${",),
}  # fmt: skip
# Header names no tenant may set in a header map: they steer the gateway itself (Tyk sends a request carrying
# X-Tyk-Internal to the internal API its Host names; Otoroshi's own admin service is reached by its Host).
HEADER_DENIED = ("host", "x-tyk-internal", "x-forwarded-*", "otoroshi-*", "x-otoroshi-*")


def leaves(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf path of a JSON value (an empty object or list is a leaf)."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, (*prefix, str(key)))
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            yield from leaves(child, (*prefix, str(index)))
    else:
        yield prefix


def covers(rule: str, path: tuple[str, ...]) -> bool:
    """Does `rule` (dotted, `*` = one segment) match the first segments of `path`? (A segment of a rule may
    itself hold a `/`, e.g. `metadata.torii.dev/*`: rules are split on the dots that separate fields.)"""
    parts = split_rule(rule, len(path))
    return len(parts) <= len(path) and all(fnmatchcase(seg, pat) for pat, seg in zip(parts, path, strict=False))


def split_rule(rule: str, depth: int) -> list[str]:
    # `metadata.torii.dev/*` is two segments: `metadata` and `torii.dev/*` (a metadata key with dots).
    if rule.startswith("metadata."):
        return ["metadata", rule[len("metadata.") :]]
    return rule.split(".")


def strings(value: Any) -> Iterator[str]:
    """Every string of a JSON value, keys included."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield str(key)
            yield from strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from strings(child)
    elif isinstance(value, str):
        yield value


def secret_references(gateway_type: str, value: Any) -> bool:
    """Does any string of `value` hold something the gateway would expand into one of its secrets?"""
    markers = SECRET_REFERENCES.get(gateway_type, ())
    return any(marker in text.lower() for text in strings(value) for marker in markers)


def ambiguous_keys(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths Go's case-insensitive (and Unicode-folding) decoding could read as another field: non-ASCII keys,
    and keys of one object that are equal once lower-cased."""
    if isinstance(value, dict):
        seen: set[str] = set()
        for key, child in value.items():
            name = str(key)
            if not name.isascii() or name.lower() in seen:
                yield (*prefix, name)
            seen.add(name.lower())
            yield from ambiguous_keys(child, (*prefix, name))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from ambiguous_keys(child, (*prefix, str(index)))


def denied_header(path: tuple[str, ...]) -> bool:
    """A header map entry whose name steers the gateway (`...global_headers.Host`, `add_headers.X-Tyk-Internal`)."""
    return any(
        "header" in seg.lower() and fnmatchcase(path[i + 1].lower(), pattern)
        for i, seg in enumerate(path[:-1])
        for pattern in HEADER_DENIED
    )


def file_template(path: tuple[str, ...], value: Any) -> bool:
    """Tyk body transforms in `file` mode read the gateway's filesystem."""
    return path[-2:] == ("template_data", "template_mode") and value == "file"


def leaf_value(value: Any, path: tuple[str, ...]) -> Any:
    for seg in path:
        value = value[int(seg)] if isinstance(value, list) else value[seg]
    return value


def violations(
    gateway_type: str, escape_hatch: dict[str, Any], rules: EscapeHatchRules, *, single_team: bool, ignored: set[str]
) -> list[str]:
    """The refused fields of an escape hatch, each as `<path> <why>`. `ignored`: paths Torii overrides anyway
    (its neutral fields, exact spelling): setting them changes nothing, so they are not refused."""
    default_allowed, default_denied = DEFAULTS[gateway_type]
    folded = FOLDED[gateway_type]
    if single_team:
        allowed = rules.allowed if rules.allowed is not None else ["*"]
        denied = {r: default_denied.get(r, "is denied by the policy") for r in rules.denied or []}
    else:
        allowed = rules.allowed if rules.allowed is not None else default_allowed
        denied = (
            {r: default_denied.get(r, "is denied by the policy") for r in rules.denied}
            if rules.denied is not None
            else default_denied
        )
    if folded:
        allowed = [r.lower() for r in allowed]
        denied = {r.lower(): why for r, why in denied.items()}
    found = []
    if folded:
        found += [f"{'.'.join(p)} is ambiguous (Tyk reads field names case-insensitively)"
                  for p in ambiguous_keys(escape_hatch)]  # fmt: skip
    if not single_team and secret_references(gateway_type, escape_hatch):
        markers = ", ".join(SECRET_REFERENCES[gateway_type])
        found.append(f"holds a reference the gateway would expand into its own secrets ({markers})")
    for path in leaves(escape_hatch):
        if not path or any(covers(i, path) for i in ignored):
            continue
        key = tuple(seg.lower() for seg in path) if folded else path
        reason = next((why for rule, why in denied.items() if covers(rule, key)), None)
        if reason is None and not any(covers(rule, key) for rule in allowed):
            reason = "is not in the allowed fields"
        if reason is None and not single_team and denied_header(path):
            reason = "is a header that steers the gateway itself"
        if reason is None and not single_team and file_template(key, leaf_value(escape_hatch, path)):
            reason = "reads the gateway's files"
        if reason is not None:
            found.append(f"{'.'.join(path)} {reason}")
    return found
