"""The audit every chaos scenario ends with: what the cluster says against what the gateways hold and serve.

For the namespaces of a scenario: every GatewayAPI, GatewayKey and OAuthClient has exactly one matching object on
its gateway (no duplicates, no orphans, none missing), every Ready object is served (a Ready API routes, a Ready
key's credential from its Secret works through the gateway), every Ready condition is at the object's current
generation, and everything deleted during the scenario is gone upstream (its paths no longer routed, its
credentials refused). Read through the admin APIs and client traffic only, never through Torii.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from kubernetes import client

from support.stack import Stack
from support.world import GROUP, PLURALS, VERSION

PREFIX = "torii."


@dataclass
class Deleted:
    """Something deleted during a scenario, to prove gone upstream: an API's path, or a key's credential."""

    gateway: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)  # a key's credential; empty for an API


@dataclass
class Findings:
    objects: int = 0
    duplicates: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    untrue: list[str] = field(default_factory=list)  # a status that lies, a credential that fails, a path still up
    not_ready: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.duplicates or self.orphans or self.missing or self.untrue)

    def summary(self) -> str:
        parts = [f"{len(v)} {k}: {v[:5]}" for k, v in self.__dict__.items() if isinstance(v, list) and v]
        return "; ".join(parts) or "clean"


def ready_now(obj: dict[str, Any]) -> bool:
    gen = obj["metadata"].get("generation")
    return any(
        c["type"] == "Ready" and c["status"] == "True" and c.get("observedGeneration") == gen
        for c in obj.get("status", {}).get("conditions", [])
    )


def tyk_node_urls(env: dict[str, str]) -> list[str]:
    """The Tyk nodes of the stack (TYK_NODE_URLS), or the one TYK_URL."""
    return env.get("TYK_NODE_URLS", "").split() or [env["TYK_URL"]]


class Gateways:
    """Admin and client access to the stack's gateways (read-only, for audits)."""

    def __init__(self, stack: Stack) -> None:
        env = stack.env
        self.env = env
        self.tyk = httpx.Client(base_url=env["TYK_URL"], headers={"X-Tyk-Authorization": env["TYK_SECRET"]})
        self.tyk_client = httpx.Client(base_url=env["TYK_URL"])
        # Every Tyk node the operators write to (API definitions are per node): each is audited on its own.
        self.tyk_nodes = [
            httpx.Client(base_url=url, headers={"X-Tyk-Authorization": env["TYK_SECRET"]}) for url in tyk_node_urls(env)
        ]  # fmt: skip
        self.has_otoroshi = "OTOROSHI_URL" in env
        if self.has_otoroshi:
            creds = base64.b64encode(f"{env['OTOROSHI_CLIENT_ID']}:{env['OTOROSHI_CLIENT_SECRET']}".encode()).decode()
            self.oto = httpx.Client(
                base_url=env["OTOROSHI_URL"],
                headers={"Host": env["OTOROSHI_API_HOST"], "Authorization": f"Basic {creds}"},
                timeout=30,
            )
            self.oto_client = httpx.Client(
                base_url=env["OTOROSHI_URL"], headers={"Host": f"api.{env['OTOROSHI_DOMAIN']}"}
            )

    def close(self) -> None:
        for c in (self.tyk, self.tyk_client, *self.tyk_nodes,
                  *((self.oto, self.oto_client) if self.has_otoroshi else ())):  # fmt: skip
            c.close()

    def get(self, gateway: str, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """Client traffic to `path` on a gateway."""
        c = self.tyk_client if gateway == "tyk" else self.oto_client
        return c.get(path, headers=headers or {})

    def routed(self, gateway: str, path: str) -> bool:
        response = self.get(gateway, path)
        if gateway == "tyk":
            return response.status_code != 404
        return not (response.status_code == 404 and "no route" in response.headers.get("Otoroshi-Error-Msg", ""))

    def tyk_apis(self, node: httpx.Client | None = None) -> list[dict[str, Any]]:
        listed = (node or self.tyk).get("/tyk/apis/").json() or []
        return [a for a in listed if str(a.get("api_id", "")).startswith(PREFIX)]

    def tyk_routed_everywhere(self, path: str) -> list[str]:
        """The nodes that do not route `path` (client traffic sent to each node directly)."""
        return [str(n.base_url) for n in self.tyk_nodes if n.get(path, headers={"X-Tyk-Authorization": ""}).status_code
                == 404]  # fmt: skip

    def tyk_key_owners(self, api_id: str) -> list[str]:
        """The Torii object each key on Tyk belongs to (`meta_data.torii-object`), one entry per key."""
        owners = []
        for key_hash in self.tyk.get("/tyk/keys/", params={"api_id": api_id}).json().get("keys") or []:
            session = self.tyk.get(f"/tyk/keys/{key_hash}", params={"hashed": "1", "api_id": api_id})
            if session.status_code == 200:
                owners.append((session.json().get("meta_data") or {}).get("torii-object", ""))
        return owners

    def tyk_oauth_clients(self, api_id: str) -> list[str]:
        response = self.tyk.get(f"/tyk/oauth/clients/{api_id}")
        return [c["client_id"] for c in (response.json() or [])] if response.status_code == 200 else []

    def oto_apis(self) -> list[dict[str, Any]]:
        """Torii's routes, and any service of Torii's (a `routes` connection must leave none: an orphan)."""
        if not self.has_otoroshi:
            return []
        return [s for kind in ("routes", "services") for s in self.oto.get(f"/api/{kind}").json()
                if str(s.get("id", "")).startswith(PREFIX)]  # fmt: skip

    def oto_key_owners(self) -> list[str]:
        if not self.has_otoroshi:
            return []
        return [(k.get("metadata") or {}).get("torii-object", "") for k in self.oto.get("/api/apikeys").json()]


def secret(core: client.CoreV1Api, ns: str, name: str) -> dict[str, str]:
    try:
        data = core.read_namespaced_secret(name, ns).data or {}
    except client.ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def key_headers(gateway: str, data: dict[str, str]) -> dict[str, str]:
    if gateway == "tyk":
        return {"Authorization": data["key"]}
    return {"Otoroshi-Client-Id": data["clientId"], "Otoroshi-Client-Secret": data["clientSecret"]}


def audit(stack: Stack, api: client.ApiClient, namespaces: list[str], deleted: list[Deleted] | None = None) -> Findings:
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    gw = Gateways(stack)
    found = Findings()
    try:
        objects = {
            kind: [o for ns in namespaces for o in custom.list_namespaced_custom_object(GROUP, VERSION, ns, p)["items"]]
            for kind, p in PLURALS.items()
        }
        found.objects = sum(len(v) for v in objects.values())
        for kind, items in objects.items():
            found.not_ready += [f"{kind} {o['metadata']['namespace']}/{o['metadata']['name']}" for o in items
                                if not ready_now(o)]  # fmt: skip
        audit_apis(gw, objects["GatewayAPI"], namespaces, found)
        audit_keys(gw, core, objects, namespaces, found)
        audit_oauth(gw, core, objects, found)
        for gone in deleted or []:
            if gone.headers:
                status = gw.get(gone.gateway, gone.path, gone.headers).status_code
                if status == 200:
                    found.untrue.append(f"deleted key still works on {gone.gateway} {gone.path}")
            elif gw.routed(gone.gateway, gone.path):
                found.untrue.append(f"deleted API still routed on {gone.gateway} {gone.path}")
    finally:
        gw.close()
    return found


def ref(obj: dict[str, Any]) -> str:
    return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"


def audit_apis(gw: Gateways, apis: list[dict[str, Any]], namespaces: list[str], found: Findings) -> None:
    on_gateway: dict[str, Counter[str]] = {
        "otoroshi": Counter(s["name"] for s in gw.oto_apis() if s["name"].split("/")[0] in namespaces),
    }
    for index, node in enumerate(gw.tyk_nodes):  # "tyk" (node 0), "tyk node 1", ...: every node on its own
        name = "tyk" if index == 0 else f"tyk node {index}"
        on_gateway[name] = Counter(a["name"] for a in gw.tyk_apis(node) if a["name"].split("/")[0] in namespaces)
    # Every object may be on its gateway (a not-Ready one may be half way); a Ready active one must be.
    exists = {(o["spec"]["gateway"], ref(o)) for o in apis if o["spec"].get("active", True)}
    exists |= {(g, r) for g in on_gateway if g.startswith("tyk node") for (t, r) in exists if t == "tyk"}
    for gateway, counts in on_gateway.items():
        found.duplicates += [f"{gateway} API {r} x{n}" for r, n in counts.items() if n > 1]
        found.orphans += [f"{gateway} API {r}" for r in counts if (gateway, r) not in exists]
    for o in apis:
        gateway, r = o["spec"]["gateway"], ref(o)
        holders = [g for g in on_gateway if g == gateway or (gateway == "tyk" and g.startswith("tyk node"))]
        if ready_now(o) and o["spec"].get("active", True):
            found.missing += [f"{g} API {r}" for g in holders if on_gateway[g][r] == 0]
    for o in apis:
        if (
            ready_now(o)
            and o["spec"].get("active", True)
            and not gw.routed(o["spec"]["gateway"], o["spec"]["listenPath"])
        ):
            found.untrue.append(f"API {ref(o)} Ready but {o['spec']['listenPath']} not routed")
        elif ready_now(o) and o["spec"].get("active", True) and o["spec"]["gateway"] == "tyk":
            found.untrue += [f"API {ref(o)} Ready but not routed on Tyk node {n}"
                             for n in gw.tyk_routed_everywhere(o["spec"]["listenPath"])]  # fmt: skip


def audit_keys(
    gw: Gateways, core: client.CoreV1Api, objects: dict[str, list[dict[str, Any]]], namespaces: list[str],
    found: Findings,
) -> None:  # fmt: skip
    apis = {ref(o): o for o in objects["GatewayAPI"]}
    keys = objects["GatewayKey"]
    owners: dict[str, Counter[str]] = {"tyk": Counter(), "otoroshi": Counter(gw.oto_key_owners())}
    tyk_ids = [a["api_id"] for a in gw.tyk_apis()]
    if tyk_ids:  # Tyk lists every key of the gateway whatever the API asked for (hash_keys on)
        owners["tyk"] = Counter(gw.tyk_key_owners(tyk_ids[0]))
    wanted = {(o["spec"]["gateway"], ref(o)) for o in keys}
    for gateway, counts in owners.items():
        ours = {r: n for r, n in counts.items() if r.split("/")[0] in namespaces}
        found.duplicates += [f"{gateway} key {r} x{n}" for r, n in ours.items() if n > 1]
        found.orphans += [f"{gateway} key {r}" for r in ours if (gateway, r) not in wanted]
    for o in keys:
        gateway, r = o["spec"]["gateway"], ref(o)
        if ready_now(o) and owners.get(gateway, Counter())[r] == 0:
            found.missing.append(f"{gateway} key {r}")
        if not ready_now(o) or not o["spec"].get("enabled", True):
            continue
        api = apis.get(f"{o['metadata']['namespace']}/{o['spec']['apis'][0]['name']}")
        data = secret(core, o["metadata"]["namespace"], o["spec"].get("secretName") or o["metadata"]["name"])
        if api is None or not data:
            found.untrue.append(f"key {r} Ready without its API or its Secret")
            continue
        status = gw.get(gateway, api["spec"]["listenPath"], key_headers(gateway, data)).status_code
        if status != 200:
            found.untrue.append(f"key {r} Ready but its credential gets HTTP {status}")


def audit_oauth(
    gw: Gateways, core: client.CoreV1Api, objects: dict[str, list[dict[str, Any]]], found: Findings
) -> None:
    apis = {ref(o): o for o in objects["GatewayAPI"]}
    by_api: dict[str, list[dict[str, Any]]] = {}
    for o in objects["OAuthClient"]:
        by_api.setdefault(f"{o['metadata']['namespace']}/{o['spec']['api']}", []).append(o)
    for api_ref, clients in by_api.items():
        api = apis.get(api_ref)
        if api is None or not api.get("status", {}).get("gatewayId"):
            continue
        listed = Counter(gw.tyk_oauth_clients(api["status"]["gatewayId"]))
        expected = set()
        for o in clients:
            data = secret(core, o["metadata"]["namespace"], o["spec"].get("secretName") or o["metadata"]["name"])
            client_id = data.get("clientId")
            if not client_id:
                if ready_now(o):
                    found.untrue.append(f"OAuth client {ref(o)} Ready without its Secret")
                continue
            expected.add(client_id)
            if listed[client_id] > 1:
                found.duplicates.append(f"OAuth client {ref(o)} x{listed[client_id]}")
            if ready_now(o) and listed[client_id] == 0:
                found.missing.append(f"OAuth client {ref(o)}")
        found.orphans += [f"OAuth client {c} of {api_ref}" for c in listed if c not in expected]
