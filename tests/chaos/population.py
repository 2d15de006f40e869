"""A mixed population of Torii objects for chaos scenarios, applied with kubectl like a user would."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client

from chaos.audit import Deleted, key_headers, ready_now, secret
from support.kube import kubectl
from support.wait import wait_until
from support.world import GROUP, PLURALS, VERSION


@dataclass(frozen=True)
class Obj:
    kind: str
    ns: str
    name: str
    spec: dict[str, Any]

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": self.kind,
            "metadata": {"name": self.name, "namespace": self.ns}, "spec": self.spec,
        }  # fmt: skip


def unit(ns: str, i: int, upstream: str, otoroshi: bool = True) -> list[Obj]:
    """Ten objects: Tyk APIs (open, keyed, OAuth), Otoroshi APIs (open, keyed), their keys and an OAuth client."""

    def api(name: str, gateway: str, auth: str) -> Obj:
        return Obj("GatewayAPI", ns, name, {"gateway": gateway, "listenPath": f"/{ns}/{name}/", "auth": auth,
                                            "upstream": {"url": upstream}})  # fmt: skip

    objs = [
        api(f"t-open-{i}", "tyk", "keyless"),
        api(f"t-open2-{i}", "tyk", "keyless"),
        api(f"t-key-{i}", "tyk", "key"),
        api(f"t-oauth-{i}", "tyk", "oauth2"),
        Obj("GatewayKey", ns, f"tk-{i}-a", {"gateway": "tyk", "apis": [{"name": f"t-key-{i}"}]}),
        Obj(
            "GatewayKey",
            ns,
            f"tk-{i}-b",
            {"gateway": "tyk", "apis": [{"name": f"t-key-{i}"}], "rateLimit": {"rate": 1000, "per": 60}},
        ),
        Obj(
            "OAuthClient",
            ns,
            f"oc-{i}",
            {"gateway": "tyk", "api": f"t-oauth-{i}", "redirectUri": "http://127.0.0.1:3000/cb"},
        ),
    ]
    if otoroshi:
        objs += [
            api(f"o-open-{i}", "otoroshi", "keyless"),
            api(f"o-key-{i}", "otoroshi", "key"),
            Obj("GatewayKey", ns, f"ok-{i}", {"gateway": "otoroshi", "apis": [{"name": f"o-key-{i}"}]}),
        ]
    return objs


def population(namespaces: list[str], count: int, upstream: str, otoroshi: bool = True) -> list[Obj]:
    """About `count` objects spread over the namespaces (whole units of ten)."""
    units = max(1, count // 10)
    return [o for i in range(units) for o in unit(namespaces[i % len(namespaces)], i, upstream, otoroshi)]


def apply(objs: list[Obj], kubeconfig: str) -> None:
    text = yaml.safe_dump_all([o.manifest() for o in objs])
    done = kubectl("apply", "--server-side", "-f", "-", stdin=text, kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr[-2000:]


def listed(api: client.ApiClient, namespaces: list[str]) -> list[dict[str, Any]]:
    custom = client.CustomObjectsApi(api)
    return [
        o for ns in namespaces for plural in PLURALS.values()
        for o in custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural)["items"]
    ]  # fmt: skip


def converged(api: client.ApiClient, namespaces: list[str], expected: int, timeout: float) -> float:
    """Seconds until exactly `expected` objects exist in the namespaces and every one is Ready."""
    started = time.monotonic()

    def check() -> bool:
        items = listed(api, namespaces)
        return len(items) == expected and all(ready_now(o) for o in items)

    def progress() -> str:
        items = listed(api, namespaces)
        waiting = [f"{o['kind']} {o['metadata']['name']}: {o.get('status', {}).get('conditions')}" for o in items
                   if not ready_now(o)]  # fmt: skip
        return f"{len(items)} objects, {len(waiting)} not Ready: {waiting[:3]}"

    try:
        wait_until(check, timeout=timeout, what=f"{expected} objects Ready")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {progress()}") from None
    return round(time.monotonic() - started, 1)


def deleted_records(api: client.ApiClient, objs: list[Obj]) -> list[Deleted]:
    """What must stop working once `objs` are deleted: API paths and key credentials (read before deleting)."""
    core = client.CoreV1Api(api)
    apis = {(o.ns, o.name): o for o in objs if o.kind == "GatewayAPI"}
    records = [Deleted(o.spec["gateway"], o.spec["listenPath"]) for o in apis.values()]
    for o in objs:
        if o.kind != "GatewayKey":
            continue
        data = secret(core, o.ns, o.name)
        target = apis.get((o.ns, o.spec["apis"][0]["name"]))
        if data and target is not None:
            records.append(Deleted(o.spec["gateway"], target.spec["listenPath"], key_headers(o.spec["gateway"], data)))
    return records


def delete(api: client.ApiClient, objs: list[Obj]) -> None:
    custom = client.CustomObjectsApi(api)
    for o in objs:
        try:
            custom.delete_namespaced_custom_object(GROUP, VERSION, o.ns, PLURALS[o.kind], o.name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


def all_gone(api: client.ApiClient, namespaces: list[str], timeout: float) -> float:
    started = time.monotonic()
    wait_until(lambda: not listed(api, namespaces), timeout=timeout, what="every Torii object deleted")
    return round(time.monotonic() - started, 1)


def credentials(api: client.ApiClient, objs: list[Obj]) -> dict[str, dict[str, str]]:
    """Every generated credential, by object (for 'same credentials after' and the leak scan)."""
    core = client.CoreV1Api(api)
    return {f"{o.ns}/{o.name}": secret(core, o.ns, o.name) for o in objs if o.kind in ("GatewayKey", "OAuthClient")}
