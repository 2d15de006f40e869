"""The gateway-neutral driver protocol. Handlers and reconcilers only ever talk to this."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from torii.models.gatewayapi import ApiHealth, GatewayAPISpec


@dataclass(frozen=True)
class ObjectRef:
    """A namespaced Kubernetes object, and the deterministic gateway id derived from it."""

    namespace: str
    name: str

    def gateway_id(self, prefix: str) -> str:
        # Namespaces cannot contain dots, so "<prefix>.<namespace>.<name>" is unambiguous; it has no "/"
        # (Tyk refuses it in api_id). Long names are shortened with a hash so ids stay under 200 chars.
        ident = f"{prefix}.{self.namespace}.{self.name}"
        if len(ident) > 200:
            digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
            ident = f"{ident[:180]}.{digest}"
        return ident

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ConvergeResult:
    """What converging one object did."""

    gateway_id: str
    changed: bool  # a gateway write happened
    created: bool = False  # the object did not exist on the gateway before


class GatewayDriver(Protocol):
    """One gateway connection. Implementations: `TykDriver`, `OtoroshiDriver`."""

    name: str
    type: str

    async def check(self) -> str:
        """Connect and authenticate; return a short description (version, node) or raise a GatewayError."""
        ...

    async def converge_api(self, ref: ObjectRef, spec: GatewayAPISpec) -> ConvergeResult:
        """Make the gateway serve `spec`; no write when it already does. Returns once it serves it."""
        ...

    async def delete_api(self, ref: ObjectRef) -> bool:
        """Remove the API; True if something was deleted, False if it was already gone."""
        ...

    async def api_health(self, ref: ObjectRef) -> ApiHealth | None:
        """Gateway health figures for the API, or None where the gateway has none."""
        ...

    async def list_api_ids(self) -> set[str]:
        """Ids of the APIs on the gateway that this operator owns."""
        ...

    @property
    def admin_calls(self) -> int: ...

    async def aclose(self) -> None: ...


def is_subset(desired: Any, actual: Any) -> bool:
    """True when every value in `desired` is present and equal in `actual` (gateways add their defaults)."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(key in actual and is_subset(value, actual[key]) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
    if isinstance(desired, float | int) and isinstance(actual, float | int) and not isinstance(desired, bool):
        return float(desired) == float(actual)
    return bool(desired == actual)


def fingerprint(desired: dict[str, Any]) -> str:
    """A stable hash of what Torii sends, stored in the gateway object to recognise "already in sync"."""
    return hashlib.sha256(json.dumps(desired, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def pick(data: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """The values at dotted `paths` (missing ones as None), for comparing the fields that matter most."""
    out: dict[str, Any] = {}
    for path in paths:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[path] = value
    return out


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` merged over `base`: nested dicts merge, everything else is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
