"""Tyk Gateway OSS driver (classic API definitions over `/tyk/...`, header `X-Tyk-Authorization`).

Verified behaviour this relies on (see shared notes): `POST /tyk/apis` is an upsert that writes the file but
does not load it; `GET /tyk/apis/` and `GET/PUT/DELETE /tyk/apis/{id}` only see loaded APIs; a reload loads
everything. GatewayAPIs are converged in bursts by `tyk_sync.TykApiSync` (list, write what differs, one reload,
list); keys and OAuth clients need no reload and are handled one by one here.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from torii.gateways.base import ConvergeResult, Inventory, ObjectRef, api_gateway_id
from torii.gateways.burst import Applied, Remove
from torii.gateways.http import AdminClient, CallObserver, admin_path
from torii.gateways.tyk_certs import TykCertificates
from torii.gateways.tyk_keys import TykKeys, digest_id
from torii.gateways.tyk_nodes import NodeMonitor, TykNode, TykNodes
from torii.gateways.tyk_oauth import TykOAuth
from torii.gateways.tyk_policies import TykPolicies
from torii.gateways.tyk_render import (
    NEUTRAL_FIELDS,
    overridden_fields,
    render_api_definition,
    render_policy,
    with_fingerprint,
)
from torii.gateways.tyk_sync import TykApiSync
from torii.models.gatewayapi import ApiHealth, AuthMode, GatewayAPISpec

ADMIN_HEADER = "X-Tyk-Authorization"
log = logging.getLogger("torii.tyk")


class TykApis:
    """The API role of the Tyk driver (`ApiRole`): definitions converged in bursts by `TykApiSync`, on every
    node of the connection (`tyk_nodes`)."""

    def __init__(self, name: str, http: AdminClient, nodes: TykNodes, *, org_id: str, id_prefix: str,
                 health: bool) -> None:  # fmt: skip
        self.name = name
        self.org_id = org_id
        self.id_prefix = id_prefix
        self.health_enabled = health
        self.nodes = nodes
        self._http = http  # health figures: any node's
        self.policies = TykPolicies(name)
        self.certs = TykCertificates(name, http)

    async def converge_api(self, ref: ObjectRef, spec: GatewayAPISpec, *, max_age: float = 0.0) -> ConvergeResult:
        api_id = api_gateway_id(ref, spec, self.id_prefix)
        org_id = spec.adopt.org_id if spec.adopt and spec.adopt.org_id else self.org_id
        if not spec.active:
            # Verified on 5.10.2: Tyk OSS serves every loaded classic definition, `active: false` included (the
            # flag is the Dashboard's). An inactive API is therefore kept off the gateway altogether.
            owner = (ref.namespace, ref.name)
            removed = await self.nodes.each(lambda n: n.sync.submit(api_id, Remove(owner, settled=True)))
            return ConvergeResult(api_id, changed=TykNodes.applied(removed).changed)
        desired = with_fingerprint(render_api_definition(ref, spec, api_id=api_id, org_id=org_id))
        notes = tuple(overridden_fields(spec, desired))
        adopting = spec.adopt is not None
        policy = render_policy(ref, api_id=api_id, org_id=org_id) if desired.get("jwt_default_policies") else None
        # Certificates first (Redis: once for every node); the definitions name them. The upstream client
        # certificate (with its key) and the certificates clients are checked against (spec.mtls).
        pair = spec.upstream.tls.pair if spec.upstream.tls else None
        wanted = [(*pair, "spec.upstream.tls")] if pair else []
        allowed = spec.mtls.certificates if spec.mtls else ()
        wanted += [(c, "", f"spec.mtls.allowed[{i}]") for i, c in enumerate(allowed)]
        stored = [await self.certs.ensure(api_id, chain, key, what=what) for chain, key, what in wanted]
        pins = spec.upstream.tls.pins if spec.upstream.tls else ()
        stored += [await self.certs.ensure_pin(api_id, pin, what=f"spec.upstream.tls.pinnedPublicKeys[{i}]")
                   for i, pin in enumerate(pins)]  # fmt: skip
        uploaded = any(now for _, now in stored)

        async def on(node: TykNode) -> Applied:
            # A JWT API's policy goes first: the reload that loads the definition loads it too.
            wrote = policy is not None and await self.policies.ensure(node.http, ref, policy)
            applied = await node.sync.put(api_id, desired, max_age=max_age, adopting=adopting)
            if wrote and not applied.changed:
                await node.sync.reload_now()  # the definition was in sync: the policy still has to be loaded
            return Applied(changed=applied.changed or wrote, created=applied.created)

        results = await self.nodes.each(on)
        applied = TykNodes.applied(results)
        if stored and (uploaded or applied.changed):  # every node names only `stored` now: any other goes
            await self.certs.retire(api_id, keep={cid for cid, _ in stored})
        # Every node called (`each` raises otherwise): reported where a connection has several.
        nodes = (len(results), len(results)) if self.nodes.several else None
        return ConvergeResult(api_id, changed=applied.changed, created=applied.created, notes=notes, nodes=nodes)

    async def delete_api(self, ref: ObjectRef, gateway_id: str | None = None, *,
                         auth: AuthMode = AuthMode.KEYLESS, certificates: bool = False) -> bool:  # fmt: skip
        api_id, owner = gateway_id or ref.gateway_id(self.id_prefix), (ref.namespace, ref.name)
        if auth == AuthMode.JWT:
            # Its policy first: the reload that unloads the API unloads it too (an API left without it, should
            # the removal fail, refuses every token until the retry).
            await self.nodes.each(lambda n: self.policies.delete(n.http, ref, api_id))
        deleted = any(await self.nodes.each(lambda n: n.sync.remove(api_id, owner)))
        if certificates:  # once no node names them
            await self.certs.retire(api_id)
        return deleted

    async def tidy(self, ref: ObjectRef, gateway_id: str, *, jwt: bool, certificates: bool) -> None:
        if jwt:  # no definition names it any more: deleted, and unloaded at once (its grants go with it)

            async def on(node: TykNode) -> None:
                if await self.policies.delete(node.http, ref, gateway_id):
                    await node.sync.reload_now()

            await self.nodes.each(on)
        if certificates:
            await self.certs.retire(gateway_id)

    async def api_health(self, ref: ObjectRef, gateway_id: str | None = None) -> ApiHealth | None:
        if not self.health_enabled:
            return None  # one admin call per API per drift pass: only when the connection asks for it
        api_id = gateway_id or ref.gateway_id(self.id_prefix)
        response = await self._http.request(
            "GET", "/tyk/health/", op="API health", params={"api_id": api_id}, passthrough=(400, 404)
        )
        if response.status_code != 200:  # health checks disabled on this gateway
            return None
        figures = response.json()
        if not isinstance(figures, dict):
            return None
        # JSON names from Tyk's HealthCheckValues (the "reqests" typo is Tyk's own).
        return ApiHealth(
            throttled_requests_ps=figures.get("throttle_reqests_per_second", 0),
            quota_violations_ps=figures.get("quota_violations_per_second", 0),
            key_failures_ps=figures.get("key_failures_per_second", 0),
            average_upstream_latency=figures.get("average_upstream_latency", 0),
            average_requests_ps=figures.get("average_requests_per_second", 0),
            checked_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


class TykInventory:
    """The import role of the Tyk driver (`ImportRole`): what `torii import` reads."""

    def __init__(self, http: AdminClient, oauth: TykOAuth, *, org_id: str) -> None:
        self._http = http
        self._oauth = oauth
        self.org_id = org_id

    async def inventory(self) -> Inventory:
        apis = (await self._http.request("GET", "/tyk/apis/", op="list APIs")).json() or []
        listed = await self._http.request("GET", "/tyk/keys/", op="list keys", passthrough=(400, 404))
        names: list[str] = listed.json().get("keys") or [] if listed.status_code == 200 else []
        orgs = sorted({str(a.get("org_id") or "") for a in apis})
        hashed = True
        if names:
            probe = await self._http.request(
                "GET",
                admin_path("/tyk/keys/{}", names[0]),
                op="get key",
                params={"hashed": "1"},
                passthrough=(400, 404),
            )
            hashed = probe.status_code != 400  # 400: this Tyk does not hash keys (names are the keys)
        if not hashed or listed.status_code == 400:
            # Plain keys are listed per org (`filter` is required then).
            names = []
            for org in orgs:
                response = await self._http.request("GET", "/tyk/keys/", op="list keys", params={"filter": org})
                names += response.json().get("keys") or []
            hashed = False
        limit = asyncio.Semaphore(16)  # Tyk has no bulk read of sessions: one GET per key, a few at a time

        async def session(name: str) -> tuple[str, dict[str, Any]] | None:
            async with limit:
                response = await self._http.request(
                    "GET", admin_path("/tyk/keys/{}", name), op="get key", params={"hashed": "1"} if hashed else {},
                    passthrough=(404,),
                )  # fmt: skip
            # A plain key's name is its credential: the importer knows it by its digest only.
            return (name if hashed else digest_id(name), response.json()) if response.status_code == 200 else None

        keys = [k for k in await asyncio.gather(*(session(n) for n in names)) if k is not None]
        # An API deleted since the list (a live gateway keeps changing during an import) has no clients to import.
        clients = [
            (str(a["api_id"]), c)
            for a in apis
            if a.get("use_oauth2")
            for c in await self._oauth.clients(a["api_id"], api_gone_ok=True)
        ]
        return Inventory(apis=list(apis), keys=keys, oauth_clients=clients, api_defaults={}, key_defaults={},
                         rendering={"org_id": self.org_id}, kind="tyk")  # fmt: skip


class TykDriver:
    """One Tyk connection: its roles share one admin client."""

    type = "tyk"
    neutral_fields = frozenset(NEUTRAL_FIELDS)
    dialect = "tyk"

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        *,
        org_id: str = "torii",
        id_prefix: str = "torii",
        transport: httpx.AsyncBaseTransport | None = None,
        observer: CallObserver | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 30.0,
        reload_quiet: float = 0.25,
        reload_max_delay: float = 2.0,
        reload_scope: str = "node",
        nodes: Sequence[str] = (),
        node_check_seconds: float = 2.0,
        follow: Callable[[], AsyncIterator[list[str]]] | None = None,
        follow_where: str = "",
        load_timeout: float = 30.0,
        session_cache_seconds: float = 10.0,
        api_health: bool = False,
    ) -> None:
        self.name = name
        self.reload_scope = reload_scope

        def client(base_url: str) -> AdminClient:
            return AdminClient(
                name, base_url, headers={ADMIN_HEADER: secret}, transport=transport, observer=observer,
                timeout=timeout, verify=verify, secrets=[secret],
            )  # fmt: skip

        def node(base_url: str) -> TykNode:
            http = self._http if base_url == url else client(base_url)
            sync = TykApiSync(
                name, http, lambda: self._reload(http), quiet=reload_quiet, max_delay=reload_max_delay,
                load_timeout=load_timeout,
            )  # fmt: skip
            return TykNode(base_url, http, sync)

        # Keys and OAuth clients live in the Redis every node shares: written once, through `url`. API
        # definitions are per node: written to each of `nodes` (default: `url` alone).
        self._http = client(url)
        self._node = node
        self._follow = follow
        self._left: list[TykNode] = []
        self.admin_urls = [url, *nodes] if follow is None else [url]
        if follow is None:
            self.nodes = TykNodes(name, [node(u) for u in (list(nodes) or [url])])
        else:  # the Service's ready endpoints, once its EndpointSlices are listed (`watch`)
            self.nodes = TykNodes(name, [], where=follow_where)
        several = len(self.nodes) > 1 or follow is not None
        self.monitor = NodeMonitor(name, self.nodes, interval=node_check_seconds) if several else None
        self.apis = TykApis(name, self._http, self.nodes, org_id=org_id, id_prefix=id_prefix, health=api_health)
        self.keys = TykKeys(name, self._http, org_id=org_id, session_cache_seconds=session_cache_seconds)
        self.oauth: TykOAuth | None = TykOAuth(name, self._http)
        self.importer = TykInventory(self._http, TykOAuth(name, self._http), org_id=org_id)

    async def aclose(self) -> None:
        await self._http.aclose()
        for node in [*self.nodes.nodes, *self._left]:
            if node.http is not self._http:
                await node.http.aclose()

    async def ready(self) -> None:
        await self.nodes.known()

    async def watch(self, refill: Callable[[], None]) -> None:
        """Fill nodes that came back or restarted empty (`NodeMonitor`), and follow the Service's endpoints
        (a node that joins is filled at once); nothing to watch with one fixed node. One failing ends both
        (the caller restarts the watch)."""
        async with asyncio.TaskGroup() as group:
            if self.monitor is not None:
                group.create_task(self.monitor.run(refill))
            if self._follow is not None:
                group.create_task(self._follow_nodes(refill))

    async def _follow_nodes(self, refill: Callable[[], None]) -> None:
        assert self._follow is not None
        async for urls in self._follow():
            before = {n.url for n in self.nodes.nodes}
            if set(urls) == before:
                continue
            left = self.nodes.replace(urls, self._node)
            self.admin_urls = [self._http.base_url, *urls]
            log.info("gateway %s: %d node(s): %s", self.name, len(urls), " ".join(urls))
            # Calls may still be running on a node that left: its client is closed with the driver.
            self._left += [n for n in left if n.http is not self._http]
            if set(urls) - before:
                refill()  # new nodes hold nothing yet

    async def _reload(self, http: AdminClient) -> None:
        if self.reload_scope == "group" and len(self.nodes) == 1:
            # Every node of the cluster (through Redis pub/sub); returns before anything reloaded, so callers
            # confirm by reading the API back until this node serves what was written.
            await http.request("GET", "/tyk/reload/group", op="reload group")
            return
        # `/tyk/reload/?block=true` returns only after this node reloaded.
        await http.request("GET", "/tyk/reload/", op="reload", params={"block": "true"})

    async def ping(self) -> None:
        # /hello answers 503 while the node has lost Redis: not back for Torii's writes either.
        await self._http.request("GET", "/hello", op="ping")

    async def check(self) -> str:
        await self._http.request("GET", "/tyk/apis/", op="list APIs")
        hello = await self._http.request("GET", "/hello", op="hello", passthrough=(503,))
        try:
            version = str(hello.json().get("version", "unknown"))
        except ValueError:
            version = "unknown"
        return f"Tyk Gateway {version} at {self._http.base_url}"
