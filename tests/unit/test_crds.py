"""The checked-in CRDs are exactly what the models generate, and every field explains itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from torii import crds

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


@pytest.mark.parametrize("resource", crds.RESOURCES, ids=lambda r: r.kind)
def test_checked_in_crd_matches_models(resource: crds.Resource) -> None:
    path = CRD_DIR / f"{resource.crd_name}.yaml"
    assert path.exists(), f"{path} missing: run `torii crds --write crds/`"
    assert path.read_text() == crds.render(resource), f"{path} is stale: run `torii crds --write crds/`"


def walk(schema: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, sub in schema.get("properties", {}).items():
        where = f"{path}.{name}"
        if name not in ("apiVersion", "kind", "metadata") and not sub.get("description"):
            missing.append(where)
        missing += walk(sub, where)
    if "items" in schema:
        missing += walk(schema["items"], f"{path}[]")
    return missing


@pytest.mark.parametrize("resource", crds.RESOURCES, ids=lambda r: r.kind)
def test_every_field_has_a_description(resource: crds.Resource) -> None:
    schema = crds.crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert walk(schema, resource.kind) == []


@pytest.mark.parametrize("resource", crds.RESOURCES, ids=lambda r: r.kind)
def test_crd_has_no_server_side_defaults(resource: crds.Resource) -> None:
    # Defaults written by the apiserver show up as diffs in GitOps tools: defaults live in the models.
    def keywords(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for v in node.values() for k in keywords(v)}
        if isinstance(node, list):
            return {k for v in node for k in keywords(v)}
        return set()

    schema = crds.crd(resource)["spec"]["versions"][0]["schema"]
    assert "default" not in keywords(schema)


def test_crd_names_and_columns() -> None:
    crd = crds.crd(crds.GATEWAY_API)
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["gwapi"] and names["categories"] == ["torii"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns[:3] == ["Gateway", "Listen Path", "Ready"] and "Age" in columns
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}
