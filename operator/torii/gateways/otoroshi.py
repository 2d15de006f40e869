"""Otoroshi driver (admin API reached through Otoroshi's own proxy with `Host: <api host>`, basic auth).

A GatewayAPI becomes a ServiceDescriptor reached at `<subdomain>.<domain>` (from the gateway connection) under
`matchingRoot` = the listen path.

Verified on Otoroshi 17.17: an admin write is stored at once, but the proxy serves it only after its next state
sync (`otoroshi.next.state-sync-interval`, 10 s by default). So after writing a service the driver waits one
sync interval and then asks the proxy itself: a route Otoroshi does not know answers 404 with the header
`Otoroshi-Error-Msg: no route found !`. Ready therefore means "the proxy routes it", not "the admin API stored it".
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from torii.gateways.base import ConvergeResult, Inventory, ObjectRef, api_gateway_id, group_id
from torii.gateways.errors import OwnershipConflict, RetryableGatewayError
from torii.gateways.http import AdminClient, CallObserver, admin_path
from torii.gateways.otoroshi_keys import OtoroshiKeys
from torii.gateways.otoroshi_render import RESERVED_IDS, render_service, with_fingerprint
from torii.gateways.otoroshi_sync import OtoroshiServiceSync
from torii.models.gatewayapi import ApiHealth, GatewayAPISpec


class OtoroshiApis:
    """The API role of the Otoroshi driver (`ApiRole`): services converged in bursts by `OtoroshiServiceSync`."""

    def __init__(self, name: str, http: AdminClient, sync: OtoroshiServiceSync, *, domain: str, subdomain: str,
                 group: str, id_prefix: str) -> None:  # fmt: skip
        self.name = name
        self.domain, self.subdomain, self.group, self.id_prefix = domain, subdomain, group, id_prefix
        self.sync = sync
        self._http = http
        self._groups: set[str] = set()  # service groups known to exist (created or found)

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
        applied = await self.sync.put(service_id, desired, max_age=max_age, adopting=spec.adopt is not None)
        return ConvergeResult(service_id, changed=applied.changed, created=applied.created)

    async def delete_api(self, ref: ObjectRef, gateway_id: str | None = None) -> bool:
        return await self.sync.remove(gateway_id or ref.gateway_id(self.id_prefix), (ref.namespace, ref.name))

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

    def __init__(self, http: AdminClient, *, domain: str, subdomain: str, group: str) -> None:
        self._http = http
        self.domain, self.subdomain, self.group = domain, subdomain, group

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
            kind="otoroshi",
        )


class OtoroshiDriver:
    """One Otoroshi connection: its roles share one admin client. Otoroshi has no OAuth clients (`oauth` None)."""

    type = "otoroshi"
    neutral_fields: frozenset[str] = frozenset()
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
        self._proxy = httpx.AsyncClient(
            base_url=(proxy_url or url).rstrip("/"), headers={"Host": self.public_host}, timeout=10.0,
            transport=transport, verify=verify,
        )  # fmt: skip
        sync = OtoroshiServiceSync(
            name, self._http, self.routed, state_sync_seconds=state_sync_seconds, serve_timeout=serve_timeout
        )
        self.apis = OtoroshiApis(name, self._http, sync, domain=domain, subdomain=subdomain, group=group,
                                 id_prefix=id_prefix)  # fmt: skip
        self.keys = OtoroshiKeys(name, self._http, admin_client_id=client_id, state_sync_seconds=state_sync_seconds)
        self.importer = OtoroshiInventory(self._http, domain=domain, subdomain=subdomain, group=group)

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
