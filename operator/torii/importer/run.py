"""`torii import`: read a gateway (and, for a migration, tyk-operator's ApiDefinitions) into manifests."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torii.gateways.base import GatewayDriver
from torii.importer import otoroshi, tyk
from torii.importer.manifests import ImportResult, KeyedApi, Manifest, Names, Skipped, key_type_for

TYK_OPERATOR = ("tyk.tyk.io", "v1alpha1", "apidefinitions")


async def import_gateway(driver: GatewayDriver, *, kinds: str = "all", namespace: str | None = None) -> ImportResult:
    """Every API (and key) on the gateway as resources adopting it. Keys refer to the APIs by the names this
    import gives them, so APIs are always mapped (and written when `kinds` asks for them)."""
    inventory = await driver.importer.inventory()
    mapper = MAPPERS[inventory.kind]
    result = ImportResult()
    result.skipped += [Skipped(source, reason) for source, reason in inventory.not_imported]
    api_names: dict[str, KeyedApi] = {}
    oauth_apis: dict[str, str] = {}
    names = Names()
    for item in inventory.apis:
        outcome = mapper.api(item, inventory, gateway=driver.name, names=names, namespace=namespace)
        _add(result, outcome, write=kinds in ("apis", "all"))
        if not isinstance(outcome, Manifest):
            continue
        if (form := key_type_for(outcome.spec)) is not None:
            api_names[outcome.spec["adopt"]["id"]] = KeyedApi(outcome.name, form)
        elif outcome.spec.get("auth") == "oauth2":
            oauth_apis[outcome.spec["adopt"]["id"]] = outcome.name
    if kinds in ("keys", "all"):
        key_names = Names()
        for key_id, body in inventory.keys:
            key = mapper.key(key_id, body, inventory, gateway=driver.name, apis=api_names, names=key_names,
                             namespace=namespace)  # fmt: skip
            _add(result, key, write=True)
        client_names = Names()
        for api_id, body in inventory.oauth_clients:  # credentials too: imported with the keys
            client = tyk.oauth_client_manifest(api_id, body, gateway=driver.name, apis=oauth_apis,
                                               names=client_names, namespace=namespace)  # fmt: skip
            _add(result, client, write=True)
    return result


@dataclass(frozen=True)
class Mapper:
    """How one gateway kind's objects become manifests (`Inventory.kind` names it)."""

    api: Callable[..., Manifest | Skipped]
    key: Callable[..., Manifest | Skipped]
    tyk_operator: bool  # tyk-operator ApiDefinitions can be converted onto it


MAPPERS = {
    "tyk": Mapper(tyk.map_api, tyk.map_key, tyk_operator=True),
    "otoroshi": Mapper(otoroshi.map_api, otoroshi.map_key, tyk_operator=False),
    "otoroshi-routes": Mapper(otoroshi.map_route, otoroshi.map_key, tyk_operator=False),
}


def _add(result: ImportResult, outcome: Manifest | Skipped, *, write: bool) -> None:
    if isinstance(outcome, Skipped):
        result.skipped.append(outcome)
    elif write:
        result.manifests.append(outcome)


def tyk_operator_api_id(definition: dict[str, Any]) -> str:
    """The Tyk api_id tyk-operator v0.18 uses: status.api_id, else spec.api_id, else base64url("ns/name")
    without padding (its controllers/common.go EncodeNS)."""
    status_id = (definition.get("status") or {}).get("api_id")
    spec_id = (definition.get("spec") or {}).get("api_id")
    if status_id or spec_id:
        return str(status_id or spec_id)
    meta = definition["metadata"]
    return base64.urlsafe_b64encode(f"{meta['namespace']}/{meta['name']}".encode()).decode().rstrip("=")


async def list_api_definitions(namespace: str | None) -> list[dict[str, Any]]:
    from torii import kube

    group, version, plural = TYK_OPERATOR
    where = f"/namespaces/{namespace}" if namespace else ""
    response = await kube.api().request("GET", f"/apis/{group}/{version}{where}/{plural}")
    if response.status_code == 404:
        raise SystemExit("no ApiDefinition resources in this cluster (tyk.tyk.io CRDs not installed)")
    if response.status_code != 200:
        raise SystemExit(f"cannot list ApiDefinitions: HTTP {response.status_code} {response.reason_phrase}")
    return list(response.json().get("items") or [])


async def import_tyk_operator(driver: GatewayDriver, definitions: list[dict[str, Any]]) -> ImportResult:
    """GatewayAPIs that adopt the Tyk APIs tyk-operator made from `definitions`, same names and namespaces. The
    live definition on the gateway is the source (it is what clients get); the ApiDefinition names it."""
    inventory = await driver.importer.inventory()
    if not MAPPERS[inventory.kind].tyk_operator:
        raise SystemExit(f"--from-tyk-operator needs a Tyk gateway; {driver.name} is {inventory.kind}")
    live = {str(a.get("api_id")): a for a in inventory.apis}
    result = ImportResult()
    for definition in definitions:
        meta = definition["metadata"]
        source = f"tyk-operator ApiDefinition {meta['namespace']}/{meta['name']}"
        api_id = tyk_operator_api_id(definition)
        if api_id not in live:
            result.skipped.append(Skipped(source, f"its Tyk API {api_id} is not on gateway {driver.name} (not "
                                                  "reconciled by tyk-operator yet?)"))  # fmt: skip
            continue
        outcome = tyk.api_manifest(
            live[api_id], gateway=driver.name, org_id=inventory.rendering["org_id"], names=Names(),
            name=meta["name"], namespace=meta["namespace"], source=source, refs=definition.get("spec") or {},
        )  # fmt: skip
        _add(result, outcome, write=True)
    return result
