"""Reconcile one OAuthClient: Torii chooses client id and secret, stores them in the Secret, then the gateway."""

from __future__ import annotations

from typing import Any

from torii.gateways.base import GatewayDriver, OAuthClientRequest, ObjectRef
from torii.gateways.errors import GatewayError
from torii.kube import Owner
from torii.models.gatewayapi import AuthMode
from torii.models.oauthclient import OAuthClientSpec, OAuthClientStatus
from torii.reconcile.context import ReconcileContext
from torii.reconcile.gatewaykey import new_credential
from torii.reconcile.outcome import (
    Blocked,
    Cause,
    Event,
    Outcome,
    blocked,
    failed,
    parse_spec,
    permanently_failed_at,
    ready,
)
from torii.reconcile.references import usable_api


def secret_data(client_id: str, client_secret: str, redirect_uri: str) -> dict[str, str]:
    return {"clientId": client_id, "clientSecret": client_secret, "redirectUri": redirect_uri}


async def reconcile_oauth_client(
    ctx: ReconcileContext,
    ref: ObjectRef,
    owner: Owner,
    raw_spec: dict[str, Any],
    generation: int,
    raw_status: dict[str, Any] | None,
    cause: Cause,
) -> Outcome:
    status = OAuthClientStatus.model_validate(raw_status or {})
    if cause == Cause.DRIFT and permanently_failed_at(status, generation):
        return Outcome(status.to_wire())
    try:
        spec = parse_spec(OAuthClientSpec, raw_spec)
        driver = ctx.gateways.get(spec.gateway)
        status.gateway = driver.name
        if driver.type != "tyk":
            raise Blocked(
                "Unsupported", f"gateway {driver.name} ({driver.type}) has no OAuth clients; use Tyk", retry=False
            )
        secret_name = spec.secret_name or ref.name
        status.secret_name = secret_name
        view = await ctx.owned_secret(ref, owner, secret_name)
        api_id = usable_api(
            ref.namespace, spec.api, await ctx.apis.get(ref.namespace, spec.api), gateway=driver.name,
            default_gateway=ctx.gateways.default, auth=AuthMode.OAUTH2, field="spec.api: ",
        )  # fmt: skip
        client_id = view.data.get("clientId") if view else None
        client_secret = view.data.get("clientSecret") if view else None
        if not (client_id and client_secret) or view is None or view.data.get("redirectUri") != spec.redirect_uri:
            if not (client_id and client_secret) and spec.adopt is not None:
                # An existing client: Tyk returns its secret, which goes into the Secret unchanged.
                client_id = spec.adopt.client_id
                client_secret = await driver.adopted_oauth_client(api_id, client_id)
            elif not (client_id and client_secret):
                cred = new_credential("otoroshi")  # 16-char id, 64-char secret: the same shape suits OAuth
                client_id, client_secret = cred.client_id, cred.client_secret
            template = spec.secret_template
            await ctx.secrets.write(
                ref.namespace, secret_name, owner, secret_data(client_id, client_secret, spec.redirect_uri),
                labels=dict(template.labels) if template else {},
                annotations=dict(template.annotations) if template else {},
                create=view is None,
                resource_version=view.resource_version if view else "",
            )  # fmt: skip
        request = OAuthClientRequest(
            ref, api_id, client_id, client_secret, spec.redirect_uri, spec.policy, spec.description, spec.metadata
        )
        changed = await driver.converge_oauth_client(request)
    except Blocked as exc:
        return blocked(status, generation, exc)
    except GatewayError as exc:
        return failed(status, generation, exc, what="converge OAuth client")
    status.client_id = client_id
    status.api_id = api_id
    events = []
    if changed:
        events.append(Event("Normal", "DriftRepaired" if cause == Cause.DRIFT else "Created",
                            f"OAuth client {client_id} on gateway {driver.name}"))  # fmt: skip
    ready(status, generation, True, "Active", f"OAuth client {client_id} of {spec.api} active on gateway {driver.name}")
    return Outcome(status.to_wire(), events)


async def delete_oauth_client(
    ctx: ReconcileContext,
    ref: ObjectRef,
    owner: Owner,
    raw_spec: dict[str, Any],
    generation: int,
    raw_status: dict[str, Any] | None,
) -> Outcome:
    status = OAuthClientStatus.model_validate(raw_status or {})

    async def remove(driver: GatewayDriver) -> str:
        if not (status.client_id and status.api_id):
            return "no client was created: nothing to delete"
        request = OAuthClientRequest(ref, status.api_id, status.client_id, "", "", None, "", {})
        gone = "deleted" if await driver.delete_oauth_client(request) else "already gone"
        return f"OAuth client {gone} on gateway {driver.name}"

    return await ctx.cleanup(raw_spec, status, generation, remove)
