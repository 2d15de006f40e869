"""Reconcile one GatewayKey: resolve the APIs, write the Secret FIRST, then converge the gateway.

Torii chooses every credential. It is stored in the Secret before the gateway ever sees it, so a crash at any
point leaves either no key or a key whose credential is in the Secret: never a key nobody can see, and a retry
converges the same credential (no duplicates).
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from torii.gateways.base import Credential, GatewayDriver, KeyRequest, ObjectRef, ResolvedApi, group_id
from torii.gateways.errors import GatewayError
from torii.kube import Owner
from torii.models.gatewayapi import AuthMode
from torii.models.gatewaykey import GatewayKeySpec, GatewayKeyStatus
from torii.reconcile.context import ReconcileContext
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

ANN_ROTATION = "torii.dev/rotation-generation"
ANN_REVOKE_AT = "torii.dev/previous-credential-revoke-at"
# On a Secret holding an adopted key's credential: the key's id. Tyk's update answer has no key hash, and a
# status written from a stale copy may lack it: the Secret is the durable record.
ANN_ADOPTED = "torii.dev/adopted-key-id"
# On a Secret whose credential replaced an adopted key Torii knew only by id: that id, until it is revoked (written
# with the new credential, before the gateway sees it, so a crash cannot leave the old key alive unrecorded).
ANN_PREVIOUS_ID = "torii.dev/previous-key-id"
ALPHANUM = string.ascii_letters + string.digits


# ------------------------------------------------------------------------------------------- credentials


def new_credential(gateway_type: str, client_id: str = "") -> Credential:
    """A fresh, cryptographically random credential (Otoroshi: keep `client_id` when rotating)."""
    if gateway_type == "tyk":
        return Credential(key=secrets.token_hex(24))
    return Credential(
        client_id=client_id or "".join(secrets.choice(ALPHANUM) for _ in range(16)),
        client_secret="".join(secrets.choice(ALPHANUM) for _ in range(64)),
    )


def secret_data(gateway_type: str, cred: Credential, previous: Credential | None = None) -> dict[str, str]:
    if gateway_type == "tyk":
        data = {"key": cred.key, "Authorization": cred.key}
        if previous is not None:
            data["previousKey"] = previous.key
        return data
    basic = base64.b64encode(f"{cred.client_id}:{cred.client_secret}".encode()).decode()
    data = {"clientId": cred.client_id, "clientSecret": cred.client_secret, "basicAuthHeader": f"Basic {basic}"}
    if previous is not None:
        data["previousClientSecret"] = previous.client_secret
    return data


def credentials_in(gateway_type: str, data: dict[str, str]) -> tuple[Credential | None, Credential | None]:
    """(current, previous-in-grace) from a Secret's data; None when absent or incomplete."""
    if gateway_type == "tyk":
        current = Credential(key=data["key"]) if data.get("key") else None
        previous = Credential(key=data["previousKey"]) if data.get("previousKey") else None
        return current, previous
    if not (data.get("clientId") and data.get("clientSecret")):
        return None, None
    current = Credential(client_id=data["clientId"], client_secret=data["clientSecret"])
    previous = None
    if data.get("previousClientSecret"):
        previous = Credential(client_id=data["clientId"], client_secret=data["previousClientSecret"])
    return current, previous


# -------------------------------------------------------------------------------------------- references


async def resolve_apis(
    ctx: ReconcileContext, driver: GatewayDriver, ref: ObjectRef, spec: GatewayKeySpec
) -> tuple[tuple[ResolvedApi, ...], str | None]:
    """The APIs a key refers to, checked: same namespace, same gateway, `auth: key`, served."""
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
            )
        objects = [(m["metadata"]["name"], m, []) for m in members]
        gid = group_id(ctx.id_prefix, ref.namespace, spec.api_group)

    resolved = [
        ResolvedApi(
            name,
            usable_api(
                ref.namespace, name, obj, gateway=driver.name, default_gateway=ctx.gateways.default, auth=AuthMode.KEY
            ),
            tuple(versions),
            ((obj or {}).get("spec") or {}).get("adopt", {}).get("orgId"),
        )
        for name, obj, versions in objects
    ]
    return tuple(resolved), gid


# --------------------------------------------------------------------------------------------- reconcile


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def reconcile_key(
    ctx: ReconcileContext,
    ref: ObjectRef,
    owner: Owner,
    raw_spec: dict[str, Any],
    generation: int,
    raw_status: dict[str, Any] | None,
    cause: Cause,
) -> Outcome:
    status = GatewayKeyStatus.model_validate(raw_status or {})
    if cause == Cause.DRIFT and permanently_failed_at(status, generation):
        return Outcome(status.to_wire())
    events: list[Event] = []
    try:
        spec = parse_spec(GatewayKeySpec, raw_spec)
        driver = ctx.gateways.get(spec.gateway)
        status.gateway = driver.name
        secret_name = spec.secret_name or ref.name
        status.secret_name = secret_name
        view = await ctx.owned_secret(ref, owner, secret_name)
        apis, gid = await resolve_apis(ctx, driver, ref, spec)
        template = spec.secret_template
        labels = dict(template.labels) if template else {}
        annotations = dict(template.annotations) if template else {}
        wanted_rotation = spec.rotation.generation if spec.rotation else 0
        grace = spec.rotation.grace_period_seconds if spec.rotation else 0

        current, previous = credentials_in(driver.type, view.data) if view else (None, None)
        applied_rotation = int(view.annotations.get(ANN_ROTATION, "0")) if view else wanted_rotation
        revoke_at = _parse_time(view.annotations.get(ANN_REVOKE_AT)) if view else None

        secret_state = {"exists": view is not None, "version": view.resource_version if view else ""}

        adopted_id = view.annotations.get(ANN_ADOPTED) if view else None
        pending_previous = view.annotations.get(ANN_PREVIOUS_ID) if view else None
        status.previous_key_id = status.previous_key_id or pending_previous

        async def write_secret(cred: Credential, prev: Credential | None, rotation: int, when: datetime | None) -> None:
            notes = {**annotations, ANN_ROTATION: str(rotation)}
            if when is not None:
                notes[ANN_REVOKE_AT] = _fmt(when)
            if adopted_id:  # still the adopted credential (a new one clears adopted_id first)
                notes[ANN_ADOPTED] = adopted_id
            if pending_previous:
                notes[ANN_PREVIOUS_ID] = pending_previous
            secret_state["version"] = await ctx.secrets.write(
                ref.namespace, secret_name, owner, secret_data(driver.type, cred, prev),
                labels=labels, annotations=notes, create=not secret_state["exists"],
                resource_version=str(secret_state["version"]),
            )  # fmt: skip
            secret_state["exists"] = True

        # Adoption (spec.adopt) applies until Torii has the key's credential in the Secret, or rotated away from it.
        # (Otoroshi keeps the clientId when rotating: during a grace period its stored secret is the old one.)
        adoption = spec.adopt if spec.adopt is not None and status.key_id in (None, spec.adopt.id) else None
        if status.previous_key_revoke_at:
            adoption = None
        by_id: str | None = None  # an adopted key Torii manages by its id only (Tyk hashes keys)
        rotated_from: str | None = None  # an adopted key replaced by rotation: it expires after the grace period
        lost_key_id = None
        if current is None and adoption is not None:
            supplied = await supplied_credential(ctx, ref, spec)
            recovered = await driver.adopted_credential(KeyRequest(ref, spec, apis, gid, Credential()), adoption.id,
                                                        supplied)  # fmt: skip
            if recovered is not None:
                # The existing credential goes into the Secret: from now on it is managed like one Torii issued.
                current, previous, revoke_at, applied_rotation = recovered, None, None, wanted_rotation
                adopted_id = status.key_id = adoption.id
                await write_secret(current, None, wanted_rotation, None)
                events.append(Event("Normal", "Adopted", f"existing key {adoption.id} adopted; its credential is "
                                                         f"in Secret {secret_name}"))  # fmt: skip
            elif wanted_rotation <= (status.rotation_generation or 0):
                by_id = adoption.id
                applied_rotation = wanted_rotation
            else:
                # Rotation out of a key whose credential nobody gave Torii: a new key now, the adopted one
                # keeps working for the grace period (and then expires on the gateway itself).
                current, previous, applied_rotation = new_credential(driver.type), None, wanted_rotation
                revoke_at, adopted_id = ctx.now() + timedelta(seconds=grace), None
                pending_previous = adoption.id
                await write_secret(current, None, wanted_rotation, revoke_at)
                rotated_from = adoption.id
                events.append(Event("Normal", "Rotated", f"new credential in Secret {secret_name}; adopted key "
                                                         f"{adoption.id} revoked at {_fmt(revoke_at)}"))  # fmt: skip
        elif current is None:
            # No credential yet (or the Secret lost it): choose one and store it BEFORE the gateway sees it.
            # A credential issued before (status.keyId) must not stay alive unseen: Otoroshi keeps the clientId
            # (the update replaces the secret); a Tyk key is revoked by its hash once the new one exists.
            reuse = status.key_id if driver.type == "otoroshi" and status.key_id else ""
            lost_key_id = status.key_id if driver.type == "tyk" else None
            current, adopted_id = new_credential(driver.type, client_id=reuse), None
            previous, revoke_at, applied_rotation = None, None, wanted_rotation
            await write_secret(current, None, wanted_rotation, None)
        elif wanted_rotation > applied_rotation:
            # Rotation: the new credential goes into the Secret first; the old one keeps working for `grace`.
            if previous is not None:
                # Rotated again before the last grace period ended: that older credential goes now.
                await driver.revoke_previous(KeyRequest(ref, spec, apis, gid, current), previous)
            previous, adopted_id = current, None
            current = new_credential(driver.type, client_id=current.client_id)
            revoke_at = ctx.now() + timedelta(seconds=grace)
            applied_rotation = wanted_rotation
            await write_secret(current, previous, wanted_rotation, revoke_at)
            events.append(Event("Normal", "Rotated", f"new credential in Secret {secret_name}; previous revoked at "
                                                     f"{_fmt(revoke_at)}"))  # fmt: skip
        elif view is not None and (
            labels.items() - view.labels.items() or annotations.items() - view.annotations.items()
        ):
            await write_secret(current, previous, applied_rotation, revoke_at)

        in_grace = previous is not None and revoke_at is not None and ctx.now() < revoke_at
        quota_unchanged = status.quota_fingerprint in (None, spec.quota_fingerprint)
        if by_id is not None or current is None:
            request = KeyRequest(ref, spec, apis, gid, Credential(), None, grace, quota_unchanged, key_id=by_id)
        elif driver.type == "otoroshi" and in_grace:
            assert previous is not None
            # Native rotation: clientSecret stays the old secret, nextSecret is the new one; both valid.
            request = KeyRequest(ref, spec, apis, gid, previous, current, grace, quota_unchanged)
        else:
            request = KeyRequest(ref, spec, apis, gid, current, None, grace, quota_unchanged)
        result = await driver.converge_key(request)
        if lost_key_id and lost_key_id != result.key_id:
            await driver.revoke_by_id(request, lost_key_id)
        if driver.type == "tyk" and previous is not None and in_grace and revoke_at is not None:
            # Tyk enforces the grace period itself too: the old key expires even if Torii is down then.
            expire = getattr(driver, "expire_key", None)
            if expire is not None:
                await expire(previous.key, apis[0].gateway_id, int(revoke_at.timestamp()))

        if rotated_from is not None and revoke_at is not None:
            await driver.expire_by_id(request, rotated_from, int(revoke_at.timestamp()))
            status.previous_key_id = rotated_from
        adopted_done = revoke_at is None or ctx.now() >= revoke_at
        if status.previous_key_id and previous is None and by_id is None and rotated_from is None and adopted_done:
            await driver.revoke_by_id(request, status.previous_key_id)
            pending_previous = None
            if current is not None:
                await write_secret(current, None, applied_rotation, None)
            events.append(Event("Normal", "PreviousCredentialRevoked", "the adopted key no longer works"))
            status.previous_key_id, revoke_at = None, None

        if previous is not None and current is not None and not in_grace:
            final = KeyRequest(ref, spec, apis, gid, current, None, grace, True)
            await driver.revoke_previous(final, previous)
            await write_secret(current, None, applied_rotation, None)
            events.append(Event("Normal", "PreviousCredentialRevoked", "the rotated-out credential no longer works"))
            previous, revoke_at = None, None

        status.key_id = result.key_id or status.key_id or adopted_id or (current.client_id if current else None) or None
        if by_id is not None:
            status.secret_name = None  # nothing to deliver: see the Ready message
        status.scope = result.scope
        status.api_ids = [a.gateway_id for a in apis]
        status.quota_fingerprint = spec.quota_fingerprint
        status.rotation_generation = applied_rotation
        status.previous_key_revoke_at = _fmt(revoke_at) if revoke_at else None

        wanted_reset = spec.quota_reset_generation or 0
        if wanted_reset > (status.quota_reset_generation or 0):
            await driver.reset_key_quota(request)
            events.append(Event("Normal", "QuotaReset", "live quota counters reset on the gateway"))
        status.quota_reset_generation = wanted_reset or status.quota_reset_generation
        with contextlib.suppress(GatewayError):  # quota figures are informative
            status.quota = await driver.key_quota(request)
    except Blocked as exc:
        return blocked(status, generation, exc)
    except GatewayError as exc:
        return failed(status, generation, exc, what="converge key")

    if by_id is not None and ((c := status.condition("Ready")) is None or c.status != "True"):
        events.append(Event("Normal", "Adopted", f"existing key {by_id} adopted; Tyk keeps only its hash"))
    if result.changed:
        reason = "DriftRepaired" if cause == Cause.DRIFT else ("Created" if result.created else "Updated")
        events.insert(
            0, Event("Normal", reason, f"key {status.key_id or ''} {reason.lower()} on gateway {driver.name}")
        )
    names = ", ".join(a.name for a in apis)
    if by_id is not None:
        message = (
            f"adopted key {by_id} active on gateway {driver.name} for {names}; Tyk stores only a hash of it, so "
            "Torii cannot put it in a Secret: its clients keep using it. Set spec.adopt.credentialSecretRef to "
            "deliver it, or spec.rotation.generation to issue a new key"
        )
        ready(status, generation, True, "Active", message)
    else:
        ready(status, generation, True, "Active", f"key active on gateway {driver.name} for {names}; "
                                                  f"credential in Secret {status.secret_name}")  # fmt: skip
    return Outcome(status.to_wire(), events)


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


async def delete_key(
    ctx: ReconcileContext,
    ref: ObjectRef,
    owner: Owner,
    raw_spec: dict[str, Any],
    generation: int,
    raw_status: dict[str, Any] | None,
) -> Outcome:
    """Revoke the key on the gateway. The Secret goes with the GatewayKey (ownerReference)."""
    status = GatewayKeyStatus.model_validate(raw_status or {})

    async def revoke(driver: GatewayDriver) -> str:
        view = await ctx.secrets.get(ref.namespace, raw_spec.get("secretName") or ref.name)
        current, previous = credentials_in(driver.type, view.data) if view and view.owned_by(owner) else (None, None)
        adopted_id = (raw_spec.get("adopt") or {}).get("id")
        by_id = adopted_id if current is None and adopted_id and status.key_id == adopted_id else None
        if current is None and by_id is None:
            return "no credential was issued: nothing to revoke"
        # Ids are deterministic: even when a crash kept them out of status, the spec names them.
        api_ids = status.api_ids or [
            ObjectRef(ref.namespace, a["name"]).gateway_id(ctx.id_prefix) for a in raw_spec.get("apis") or []
        ]
        # Tyk deletes a key only in the org it is told: an adopted API's org, read while its object still exists.
        orgs = [((await ctx.apis.get(ref.namespace, a["name"])) or {}).get("spec", {}).get("adopt", {}).get("orgId")
                for a in raw_spec.get("apis") or []]  # fmt: skip
        org = next((o for o in orgs if o), None)
        apis = tuple(ResolvedApi(i, i, (), org) for i in api_ids)
        gid = status.scope.split("/", 1)[1] if status.scope and status.scope.startswith("groups/") else None
        if gid is None and raw_spec.get("apiGroup"):
            gid = group_id(ctx.id_prefix, ref.namespace, raw_spec["apiGroup"])
        if not apis and gid is None:
            return "the key referred to no API: nothing to revoke"
        try:
            spec = GatewayKeySpec.model_validate(raw_spec)
        except ValidationError:
            spec = GatewayKeySpec.model_construct()  # deleting an invalid object: only the ids above matter
        request = KeyRequest(ref, spec, apis, gid, current or Credential(), key_id=by_id)
        deleted = await driver.delete_key(request)
        if previous is not None and driver.type == "tyk":
            await driver.revoke_previous(request, previous)
        if status.previous_key_id:
            await driver.revoke_by_id(request, status.previous_key_id)  # an adopted key still in its grace period
        return f"key revoked on gateway {driver.name}" if deleted else f"key already gone from gateway {driver.name}"

    return await ctx.cleanup(raw_spec, status, generation, revoke)
