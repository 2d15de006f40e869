"""Building blocks shared by Torii's custom resources.

Spec models are the single source of truth for the CRDs (see `torii.crds`): field descriptions become
`kubectl explain` text, and CEL rules attached with `cel()` become `x-kubernetes-validations`. The CRD carries
no `default:` values on purpose (server-side defaulting makes GitOps tools report diffs they did not cause);
defaults live here and are applied when the operator parses an object.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "torii.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# A DNS-1123 label / subdomain, as Kubernetes names are.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry. `message` must name the field the user has to fix."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def immutable_once_set(field: str, hint: str = "") -> dict[str, str]:
    """CEL: an optional field may not be added, removed or changed after creation."""
    return cel(
        f"has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        f"spec.{field} is immutable{hint}",
        field_path=f".{field}",
    )


def adoption_immutable(id_field: str, what: str) -> dict[str, str]:
    """CEL: spec.adopt may not be added or removed, nor its id changed (the adopted object is the resource's
    identity); its other fields (orgId, credentialSecretRef) stay editable, to correct them."""
    return cel(
        f"has(self.adopt) == has(oldSelf.adopt) && (!has(self.adopt) || self.adopt.{id_field} == "
        f"oldSelf.adopt.{id_field})",
        f"spec.adopt is immutable (spec.adopt.{id_field} and whether it is set): the adopted {what} is this "
        "resource's identity",
        field_path=".adopt",
    )


def gateway_field() -> Any:
    """`spec.gateway` of every kind: the name of one of the operator's gateway connections."""
    return Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description="Name of a gateway connection configured for the operator (see `torii check`). "
        "Default: the operator's default gateway. Immutable.",
    )


def secret_name_field(what: str) -> Any:
    """`spec.secretName` of the kinds that deliver a credential."""
    return Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description=f"Secret that receives {what} (default: this object's name). Immutable.",
    )


def deletion_policy_field(what: str) -> Any:
    return Field(
        default=DeletionPolicy.DELETE,
        description=f"`Delete` (default) removes {what} from the gateway when this object is deleted; `Orphan` "
        "leaves it (and releases the object at once, even while the gateway is unreachable).",
    )


# A gateway object id Torii may adopt: Tyk api_id / key hash, Otoroshi service id / clientId (no "/": Tyk
# refuses it in api_id, and both gateways put ids in URL paths).
GATEWAY_ID_PATTERN = r"^[A-Za-z0-9._~:@+=-]+$"


def adopt_id_field(what: str) -> Any:
    return Field(
        min_length=1,
        max_length=253,
        pattern=GATEWAY_ID_PATTERN,
        description=f"The id of the existing {what} on the gateway (as `torii import` writes it).",
        json_schema_extra=validations(
            cel("self != '.' && self != '..'", "spec.adopt: an id cannot be '.' or '..' (it names an admin URL path)")
        ),
    )


def gateway_metadata_field(what: str) -> Any:
    """`spec.metadata` of keys and OAuth clients: `torii*` keys are Torii's owner record on the gateway."""
    return Field(
        default_factory=dict,
        description=f"Metadata on the gateway's {what} (keys starting with `torii` are Torii's).",
        json_schema_extra=validations(
            cel("self.all(k, !k.startsWith('torii'))", "spec.metadata: keys starting with torii are Torii's own")
        ),
    )


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class CamelModel(BaseModel):
    """camelCase on the wire (Kubernetes style), snake_case in Python; unknown fields are refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(CamelModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(description="Type of the condition, e.g. `Ready`.")
    status: ConditionStatus = Field(description="`True`, `False` or `Unknown`.")
    reason: str = Field(description="A CamelCase machine-readable reason; see the README's troubleshooting table.")
    message: str = Field(default="", description="What happened and, when it failed, what to fix.")
    observed_generation: int | None = Field(
        default=None, description="The `metadata.generation` this condition was computed for."
    )
    last_transition_time: str = Field(
        default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        description="When the status last changed (RFC 3339).",
    )


class StatusBase(CamelModel):
    """Fields every Torii status has."""

    model_config = ConfigDict(extra="ignore")  # tolerate fields written by older versions

    observed_generation: int | None = Field(
        default=None, description="The `metadata.generation` the operator last reconciled."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Standard conditions; `Ready` says whether the gateway serves it."
    )

    def to_wire(self) -> dict[str, Any]:
        """For a merge patch: top-level fields that are now empty are sent as null, so they are removed."""
        wire = super().to_wire()
        for name, info in type(self).model_fields.items():
            alias = info.alias or name
            if getattr(self, name) is None:
                wire[alias] = None
        return wire

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)

    def set_condition(self, new: Condition) -> None:
        """Insert or replace; keep `lastTransitionTime` when the status did not change."""
        old = self.condition(new.type)
        if old is not None and old.status == new.status:
            new.last_transition_time = old.last_transition_time
        self.conditions = [c for c in self.conditions if c.type != new.type] + [new]


class SecretKeySelector(CamelModel):
    """One entry of a Secret in this namespace."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="Name of the Secret.")
    key: str = Field(default="key", max_length=253, description="Entry of the Secret. Default `key`.")


class SecretTemplate(CamelModel):
    """Extra metadata for a generated Secret."""

    labels: dict[str, str] = Field(default_factory=dict, description="Labels to add to the generated Secret.")
    annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations to add to the generated Secret (not `torii.dev/` ones: those are Torii's).",
        json_schema_extra=validations(
            cel(
                "self.all(k, !k.startsWith('torii.dev/'))",
                "spec.secretTemplate.annotations: torii.dev/ annotations are Torii's own and cannot be set",
            )
        ),
    )


# An escape hatch is copied into every gateway definition and every list of them: a megabyte there costs the
# gateway and each of its reloads. Far above any real definition (seed 004's full definition is about 4 KiB).
ESCAPE_HATCH_MAX_BYTES = 256 * 1024


def bounded_escape_hatch(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and (size := len(json.dumps(value))) > ESCAPE_HATCH_MAX_BYTES:
        raise ValueError(f"is {size // 1024} KiB of JSON; at most {ESCAPE_HATCH_MAX_BYTES // 1024} KiB is accepted")
    return value
