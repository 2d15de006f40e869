"""What Torii sends Otoroshi for a GatewayAPI on a `routes` connection: an NgRoute (`/api/routes`), the entity
Otoroshi serves since its proxy engine rewrite (service descriptors are deprecated and go away in v18).

Verified on Otoroshi 17.17.0 (docs/research/otoroshi-routes-17.17.md): a route with no API-key plugin is
PUBLIC (the opposite of a service), a plugin id Otoroshi does not know is stored and silently ignored, and a
route's `groups` default to `["default"]` (whose first-boot key passes every route of the group). So Torii
always sends its groups and its authentication plugin, and the in-sync check compares the stored plugins: a hand
edit that drops the key plugin is repaired like any other drift.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from torii.gateways.base import ObjectRef, deep_merge, dotted_get, freeze, is_subset, pick, thaw
from torii.gateways.burst import View
from torii.gateways.errors import Unsupported
from torii.gateways.otoroshi_certs import cert_id
from torii.gateways.otoroshi_jwt import verifier_id
from torii.gateways.otoroshi_render import owner_metadata
from torii.gateways.otoroshi_sync import OtoroshiSync
from torii.models.gatewayapi import OTOROSHI_OWNED_FIELDS, AuthMode, GatewayAPISpec

PLUGIN = "cp:otoroshi.next.plugins."
APIKEY_PLUGIN = PLUGIN + "ApikeyCalls"
JWT_PLUGIN = PLUGIN + "JwtVerification"
# Plugins that decide who gets in: Torii sets authentication from spec.auth, so spec.otoroshi cannot add these.
AUTH_PLUGINS = frozenset(
    PLUGIN + name
    for name in (
        "ApikeyCalls", "NgLegacyApikeyCall", "NgLegacyAuthModuleCall", "AuthModule", "MultiAuthModule",
        "BasicAuthCaller", "SimpleBasicAuth", "JwtVerification", "JwtVerificationOnly", "NgJwtUserExtractor",
        "OIDCAccessTokenValidator", "OIDCJwtVerifier", "NgHasClientCertValidator",
        "NgHasClientCertMatchingValidator", "NgHasAllowedUsersValidator", "NgClientCredentialTokenEndpoint",
        "ContextValidation", "PublicPrivatePaths", "ForceHttpsTraffic",
    )
)  # fmt: skip
# Route fields Torii derives from the neutral spec: `spec.otoroshi` may not change them (setting them there
# changes nothing, and Ready's message says so). Authentication plugins are handled apart (AUTH_PLUGINS), and
# `frontend.domains` too: its hosts may come from spec.otoroshi (a route served on another host, as adopted),
# its path is always spec.listenPath.
ROUTE_NEUTRAL_FIELDS = {
    "enabled": "spec.active",
    "frontend.strip_path": "spec.stripListenPath",
    "backend.targets": "spec.upstream",
    "backend.root": "spec.upstream",
}
ROUTE_CORE_FIELDS = (
    "id", "enabled", "groups", "frontend.domains", "frontend.strip_path", "backend.root", "backend.targets",
    "plugins", "metadata.torii-fingerprint",
)  # fmt: skip
OWNER_NAMESPACE, OWNER_NAME = "torii.dev/namespace", "torii.dev/name"


def _targets(urls: list[str]) -> tuple[list[dict[str, Any]], str]:
    targets = []
    root = "/"
    for url in urls:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        targets.append({"hostname": parts.hostname, "port": parts.port or (443 if https else 80), "tls": https})
        root = parts.path or "/"
    return targets, root


def _plugin(name: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"plugin": PLUGIN + name, "enabled": True, "include": [], "exclude": [], "config": config or {}}


def _neutral_plugins(route_id: str, spec: GatewayAPISpec) -> list[dict[str, Any]]:
    # The backend gets its own Host (services do this by default: overrideHost).
    plugins = [_plugin("OverrideHost")]
    if AuthMode.JWT in spec.modes:
        # Before the key plugin: with a key mode too, a request whose JWT fails must not count against the key's
        # quota (ApikeyCalls counts as it validates). The verifier (`otoroshi_jwt`) is written before the route:
        # an unknown verifier id answers 500.
        plugins.append(_plugin("JwtVerification", {"verifiers": [verifier_id(route_id)]}))
    if AuthMode.KEY in spec.modes:
        # Every extractor Otoroshi has stays on (as on a service): the client id/secret headers and basic auth
        # are what Torii documents; the extracted credential is wiped from the backend request.
        plugins.append(_plugin("ApikeyCalls", {"validate": True, "mandatory": True, "pass_with_user": False,
                                               "wipe_backend_request": True, "update_quotas": True}))  # fmt: skip
    if AuthMode.BASIC_AUTH in spec.modes:
        # The same keys, presented as `Authorization: Basic b64(clientId:clientSecret)` only.
        off = {"enabled": False}
        extractors = {"basic": {"enabled": True}, "custom_headers": off, "client_id": off, "jwt": off,
                      "oto_bearer": off}  # fmt: skip
        plugins.append(_plugin("ApikeyCalls", {"extractors": extractors, "validate": True, "mandatory": True,
                                               "pass_with_user": False, "wipe_backend_request": True,
                                               "update_quotas": True}))  # fmt: skip
    if spec.cors is not None and spec.cors.enabled:
        plugins.append(_plugin("Cors", {
            "allow_origin": ",".join(spec.cors.allowed_origins), "allow_methods": spec.cors.allowed_methods,
            "allow_headers": spec.cors.allowed_headers, "expose_headers": spec.cors.exposed_headers,
            "allow_credentials": spec.cors.allow_credentials, "max_age": spec.cors.max_age, "excluded_patterns": [],
        }))  # fmt: skip
    if spec.rate_limit is not None:
        # Verified on 17.17: FixedWindow answers 429 past `window` calls per window. Its bucket is shared by
        # every route with the same bucketKey (default ""): each route gets its own.
        plugins.append(_plugin("FixedWindow", {
            "windowDurationMs": spec.rate_limit.per * 1000, "quota": {"window": spec.rate_limit.rate},
            "bucketKey": f"torii-rate-limit:{route_id}",
        }))  # fmt: skip
    return plugins


def render_route(
    ref: ObjectRef, spec: GatewayAPISpec, *, route_id: str, host: str, group: str, api_group: str | None = None
) -> dict[str, Any]:
    """The Otoroshi NgRoute for a GatewayAPI: neutral fields, `spec.otoroshi` merged over them (its plugins
    after Torii's), then the neutral fields and the owner record put back."""
    if AuthMode.OAUTH2 in spec.modes:
        raise Unsupported("spec.auth: oauth2 is not supported on Otoroshi gateways by Torii; use keyless or key")
    if spec.mtls is not None:
        # Verified on 17.17.0: its TLS listener accepts any client certificate (its trust manager never
        # refuses a chain), and its route validators only compare DNs and serial numbers, which a client can
        # put in a certificate it signs itself. A route "restricted" that way would let anyone in.
        raise Unsupported(
            "spec.mtls: Otoroshi cannot enforce client certificates: it accepts any certificate at the TLS "
            "handshake and its route checks compare names and serial numbers only, which a client can forge in a "
            "certificate of its own; use a Tyk gateway, or require the certificate in front of Otoroshi"
        )
    targets, root = _targets(spec.upstream.urls)
    tls = spec.upstream.tls
    if tls is not None and tls.pinned_public_keys:
        # Otoroshi's target TLS trusts certificates (CA or leaf, with their expiry), it pins no public key.
        raise Unsupported("spec.upstream.tls.pinnedPublicKeys: Otoroshi has no public key pinning (its targets "
                          "trust certificates); use a Tyk gateway to pin")  # fmt: skip
    if tls is not None:
        certs = [cert_id(route_id, tls.pair[0])] if tls.pair is not None else []
        skip = tls.insecure_skip_verify
        for target in targets:
            target["tls_config"] = {"enabled": True, "certs": certs, "trusted_certs": [], "loose": skip,
                                    "trust_all": skip}  # fmt: skip
    route: dict[str, Any] = {
        "id": route_id,
        "name": str(ref),
        "description": f"managed by Torii for GatewayAPI {ref}",
        "enabled": spec.active,
        "groups": [group, *([api_group] if api_group else [])],
        "tags": list(spec.tags),
        "metadata": {},
        "frontend": {"domains": domains(spec, host), "strip_path": spec.strip_listen_path, "exact": False},
        "backend": {"targets": targets, "root": root, "load_balancing": {"type": "RoundRobin"}},
        "plugins": _neutral_plugins(route_id, spec),
    }
    if spec.otoroshi:
        neutral = route
        overrides = {k: v for k, v in spec.otoroshi.items() if k not in OTOROSHI_OWNED_FIELDS}
        extra = overrides.pop("plugins", None)
        route = deep_merge(route, overrides)
        for path in (*ROUTE_NEUTRAL_FIELDS, "frontend.domains"):
            _set(route, path, dotted_get(neutral, path)[1])
        route["plugins"] = merge_plugins(neutral["plugins"], extra)
    # Metadata and tags must be all strings (Otoroshi drops the whole map otherwise, owner record included).
    metadata: dict[str, Any] = route["metadata"] if isinstance(route.get("metadata"), dict) else {}
    route["metadata"] = {str(k): str(v) for k, v in metadata.items() if not str(k).startswith(("torii.dev/", "torii-"))}
    route["metadata"] |= owner_metadata(ref, "GatewayAPI")
    route["tags"] = [str(t) for t in route.get("tags") or []]
    return route


def domains(spec: GatewayAPISpec, host: str) -> list[str]:
    """`host/listenPath`, on the hosts of spec.otoroshi.frontend.domains when it names some."""
    present, given = dotted_get(spec.otoroshi or {}, "frontend.domains")
    hosts = [str(d).partition("/")[0] for d in given if str(d).partition("/")[0]] if present and isinstance(
        given, list) else []  # fmt: skip
    return [f"{h}{spec.listen_path}" for h in hosts or [host]]


def merge_plugins(neutral: list[dict[str, Any]], extra: Any) -> list[dict[str, Any]]:
    """Torii's plugins, then those of spec.otoroshi.plugins: one of Torii's that spec.otoroshi also lists takes
    its config from there (CORS, OverrideHost), authentication plugins are never taken from it."""
    if not isinstance(extra, list):
        return neutral
    own = {p["plugin"] for p in neutral}
    given = {p.get("plugin"): p for p in extra if isinstance(p, dict) and p.get("plugin") not in AUTH_PLUGINS}
    merged = [deep_merge(p, given[p["plugin"]]) if p["plugin"] in given and p["plugin"] not in AUTH_PLUGINS else p
              for p in neutral]  # fmt: skip
    return merged + [p for p in extra if isinstance(p, dict) and p.get("plugin") not in AUTH_PLUGINS | own]


def overridden_fields(spec: GatewayAPISpec, route: dict[str, Any]) -> list[str]:
    """The `spec.otoroshi` fields Torii overrides in `route` (each with the neutral field to use)."""
    hatch = spec.otoroshi or {}
    notes = []
    for path, neutral in ROUTE_NEUTRAL_FIELDS.items():
        present, value = dotted_get(hatch, path)
        if present and value != dotted_get(route, path)[1]:
            notes.append(f"spec.otoroshi.{path} is ignored: Torii sets it from {neutral}")
    present, given = dotted_get(hatch, "frontend.domains")
    if present and given != dotted_get(route, "frontend.domains")[1]:
        notes.append("spec.otoroshi.frontend.domains: only their hosts are used; the path is spec.listenPath")
    for plugin in hatch.get("plugins") or []:
        if isinstance(plugin, dict) and plugin.get("plugin") in AUTH_PLUGINS:
            notes.append(f"spec.otoroshi.plugins: {str(plugin['plugin']).removeprefix(PLUGIN)} is ignored: Torii "
                         "sets authentication from spec.auth")  # fmt: skip
    return notes


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


# ---------------------------------------------------------------------------------------------- stored views


# Compared as a subset of what Otoroshi stores (it adds many defaulted fields), and kept in views as compact JSON
# text: as parsed dicts they were 3.5 of a route view's 4.7 KB, 35 MB in a 10,000-route view.
LOOSE_FIELDS = ("backend.targets", "plugins")


def route_core(route: dict[str, Any]) -> View:
    """The fields the in-sync check compares, the owner record, and where the proxy serves it."""
    view = _route_fields(route)
    for field in LOOSE_FIELDS:
        view[field] = freeze(view[field])
    return view


def _route_fields(route: dict[str, Any]) -> dict[str, Any]:
    """route_core() before its loose fields are frozen: what the desired side of a comparison needs as it is."""
    metadata: dict[str, Any] = route["metadata"] if isinstance(route.get("metadata"), dict) else {}
    view = pick(route, ROUTE_CORE_FIELDS)
    view["owner"] = (
        (metadata[OWNER_NAMESPACE], metadata[OWNER_NAME])
        if metadata.get(OWNER_NAMESPACE) and metadata.get(OWNER_NAME)
        else None
    )
    return view


def route_in_sync(desired: dict[str, Any], current: View | None) -> bool:
    """Otoroshi stores targets and plugins with many defaulted fields: what Torii sets must be there, and the
    stored plugins must be exactly Torii's (one added or dropped by hand is drift). Only the stored side is
    thawed: this runs for every route of every drift pass."""
    if current is None:
        return False
    want, loose = _route_fields(desired), LOOSE_FIELDS
    same = all(current.get(k) == v for k, v in want.items() if k not in loose) and want.keys() == current.keys()
    return same and all(is_subset(want[k] or [], thaw(current.get(k)) or []) for k in loose)


def route_served(view: View | None) -> tuple[str, str] | None:
    """(host, path) the proxy serves a stored route on (None: disabled, or no domain)."""
    if not view or view.get("enabled") is False:
        return None
    domains = view.get("frontend.domains") or []
    if not domains or not isinstance(domains[0], str):
        return None
    host, slash, path = domains[0].partition("/")
    return host.lower(), slash + path if slash else "/"


def route_keyed(view: View | None) -> bool:
    """Does the route ask for an API key, and is the key what answers a request that carries one alone (its
    ApikeyCalls plugin enabled, no JWT verification before it)? Verified on 17.17: with JwtVerification first,
    a request with only a key is refused `error.expected.token.not.found` whether or not the proxy knows the
    key yet, so such a route cannot tell whether a key has reached the proxy."""
    for plugin in thaw((view or {}).get("plugins")) or []:
        if not isinstance(plugin, dict) or plugin.get("enabled", True) is False:
            continue
        if plugin.get("plugin") == APIKEY_PLUGIN:
            return True
        if plugin.get("plugin") == JWT_PLUGIN:
            return False
    return False


class OtoroshiRouteSync(OtoroshiSync):
    """Routes (`/api/routes`): the entity of a `routes` connection (the default)."""

    what = "route"
    id_field = "id"
    list_path = "/api/routes"

    def core(self, body: dict[str, Any]) -> View:
        return route_core(body)

    def in_sync(self, desired: dict[str, Any], current: View | None) -> bool:
        return route_in_sync(desired, current)

    def served(self, view: View | None) -> tuple[str, str] | None:
        return route_served(view)

    def keyed(self, view: View | None) -> bool:
        return route_keyed(view)
