"""Otoroshi routes (or services) and apikeys as GatewayAPI / GatewayKey manifests that adopt them."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from torii.gateways.base import Credential, Inventory, KeyRequest, ObjectRef, ResolvedApi
from torii.gateways.otoroshi_render import (
    DEFAULT_QUOTA,
    PROBE_RESTRICTION,
    RESERVED_IDS,
    owner_metadata,
    render_apikey,
    render_service,
)
from torii.gateways.otoroshi_routes import APIKEY_PLUGIN, AUTH_PLUGINS, PLUGIN, render_route
from torii.importer.manifests import KeyedApi, Manifest, Names, Skipped, key_state, to_manifest
from torii.importer.overrides import first_error, minimal_override, prune, without
from torii.models.gatewayapi import LISTEN_PATH_PATTERN, GatewayAPISpec
from torii.models.gatewaykey import OTOROSHI_KEY_OWNED_FIELDS, GatewayKeySpec

# Service fields Torii derives from the neutral spec or keeps for itself.
SERVICE_DERIVED = ("id", "matchingRoot", "stripPath", "enabled", "metadata.torii-fingerprint")
KEY_IGNORED = (*OTOROSHI_KEY_OWNED_FIELDS, "metadata.torii-fingerprint", "metadata.torii-object")
# Route fields Torii derives from the neutral spec (plugins are compared apart: Torii's own are derived).
ROUTE_DERIVED = ("id", "enabled", "frontend.domains", "frontend.strip_path", "backend.targets", "backend.root",
                 "plugins", "metadata.torii-fingerprint", "metadata.torii.dev/namespace", "metadata.torii.dev/name",
                 "metadata.torii.dev/kind", "metadata.torii.dev/uid")  # fmt: skip
LEGACY_APIKEY_PLUGIN = PLUGIN + "NgLegacyApikeyCall"
DERIVED_PLUGINS = {PLUGIN + "OverrideHost", PLUGIN + "Cors", APIKEY_PLUGIN, LEGACY_APIKEY_PLUGIN}


def _route_auth(plugins: list[dict[str, Any]]) -> str | None:
    """`keyless` or `key` from a route's enabled authentication plugins; None when it uses another kind."""
    auth = [p for p in plugins if p.get("plugin") in AUTH_PLUGINS | {LEGACY_APIKEY_PLUGIN}]
    if not auth:
        return "keyless"
    if len(auth) > 1:
        return None
    plugin = auth[0]
    if plugin["plugin"] == APIKEY_PLUGIN:
        config = plugin.get("config") or {}
        if not (config.get("validate", True) and config.get("mandatory", True)):
            return None
        return _extractors_mode(config.get("extractors") or {})
    if plugin["plugin"] == LEGACY_APIKEY_PLUGIN:  # a converted service: public patterns make it keyless
        config = plugin.get("config") or {}
        public, private = config.get("public_patterns") or [], config.get("private_patterns") or []
        return "keyless" if public == ["/.*"] and not private else ("key" if not public else None)
    return None


OTHER_EXTRACTORS = ("custom_headers", "client_id", "jwt", "oto_bearer")


def _extractors_mode(extractors: dict[str, Any]) -> str | None:
    """`key` (Otoroshi's extractors as they come), `basicAuth` (basic auth alone, from the usual headers), or None
    (another subset: Torii's modes would open or close other ways in)."""
    on = {name for name in ("basic", *OTHER_EXTRACTORS) if (extractors.get(name) or {}).get("enabled", True)}
    if on == {"basic", *OTHER_EXTRACTORS}:
        return "key"
    basic = extractors.get("basic") or {}
    renamed = any(basic.get(k) for k in ("header_name", "query_name", "cookie_name", "path_name"))
    return "basicAuth" if on == {"basic"} and not renamed else None


def _cors(plugins: list[dict[str, Any]]) -> dict[str, Any] | None:
    cors = next((p for p in plugins if p.get("plugin") == PLUGIN + "Cors"), None)
    if cors is None:
        return None
    c = cors.get("config") or {}
    origins = [o.strip() for o in str(c.get("allow_origin") or "*").split(",") if o.strip()]
    out: dict[str, Any] = {"allowedOrigins": origins}
    for neutral, native in (("allowedMethods", "allow_methods"), ("allowedHeaders", "allow_headers"),
                            ("exposedHeaders", "expose_headers")):  # fmt: skip
        if c.get(native):
            out[neutral] = list(c[native])
    if c.get("allow_credentials") is not None:
        out["allowCredentials"] = bool(c["allow_credentials"])
    if isinstance(c.get("max_age"), int):
        out["maxAge"] = c["max_age"]
    return out


def already_managed(what: str, entity: dict[str, Any]) -> Skipped | None:
    """A route or service Torii manages is never imported again."""
    meta = entity.get("metadata") or {}
    if not meta.get("torii.dev/name"):
        return None
    return Skipped(
        what, f"already managed by Torii (GatewayAPI {meta.get('torii.dev/namespace')}/{meta['torii.dev/name']})"
    )


def route_manifest(route: dict[str, Any], template: dict[str, Any], *, gateway: str, host: str, group: str,
                   names: Names, namespace: str | None = None) -> Manifest | Skipped:  # fmt: skip
    route_id = str(route.get("id") or "")
    what = f"Otoroshi route {route_id} ({route.get('name', '')})"
    if managed := already_managed(what, route):
        return managed
    if route_id in RESERVED_IDS or "admin-api-group" in (route.get("groups") or []):
        return Skipped(what, "is Otoroshi's own admin API")
    domains = (route.get("frontend") or {}).get("domains") or []
    if len(domains) != 1:
        return Skipped(what, f"serves {len(domains)} domains: a GatewayAPI has one listen path on the "
                             "connection's host")  # fmt: skip
    route_host, slash, rest = str(domains[0]).partition("/")
    listen_path = slash + rest if slash else "/"
    if not re.match(LISTEN_PATH_PATTERN, listen_path):
        return Skipped(what, f"serves path {listen_path}, which is not a listen path")
    backend = route.get("backend") or {}
    root = str(backend.get("root") or "/")
    urls = [f"{'https' if t.get('tls') else 'http'}://{t.get('hostname')}:{t.get('port')}{root}"
            for t in backend.get("targets") or []]  # fmt: skip
    if not urls:
        return Skipped(what, "has no targets")
    plugins = [p for p in route.get("plugins") or [] if isinstance(p, dict) and p.get("enabled", True) is not False]
    auth = _route_auth(plugins)
    if auth is None and any(p.get("plugin") == APIKEY_PLUGIN for p in plugins):
        return Skipped(what, "asks for an optional API key, or takes it from a subset of Otoroshi's extractors "
                             "other than basic auth alone: a GatewayAPI is keyless, key (every extractor) or "
                             "basicAuth")  # fmt: skip
    tls_configs = [t.get("tls_config") or {} for t in backend.get("targets") or []]
    if any(c.get("enabled") and (c.get("certs") or c.get("trusted_certs")) for c in tls_configs):
        return Skipped(what, "presents or trusts certificates of Otoroshi's store upstream; put the client "
                             "certificate in a kubernetes.io/tls Secret and set "
                             "spec.upstream.tls.clientCertificateSecretName")  # fmt: skip
    if auth is None:
        used = ", ".join(str(p.get("plugin")).removeprefix(PLUGIN) for p in plugins if p.get("plugin") in AUTH_PLUGINS)
        return Skipped(
            what,
            f"authenticates with {used or 'an optional API key'}: a GatewayAPI is keyless, key, "
            "basicAuth or jwt (a JWT route: set spec.jwt with its verifier's key and adopt it)",
        )
    spec: dict[str, Any] = {"gateway": gateway, "listenPath": listen_path}
    spec["upstream"] = {"targets": urls} if len(urls) > 1 else {"url": urls[0]}
    if any(c.get("enabled") and c.get("loose") and not c.get("trust_all") for c in tls_configs):
        return Skipped(what, "checks its upstream's certificate without its hostname (loose): a GatewayAPI "
                             "verifies both, or neither (spec.upstream.tls.insecureSkipVerify)")  # fmt: skip
    if any(c.get("enabled") and c.get("trust_all") for c in tls_configs):
        spec["upstream"]["tls"] = {"insecureSkipVerify": True}
    if (route.get("frontend") or {}).get("strip_path") is False:
        spec["stripListenPath"] = False
    if auth != "keyless":
        spec["auth"] = auth
    if route.get("enabled") is False:
        spec["active"] = False
    if (cors := _cors(plugins)) is not None:
        spec["cors"] = cors
    spec["adopt"] = {"id": route_id}
    k8s_name = names.claim(str(route.get("name") or ""), route_id)
    try:
        parsed = GatewayAPISpec.model_validate(spec)
        ref = ObjectRef(namespace or "default", k8s_name)
        rendered = render_route(ref, parsed, route_id=route_id, host=host, group=group)
        rendered["metadata"] = {k: v for k, v in rendered["metadata"].items() if k not in owner_metadata(ref, "")}
        override = prune(minimal_override(without(route, ROUTE_DERIVED), without(rendered, ROUTE_DERIVED), template))
        extra = [p for p in plugins if p.get("plugin") not in DERIVED_PLUGINS]
        if extra:
            override["plugins"] = extra
        if route_host.lower() != host.lower():  # served on a host of its own: kept (the path is the listen path)
            override.setdefault("frontend", {})["domains"] = [str(domains[0])]
    except (ValidationError, ValueError) as exc:
        return Skipped(what, f"cannot be expressed as a GatewayAPI: {first_error(exc)}")
    return to_manifest("GatewayAPI", GatewayAPISpec, k8s_name, spec, "otoroshi", override, what, namespace)


def service_manifest(service: dict[str, Any], template: dict[str, Any], *, gateway: str, domain: str,
                     subdomain: str, group: str, names: Names, namespace: str | None = None,
                     ) -> Manifest | Skipped:  # fmt: skip
    service_id = str(service.get("id") or "")
    what = f"Otoroshi service {service_id} ({service.get('name', '')})"
    if managed := already_managed(what, service):
        return managed
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


def key_manifest(key: dict[str, Any], template: dict[str, Any], *, gateway: str, apis: dict[str, KeyedApi],
                 names: Names, namespace: str | None = None,
                 entity: str = "service") -> Manifest | Skipped:  # fmt: skip
    """`apis`: Otoroshi route (or service) id -> the GatewayAPI that adopts it (and the key type its callers
    hold). A key authorised on `service_<id>` or `route_<id>` passes the object with that id either way (the
    proxy treats them alike). An apikey of basic-auth routes is a GatewayKey of type basicAuth: the same
    apikey, its client id and secret delivered as `username` and `password` too."""
    client_id = str(key.get("clientId") or "")
    what = f"Otoroshi apikey {client_id} ({key.get('clientName', '')})"
    meta = key.get("metadata") or {}
    if meta.get("torii-object"):
        return Skipped(what, f"already managed by Torii (GatewayKey {meta['torii-object']})")
    if (key.get("rotation") or {}).get("enabled"):
        return Skipped(what, "uses Otoroshi's automatic rotation; a GatewayKey rotates declaratively (spec.rotation)")
    refs = []
    forms = set()
    for authorized in key.get("authorizedEntities") or []:
        kind, _, ident = str(authorized).partition("_")
        if kind not in ("service", "route"):
            return Skipped(what, f"authorizes {authorized}: only route and service authorizations map to spec.apis")
        if ident not in apis or apis[ident].key_type not in ("key", "basicAuth"):
            return Skipped(what, f"authorizes {kind} {ident}, which this import does not adopt as an API with "
                                 "keys or basic-auth users")  # fmt: skip
        refs.append({"name": apis[ident].name})
        forms.add(apis[ident].key_type)
    if not refs:
        return Skipped(what, "authorizes no route or service")
    if len(forms) > 1:
        return Skipped(what, "authorizes both key and basic-auth APIs: a GatewayKey serves APIs of one spec.auth")
    form = forms.pop()
    spec: dict[str, Any] = {"gateway": gateway, **({"type": form} if form != "key" else {}), "apis": refs}
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
        rendered = render_apikey(request, entity)
        ignored = KEY_IGNORED if (key.get("restrictions") or {}).get("enabled") else (*KEY_IGNORED, "restrictions")
        actual = dict(key)
        if isinstance(actual.get("restrictions"), dict):  # Torii's own probe rule is never the user's
            forbidden = [
                r
                for r in actual["restrictions"].get("forbidden") or []
                if {k: v for k, v in r.items() if k != "authorized_entity"} != PROBE_RESTRICTION
            ]
            actual["restrictions"] = {**actual["restrictions"], "forbidden": forbidden}
        override = prune(minimal_override(without(actual, ignored), without(rendered, ignored), template))
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


def map_route(item: dict[str, Any], inventory: Inventory, *, gateway: str, names: Names,
              namespace: str | None) -> Manifest | Skipped:  # fmt: skip
    rendering = inventory.rendering
    host = ".".join(p for p in (rendering["subdomain"], rendering["domain"]) if p)
    return route_manifest(item, inventory.api_defaults, gateway=gateway, host=host, group=rendering["group"],
                          names=names, namespace=namespace)  # fmt: skip


def map_key(key_id: str, body: dict[str, Any], inventory: Inventory, *, gateway: str, apis: dict[str, KeyedApi],
            names: Names, namespace: str | None) -> Manifest | Skipped:  # fmt: skip
    entity = "route" if inventory.kind == "otoroshi-routes" else "service"
    return key_manifest(body, inventory.key_defaults, gateway=gateway, apis=apis, names=names, namespace=namespace,
                        entity=entity)  # fmt: skip
