"""References from GatewayKey/OAuthClient to GatewayAPI objects: one set of rules for both kinds."""

from __future__ import annotations

from typing import Any

from torii.gateways.base import Credential, GatewayDriver, ObjectRef, ResolvedApi, group_id
from torii.models.common import ConditionStatus
from torii.models.gatewayapi import AuthMode, auth_modes
from torii.models.gatewaykey import GatewayKeySpec
from torii.reconcile.context import ReconcileContext
from torii.reconcile.outcome import READY, Blocked


def api_serving(obj: dict[str, Any]) -> bool:
    """Ready=True for the API's current generation, and not being deleted: a credential is only as good as its API."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == READY
        and c.get("status") == ConditionStatus.TRUE
        and c.get("observedGeneration") == meta.get("generation")
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
        raise Blocked("WaitingForAPI", f"{field}GatewayAPI {namespace}/{name} does not exist (yet)", retry=True,
                      until_api=True)  # fmt: skip
    api_gateway = (obj.get("status") or {}).get("gateway") or (obj.get("spec") or {}).get("gateway") or default_gateway
    if api_gateway != gateway:
        raise Blocked(
            "InvalidReference",
            f"{field}GatewayAPI {name} is on gateway {api_gateway!r} but this object is for gateway {gateway!r}",
            retry=False,
        )
    api_auth = (obj.get("spec") or {}).get("auth", AuthMode.KEYLESS.value)
    if auth.value not in auth_modes(obj.get("spec") or {}):
        raise Blocked(
            "InvalidReference",
            f"{field}GatewayAPI {name} has auth {api_auth!r}; this needs auth: {auth.value}",
            retry=False,
        )
    jwt = (obj.get("spec") or {}).get("jwt") or {}
    if auth == AuthMode.JWT and (jwt.get("jwksUrl") or jwt.get("secretRef")):
        raise Blocked(
            "InvalidReference",
            f"{field}GatewayAPI {name} checks tokens with its own spec.jwt key: its callers need no GatewayKey "
            "(a GatewayKey of type jwt is for APIs with spec.auth: jwt and no spec.jwt.jwksUrl/secretRef)",
            retry=False,
        )
    gateway_id = (obj.get("status") or {}).get("gatewayId")
    if not gateway_id or not api_serving(obj):
        raise Blocked(
            "WaitingForAPI",
            f"{field}GatewayAPI {name} is not served (not Ready, or being deleted)",
            retry=True,
            until_api=True,
        )
    return str(gateway_id)


async def resolve_apis(
    ctx: ReconcileContext, driver: GatewayDriver, ref: ObjectRef, spec: GatewayKeySpec
) -> tuple[tuple[ResolvedApi, ...], str | None]:
    """The APIs a key refers to, checked: same namespace, same gateway, the auth of the key's type, served."""
    objects: list[tuple[str, dict[str, Any] | None, list[str]]] = []
    gid = None
    if spec.apis is not None:
        for i, api in enumerate(spec.apis):
            if api.namespace and api.namespace != ref.namespace:
                raise Blocked(
                    "InvalidReference",
                    f"spec.apis[{i}].namespace: {api.namespace!r} is another namespace; a key may only refer to "
                    f"GatewayAPIs in its own namespace ({ref.namespace})",
                    retry=False,
                )
            objects.append((api.name, await ctx.apis.get(ref.namespace, api.name), list(api.versions)))
    else:
        assert spec.api_group is not None  # exactly one of apis/apiGroup (CRD rule)
        members = await ctx.apis.in_group(ref.namespace, spec.api_group)
        if not members:
            raise Blocked(
                "WaitingForAPI",
                f"spec.apiGroup: no GatewayAPI in {ref.namespace} has group {spec.api_group!r}",
                retry=True,
                until_api=True,
            )
        objects = [(m["metadata"]["name"], m, []) for m in members]
        gid = group_id(ctx.id_prefix, ref.namespace, spec.api_group)

    resolved = [
        ResolvedApi(
            name,
            usable_api(
                ref.namespace,
                name,
                obj,
                gateway=driver.name,
                default_gateway=ctx.gateways.default,
                auth=AuthMode(spec.type.value),
            ),
            tuple(versions),
            ((obj or {}).get("spec") or {}).get("adopt", {}).get("orgId"),
        )
        for name, obj, versions in objects
    ]
    return tuple(resolved), gid


async def supplied_credential(ctx: ReconcileContext, ref: ObjectRef, spec: GatewayKeySpec) -> Credential | None:
    """The existing key a user handed over in spec.adopt.credentialSecretRef (Tyk), None when not given."""
    selector = spec.adopt.credential_secret_ref if spec.adopt else None
    if selector is None:
        return None
    view = await ctx.secrets.get(ref.namespace, selector.name)
    if view is None or not view.data.get(selector.key):
        raise Blocked(
            "WaitingForSecret",
            f"spec.adopt.credentialSecretRef: Secret {selector.name} has no entry {selector.key!r} (yet)",
            retry=True,
        )
    return Credential(key=view.data[selector.key])
