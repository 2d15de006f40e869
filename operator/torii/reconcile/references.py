"""References from GatewayKey/OAuthClient to GatewayAPI objects: one set of rules for both kinds."""

from __future__ import annotations

from typing import Any

from torii.models.gatewayapi import AuthMode
from torii.reconcile.outcome import Blocked


def api_serving(obj: dict[str, Any]) -> bool:
    """Ready=True for the API's current generation, and not being deleted: a credential is only as good as its API."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" and c.get("observedGeneration") == meta.get("generation")
        for c in (obj.get("status") or {}).get("conditions", [])
    )


def usable_api(
    namespace: str,
    name: str,
    obj: dict[str, Any] | None,
    *,
    gateway: str,
    default_gateway: str | None,
    auth: AuthMode,
    field: str = "",
) -> str:
    """The gateway id of a referenced GatewayAPI, once it can carry a credential; Blocked says what is missing.

    `field` prefixes messages with the spec field that holds the reference (e.g. `spec.api: `)."""
    if obj is None:
        raise Blocked("WaitingForAPI", f"{field}GatewayAPI {namespace}/{name} does not exist (yet)", retry=True)
    api_gateway = (obj.get("status") or {}).get("gateway") or (obj.get("spec") or {}).get("gateway") or default_gateway
    if api_gateway != gateway:
        raise Blocked(
            "InvalidReference",
            f"{field}GatewayAPI {name} is on gateway {api_gateway!r} but this object is for gateway {gateway!r}",
            retry=False,
        )
    api_auth = (obj.get("spec") or {}).get("auth", AuthMode.KEYLESS.value)
    if api_auth != auth.value:
        raise Blocked(
            "InvalidReference",
            f"{field}GatewayAPI {name} has auth {api_auth!r}; this needs auth: {auth.value}",
            retry=False,
        )
    gateway_id = (obj.get("status") or {}).get("gatewayId")
    if not gateway_id or not api_serving(obj):
        raise Blocked(
            "WaitingForAPI", f"{field}GatewayAPI {name} is not served (not Ready, or being deleted)", retry=True
        )
    return str(gateway_id)
