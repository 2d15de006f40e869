"""Otoroshi driver (admin API reached through Otoroshi's own proxy with `Host: <api host>`, basic auth).

A GatewayAPI becomes a route (`/api/routes`, the default) or, on a connection with `entity: services` (sites on
older Otoroshi), a ServiceDescriptor; either is reached at `<subdomain>.<domain>` under the listen path.

Verified on Otoroshi 17.17: an admin write is stored at once, but the proxy serves it only after its next state
sync (`otoroshi.next.state-sync-interval`, 10 s by default). So after writing a route the driver waits one
sync interval and then asks the proxy itself: a path Otoroshi does not route answers 404 with the header
`Otoroshi-Error-Msg: no route found !`. Ready therefore means "the proxy routes it", not "the admin API stored it".

Switching a connection's entity migrates in place: the object of the new kind is written under the same id and
confirmed first (while the old one still serves; with both enabled the proxy keeps answering), then Torii's
object of the old kind is deleted. Keys keep their credentials: the proxy authorises `service_<id>` and
`route_<id>` alike on an object with that id, and the key is re-authorised on its next reconcile.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import httpx

from torii.acyclic import Client
from torii.gateways.base import ConvergeResult, Inventory, ObjectRef, api_gateway_id, group_id
from torii.gateways.burst import Owner, owner_of
from torii.gateways.errors import OwnershipConflict, RetryableGatewayError
from torii.gateways.http import AdminClient, CallObserver, admin_path, verification
from torii.gateways.otoroshi_certs import OtoroshiCertificates
from torii.gateways.otoroshi_jwt import OtoroshiVerifiers
from torii.gateways.otoroshi_keys import OtoroshiKeys
from torii.gateways.otoroshi_render import RESERVED_IDS, render_service, with_fingerprint
from torii.gateways.otoroshi_routes import ROUTE_NEUTRAL_FIELDS, OtoroshiRouteSync, overridden_fields, render_route
from torii.gateways.otoroshi_sync import OtoroshiServiceSync, OtoroshiSync
from torii.models.gatewayapi import ApiHealth, AuthMode, GatewayAPISpec

ROUTES, SERVICES = "routes", "services"
# (ref, spec, object id, api group) -> the object to write
Render = Callable[[ObjectRef, GatewayAPISpec, str, str | None], dict[str, Any]]


class OtoroshiApis:
    """The API role of the Otoroshi driver (`ApiRole`): routes (or services) converged in bursts by `sync`;
    Torii's objects of the other kind (`other`) are what a switch of entity leaves to migrate."""

    def __init__(self, name: str, http: AdminClient, sync: OtoroshiSync, other: OtoroshiSync, render: Render, *,
                 id_prefix: str, notes: Callable[[GatewayAPISpec, dict[str, Any]], list[str]] | None = None,
                 ) -> None:  # fmt: skip
        self.name = name
        self.id_prefix = id_prefix
        self.sync, self.other = sync, other
        self._render = render
        self._notes = notes
        self._http = http
        self.verifiers = OtoroshiVerifiers(name, http)
        self.certs = OtoroshiCertificates(name, http)
        self._groups: set[str] = set()  # service groups known to exist (created or found)
        self._leftovers: dict[str, Owner] | None = None  # Torii's objects of the other kind, read once
        self._leftovers_lock = asyncio.Lock()

    async def converge_api(self, ref: ObjectRef, spec: GatewayAPISpec, *, max_age: float = 0.0) -> ConvergeResult:
        object_id = api_gateway_id(ref, spec, self.id_prefix)
        if spec.adopt is not None and spec.adopt.id in RESERVED_IDS:
            raise OwnershipConflict(f"gateway {self.name}: spec.adopt.id: that id is one of Otoroshi's own "
                                    "entities; it cannot be adopted")  # fmt: skip
        api_group = group_id(self.id_prefix, ref.namespace, spec.group) if spec.group else None
        desired = with_fingerprint(self._render(ref, spec, object_id, api_group))
        verifier = AuthMode.JWT in spec.modes and await self.verifiers.ensure(ref, spec, object_id)
        pair = spec.upstream.tls.pair if spec.upstream.tls else None
        cert, uploaded = await self.certs.ensure(ref, object_id, *pair) if pair else (None, False)
        if api_group and api_group not in self._groups:
            await self.ensure_group(api_group, f"Torii API group {spec.group} of namespace {ref.namespace}")
            self._groups.add(api_group)
        applied = await self.sync.put(object_id, desired, max_age=max_age, adopting=spec.adopt is not None)
        migrated = await self._retire_leftover(object_id, (ref.namespace, ref.name), confirm=False)
        notes = tuple(self._notes(spec, desired)) if self._notes else ()
        if pair and (uploaded or applied.changed):  # the route names only `cert` now: any other of its goes
            await self.certs.retire(ref, object_id, keep={cert} if cert else set())
        changed = applied.changed or migrated or verifier or uploaded
        return ConvergeResult(object_id, changed=changed, created=applied.created, notes=notes)

    async def delete_api(self, ref: ObjectRef, gateway_id: str | None = None, *,
                         auth: AuthMode = AuthMode.KEYLESS, certificates: bool = False) -> bool:  # fmt: skip
        object_id = gateway_id or ref.gateway_id(self.id_prefix)
        deleted = await self.sync.remove(object_id, (ref.namespace, ref.name))
        if auth == AuthMode.JWT:  # once the route that names it is gone
            await self.verifiers.delete(ref, object_id)
        if certificates:
            await self.certs.retire(ref, object_id)
        return await self._retire_leftover(object_id, (ref.namespace, ref.name), confirm=True) or deleted

    async def tidy(self, ref: ObjectRef, gateway_id: str, *, jwt: bool, certificates: bool) -> None:
        if jwt:
            await self.verifiers.delete(ref, gateway_id)
        if certificates:
            await self.certs.retire(ref, gateway_id)

    async def _retire_leftover(self, object_id: str, owner: Owner, *, confirm: bool) -> bool:
        """Delete this object's own object of the other kind, if the connection's entity was switched. Called
        once the object of the current kind is served: the proxy then keeps answering on the path."""
        leftovers = await self.leftovers()
        if leftovers.get(object_id) != owner:
            return False
        await self.other.remove(object_id, owner, confirm=confirm)
        leftovers.pop(object_id, None)
        if not confirm:
            # The proxy answered the new object's probe while the old one (served first) still stood: Ready
            # only once the new object itself answers on the path.
            await self.sync.reconfirm(object_id)
        return True

    async def leftovers(self) -> dict[str, Owner]:
        """Torii's objects of the other kind, by id (one list call per driver: after a migration nothing new
        of that kind is ever written)."""
        async with self._leftovers_lock:
            if self._leftovers is None:
                views = await self.other.list_all()
                self._leftovers = {i: o for i, v in views.items() if (o := owner_of(v)) is not None}
            return self._leftovers

    async def ensure_group(self, group_id: str, description: str) -> None:
        response = await self._http.request(
            "GET", admin_path("/api/groups/{}", group_id), op="get group", passthrough=(404,)
        )
        if response.status_code == 404:
            await self._http.request(
                "POST", "/api/groups", op="create group",
                json={"id": group_id, "name": group_id, "description": description}, passthrough=(400,),
            )  # fmt: skip

    async def api_health(self, ref: ObjectRef, gateway_id: str | None = None) -> ApiHealth | None:
        return None


class OtoroshiInventory:
    """The import role of the Otoroshi driver (`ImportRole`): what `torii import` reads."""

    def __init__(self, http: AdminClient, *, domain: str, subdomain: str, group: str, entity: str = ROUTES) -> None:
        self._http = http
        self.domain, self.subdomain, self.group, self.entity = domain, subdomain, group, entity

    async def inventory(self) -> Inventory:
        """The connection's entity (routes or services) and keys. On a routes connection, services are listed as
        not imported, with how to convert them."""

        async def get(path: str, op: str) -> Any:
            return (await self._http.request("GET", path, op=op)).json()

        legacy: list[tuple[str, str]] = []
        if self.entity == ROUTES:
            legacy = [
                (f"Otoroshi service {s.get('id')} ({s.get('name', '')})",
                 "is a service descriptor (deprecated by Otoroshi) and this connection publishes routes: convert it "
                 f"first (POST /api/services/{s.get('id')}/route), then import again")
                for s in await get("/api/services", "list services") if isinstance(s, dict)
            ]  # fmt: skip
        return Inventory(
            apis=list(await get(f"/api/{self.entity}", f"list {self.entity}")),
            keys=[(str(k.get("clientId")), k) for k in await get("/api/apikeys", "list keys")],
            oauth_clients=[],
            api_defaults=await get(f"/api/{self.entity}/_template", f"{self.entity} template"),
            key_defaults=await get("/api/apikeys/_template", "apikey template"),
            rendering={"domain": self.domain, "subdomain": self.subdomain, "group": self.group},
            kind="otoroshi-routes" if self.entity == ROUTES else "otoroshi",
            not_imported=legacy,
        )


class OtoroshiDriver:
    """One Otoroshi connection: its roles share one admin client. Otoroshi has no OAuth clients (`oauth` None)."""

    type = "otoroshi"
    oauth = None

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
        entity: str = ROUTES,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: CallObserver | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.admin_urls = [url, *([proxy_url] if proxy_url else [])]
        self.public_host = f"{subdomain}.{domain}" if subdomain else domain
        self._http = AdminClient(
            name, url, headers={"Host": api_host, "Accept": "application/json"}, auth=(client_id, client_secret),
            transport=transport, observer=observer, verify=verify, timeout=timeout, secrets=[client_secret],
        )  # fmt: skip
        # Client traffic, to confirm what the proxy serves (never with admin credentials).
        self._proxy = Client(
            base_url=(proxy_url or url).rstrip("/"), headers={"Host": self.public_host}, timeout=10.0,
            transport=transport, verify=verification(verify),
        )  # fmt: skip
        routes = OtoroshiRouteSync(
            name, self._http, self.routed, state_sync_seconds=state_sync_seconds, serve_timeout=serve_timeout
        )
        services = OtoroshiServiceSync(
            name, self._http, self.routed, state_sync_seconds=state_sync_seconds, serve_timeout=serve_timeout
        )
        # Each kind's paths are held against the other's: a hand-made service (which the proxy serves before a
        # route) must not leave a new route on its path Ready while it never gets a request.
        routes.neighbour, services.neighbour = services, routes
        self.entity = entity
        # The escape-hatch dialect (tenancy rules) and the fields Torii overrides there, per entity.
        self.dialect = "otoroshi" if entity == SERVICES else "otoroshi-routes"
        self.neutral_fields = frozenset() if entity == SERVICES else frozenset(ROUTE_NEUTRAL_FIELDS)

        def route(ref: ObjectRef, spec: GatewayAPISpec, object_id: str, api_group: str | None) -> dict[str, Any]:
            return render_route(ref, spec, route_id=object_id, host=self.public_host, group=group, api_group=api_group)

        def service(ref: ObjectRef, spec: GatewayAPISpec, object_id: str, api_group: str | None) -> dict[str, Any]:
            return render_service(ref, spec, service_id=object_id, domain=domain, subdomain=subdomain, group=group,
                                  api_group=api_group)  # fmt: skip

        if entity == SERVICES:
            self.apis = OtoroshiApis(name, self._http, services, routes, service, id_prefix=id_prefix)
        else:
            self.apis = OtoroshiApis(name, self._http, routes, services, route, id_prefix=id_prefix,
                                     notes=overridden_fields)  # fmt: skip
        self.keys = OtoroshiKeys(
            name, self._http, admin_client_id=client_id, state_sync_seconds=state_sync_seconds,
            entity=entity.removesuffix("s"), proxy=self._proxy, locate=self.apis.sync.location,
            confirm_timeout=serve_timeout,
        )  # fmt: skip
        self.importer = OtoroshiInventory(self._http, domain=domain, subdomain=subdomain, group=group, entity=entity)

    async def ready(self) -> None:
        """Its admin endpoint is its URL: known from the start."""

    async def watch(self, refill: Callable[[], None]) -> None:
        """Nothing to watch: one Otoroshi (or its cluster leader) holds every route; drift passes repair it."""

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._proxy.aclose()

    async def routed(self, listen_path: str, host: str | None = None) -> bool:
        """Does the proxy route `listen_path` (on `host`, default the connection's public host) to anything?
        (Any answer but Otoroshi's own "no route".)"""
        try:
            response = await self._proxy.get(listen_path, headers={"Host": host} if host else None)
        except httpx.HTTPError as exc:
            # Unreachable: fail now (retried) rather than wait out the serve timeout on a gateway that is down.
            raise RetryableGatewayError(
                f"gateway {self.name}: proxy unreachable while confirming {listen_path} ({type(exc).__name__})"
            ) from None
        return not (response.status_code == 404 and "no route" in response.headers.get("Otoroshi-Error-Msg", ""))

    async def ping(self) -> None:
        # The groups: a handful of small objects, authenticated with the admin API key.
        await self._http.request("GET", "/api/groups", op="ping")

    async def check(self) -> str:
        await self.ping()
        return f"Otoroshi at {self._http.base_url} ({self.entity} on {self.public_host})"
