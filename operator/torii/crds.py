"""CRDs generated from the pydantic models: the checked-in YAML in `crds/` is this module's output.

`python -m torii crds --write crds/` regenerates them; a test fails when the checked-in files drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from torii.models.common import GROUP, VERSION
from torii.models.gatewayapi import GatewayAPISpec, GatewayAPIStatus
from torii.models.gatewaykey import GatewayKeySpec, GatewayKeyStatus
from torii.models.oauthclient import OAuthClientSpec, OAuthClientStatus

# JSON-schema keywords a structural CRD schema may carry (everything else pydantic emits is dropped).
_KEEP = (
    "type",
    "description",
    "enum",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
)

READY_COLUMN = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}
REASON_COLUMN = {
    "name": "Reason",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
    "priority": 1,
}
AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@dataclass(frozen=True)
class Resource:
    """One custom resource kind served by Torii."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: tuple[dict[str, Any], ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


GATEWAY_API = Resource(
    kind="GatewayAPI",
    plural="gatewayapis",
    short_names=("gwapi",),
    spec=GatewayAPISpec,
    status=GatewayAPIStatus,
    description="An API published on a gateway (a Tyk API definition or an Otoroshi service). "
    "Torii keeps the gateway in step with this object and reports in `status.conditions` whether "
    "the gateway serves it.",
    columns=(
        {"name": "Gateway", "type": "string", "jsonPath": ".status.gateway"},
        {"name": "Listen Path", "type": "string", "jsonPath": ".spec.listenPath"},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)

GATEWAY_KEY = Resource(
    kind="GatewayKey",
    plural="gatewaykeys",
    short_names=("gwkey",),
    spec=GatewayKeySpec,
    status=GatewayKeyStatus,
    description="An access key for GatewayAPIs. Torii chooses the credential, stores it in a Secret (mount it in "
    "your application), then creates the key on the gateway.",
    columns=(
        {"name": "Gateway", "type": "string", "jsonPath": ".status.gateway"},
        {"name": "Secret", "type": "string", "jsonPath": ".status.secretName"},
        {"name": "Key ID", "type": "string", "jsonPath": ".status.keyId", "priority": 1},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)

OAUTH_CLIENT = Resource(
    kind="OAuthClient",
    plural="oauthclients",
    short_names=("gwoauth",),
    spec=OAuthClientSpec,
    status=OAuthClientStatus,
    description="An OAuth client of an OAuth-protected GatewayAPI (Tyk). Its client id and secret are delivered in "
    "a Secret.",
    columns=(
        {"name": "API", "type": "string", "jsonPath": ".spec.api"},
        {"name": "Client ID", "type": "string", "jsonPath": ".status.clientId"},
        {"name": "Secret", "type": "string", "jsonPath": ".status.secretName", "priority": 1},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)

RESOURCES: tuple[Resource, ...] = (GATEWAY_API, GATEWAY_KEY, OAUTH_CLIENT)


def _structural(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Turn pydantic's JSON schema into a Kubernetes structural schema (no $ref/anyOf, no defaults)."""
    if "$ref" in schema:
        target = defs[schema["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        if "x-kubernetes-validations" in target and "x-kubernetes-validations" in schema:
            merged["x-kubernetes-validations"] = target["x-kubernetes-validations"] + schema["x-kubernetes-validations"]
        return _structural(merged, defs)
    for combinator in ("anyOf", "allOf"):
        if combinator in schema:
            options = [o for o in schema[combinator] if o.get("type") != "null"]
            if len(options) != 1:
                raise ValueError(f"cannot express {combinator} with {len(options)} options in a CRD schema")
            rest = {k: v for k, v in schema.items() if k != combinator}
            return _structural({**options[0], **rest}, defs)

    out = {k: schema[k] for k in _KEEP if k in schema}
    if "properties" in schema:
        out["type"] = "object"
        out["properties"] = {name: _structural(sub, defs) for name, sub in schema["properties"].items()}
        if schema.get("required"):
            out["required"] = list(schema["required"])
    if "items" in schema:
        out["items"] = _structural(schema["items"], defs)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and not out.get("x-kubernetes-preserve-unknown-fields"):
        if extra:  # dict[str, X]
            out["additionalProperties"] = _structural(extra, defs)
        else:  # dict[str, Any]
            out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out["type"] = "object"
        out.pop("additionalProperties", None)
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(raw, raw.get("$defs", {}))


def crd(resource: Resource) -> dict[str, Any]:
    spec_schema = model_schema(resource.spec)
    status_schema = model_schema(resource.status)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.crd_name,
            "labels": {"app.kubernetes.io/name": "torii", "app.kubernetes.io/part-of": "torii"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                "shortNames": list(resource.short_names),
                "categories": ["torii"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(resource.columns),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": resource.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "torii.dev/v1alpha1"},
                                "kind": {"type": "string", "description": resource.kind},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render(resource: Resource) -> str:
    header = "# Generated by `torii crds` from the pydantic models in operator/torii/models. Do not edit.\n"
    return header + yaml.safe_dump(crd(resource), sort_keys=False, width=120)


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for resource in RESOURCES:
        path = directory / f"{resource.crd_name}.yaml"
        path.write_text(render(resource))
        written.append(path)
    return written
