"""Reconcile one OAuthClient: Torii chooses client id and secret, stores them in the Secret, then the gateway."""

from __future__ import annotations

from torii.gateways.base import Credential, CredentialKind, GatewayDriver, OAuthClientRequest, OAuthRole, ObjectRef
from torii.gateways.errors import PolicyViolation
from torii.kube import Owner, SecretView
from torii.models.gatewayapi import AuthMode
from torii.models.oauthclient import OAuthClientSpec, OAuthClientStatus
from torii.reconcile.context import ReconcileContext
from torii.reconcile.credentials import digest, new_client, recognised, template_annotations
from torii.reconcile.lifecycle import Subject, deleter, reconciler
from torii.reconcile.outcome import (
    Blocked,
    Cause,
    Event,
    Outcome,
    parse_spec,
    ready,
)
from torii.reconcile.references import usable_api
from torii.tenancy.rules import Connection, check_oauth_client, may_read_adopted_credentials


def secret_data(client_id: str, client_secret: str, redirect_uri: str) -> dict[str, str]:
    return {"clientId": client_id, "clientSecret": client_secret, "redirectUri": redirect_uri}


async def settle_client(
    ctx: ReconcileContext, ref: ObjectRef, owner: Owner, spec: OAuthClientSpec, status: OAuthClientStatus,
    view: SecretView | None, conn: Connection, api_id: str, oauth: OAuthRole,
) -> tuple[Credential, list[Event]]:  # fmt: skip
    """The client's id and secret: the Secret's when Torii recognises them (status record), the adopted
    client's, or new ones (recorded, then stored, before the gateway sees them)."""
    data = view.data if view else {}
    held = Credential(client_id=data["clientId"], client_secret=data["clientSecret"]) if (
        data.get("clientId") and data.get("clientSecret")) else None  # fmt: skip
    if held is not None and recognised(CredentialKind.CLIENT, owner.uid, held, status.credential_digest):
        cred: Credential = held
        if data.get("redirectUri") == spec.redirect_uri:
            return cred, []
    elif spec.adopt is not None and status.client_id in (None, spec.adopt.client_id):
        # An existing client: Tyk returns its secret, which goes into the Secret unchanged (a tenancy grant).
        if not may_read_adopted_credentials(conn, ref.namespace):
            raise PolicyViolation(
                f"refused by the tenancy policy of gateway {conn.name}: spec.adopt: adopting an OAuth client "
                "means reading its secret from the gateway (tenancy.adoption.credentials)"
            )
        secret = await oauth.adopted_oauth_client(ref, api_id, spec.adopt.client_id)
        cred = Credential(client_id=spec.adopt.client_id, client_secret=secret)
    else:
        # New, or the Secret holds what Torii did not issue: the client keeps its id (status), a new secret.
        cred = new_client(status.client_id or "")
        status.credential_digest = digest(owner.uid, cred)
        await ctx.record({"credentialDigest": status.credential_digest})
    template = spec.secret_template
    await ctx.secrets.write(
        ref.namespace, spec.secret_name or ref.name, owner, secret_data(cred.client_id, cred.client_secret,
                                                                        spec.redirect_uri),
        labels=dict(template.labels) if template else {}, annotations=template_annotations(template),
        create=view is None, resource_version=view.resource_version if view else "",
    )  # fmt: skip
    replaced = held is not None and held != cred
    events = [Event("Warning", "CredentialReplaced", "the Secret held client credentials Torii did not issue; "
                                                     "new ones were issued")] if replaced else []  # fmt: skip
    return cred, events


async def converge(ctx: ReconcileContext, obj: Subject[OAuthClientStatus]) -> Outcome:
    status, ref, owner, generation = obj.status, obj.ref, obj.owner, obj.generation
    spec = parse_spec(OAuthClientSpec, obj.raw_spec)
    driver = ctx.gateways.get(spec.gateway)
    status.gateway = driver.name
    oauth = driver.oauth
    if oauth is None:
        raise Blocked("Unsupported", f"gateway {driver.name} ({driver.type}) has no OAuth clients; use Tyk",
                      retry=False)  # fmt: skip
    conn = ctx.connection(driver)
    check_oauth_client(conn, ref.namespace, spec)
    secret_name = spec.secret_name or ref.name
    status.secret_name = secret_name
    view = await ctx.owned_secret(ref, owner, secret_name)
    api_id = usable_api(
        ref.namespace, spec.api, await ctx.apis.get(ref.namespace, spec.api), gateway=driver.name,
        default_gateway=ctx.gateways.default, auth=AuthMode.OAUTH2, field="spec.api: ",
    )  # fmt: skip
    cred, events = await settle_client(ctx, ref, owner, spec, status, view, conn, api_id, oauth)
    request = OAuthClientRequest(
        ref, api_id, cred.client_id, cred.client_secret, spec.redirect_uri, spec.policy, spec.description,
        spec.metadata, adopting=spec.adopt is not None,
    )  # fmt: skip
    changed = await oauth.converge_oauth_client(request)
    status.client_id, status.api_id, status.credential_digest = cred.client_id, api_id, digest(owner.uid, cred)
    if changed:
        events.append(Event("Normal", "DriftRepaired" if obj.cause == Cause.DRIFT else "Created",
                            f"OAuth client {cred.client_id} on gateway {driver.name}"))  # fmt: skip
    message = f"OAuth client {cred.client_id} of {spec.api} active on gateway {driver.name}"
    ready(status, generation, True, "Active", message)
    return Outcome(status.to_wire(), events)


async def remove(ctx: ReconcileContext, obj: Subject[OAuthClientStatus], driver: GatewayDriver) -> str:
    status = obj.status
    if not (status.client_id and status.api_id) or driver.oauth is None:
        return "no client was created: nothing to delete"
    adopting = (obj.raw_spec.get("adopt") or {}).get("clientId") == status.client_id
    request = OAuthClientRequest(obj.ref, status.api_id, status.client_id, "", "", None, "", {}, adopting=adopting)
    gone = "deleted" if await driver.oauth.delete_oauth_client(request) else "already gone"
    return f"OAuth client {gone} on gateway {driver.name}"


reconcile_oauth_client = reconciler(OAuthClientStatus, converge, what="converge OAuth client")
delete_oauth_client = deleter(OAuthClientStatus, remove)
