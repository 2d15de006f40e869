"""The chart ships exactly the generated CRDs; the Dockerfile keeps its invariants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from torii import crds

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("resource", crds.RESOURCES, ids=lambda r: r.kind)
def test_chart_crds_are_the_generated_ones(resource: crds.Resource) -> None:
    chart_copy = ROOT / "helm" / "torii" / "crds" / f"{resource.crd_name}.yaml"
    assert chart_copy.read_text() == crds.render(resource), "run `make crds`"


def test_dockerfile_invariants() -> None:
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(froms) >= 2, "multi-stage build"
    for image in froms:
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+", image), f"pin the base image exactly: {image}"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0", "0:0"), "the runtime stage runs as non-root"
    assert re.search(r'^ENTRYPOINT \["torii", "run"\]', text, re.M)
    runtime = text.rsplit("FROM ", 1)[1]
    assert "pip install" not in runtime or "--no-cache-dir" in runtime
    assert ".[dev]" not in text, "only runtime dependencies in the image"


def test_chart_tenancy_schema_is_the_generated_one() -> None:
    import json

    from torii.tenancy.config import chart_schema_definitions

    schema = json.loads((ROOT / "helm" / "torii" / "values.schema.json").read_text())
    assert schema["definitions"] == chart_schema_definitions(), "run `make crds`"
    assert schema["properties"]["tenancy"] == {"$ref": "#/definitions/Tenancy"}
