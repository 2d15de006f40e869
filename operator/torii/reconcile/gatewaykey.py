"""Reconcile one GatewayKey: resolve the APIs, write the Secret FIRST, then converge the gateway.

Torii chooses every credential. It is stored in the Secret before the gateway ever sees it, so a crash at any
point leaves either no key or a key whose credential is in the Secret: never a key nobody can see, and a retry
converges the same credential (no duplicates).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pydantic import ValidationError

from torii.gateways.base import (
    Credential,
    CredentialKind,
    GatewayDriver,
    KeyRequest,
    KeyResult,
    ObjectRef,
    ResolvedApi,
    group_id,
)
from torii.gateways.errors import GatewayError
from torii.models.common import ConditionStatus
from torii.models.gatewaykey import GatewayKeySpec, GatewayKeyStatus, KeyType
from torii.reconcile.context import ReconcileContext
from torii.reconcile.credential_plan import (
    AdoptStep,
    GraceAction,
    GraceSituation,
    Situation,
    Step,
    after_adoption,
    decide,
    grace_actions,
)
from torii.reconcile.credentials import credentials_in, recognised
from torii.reconcile.key_state import KeyWork, fmt, issue, metadata_drifted, read_credentials, record, write_secret
from torii.reconcile.lifecycle import Subject, deleter, reconciler
from torii.reconcile.outcome import (
    READY,
    Cause,
    Event,
    Outcome,
    parse_spec,
    ready,
)
from torii.reconcile.references import resolve_apis, supplied_credential
from torii.tenancy.rules import Connection, check_key, may_read_adopted_credentials

# --------------------------------------------------------------------------------------------- reconcile


@dataclass
class CredentialPlan:
    """How the gateway is addressed for this reconcile, and what must go afterwards."""

    by_id: str | None = None  # an adopted key Torii manages by its id only (Tyk hashes keys)
    rotated_from: str | None = None  # an adopted key replaced by rotation: it expires after the grace period
    lost_key_id: str | None = None  # a key whose credential Torii no longer has: revoked once the new one works
    adopting: bool = False


async def settle_credential(
    ctx: ReconcileContext, work: KeyWork, apis: tuple[ResolvedApi, ...], gid: str | None, conn: Connection,
    unrecognised: bool,
) -> CredentialPlan:  # fmt: skip
    """Decide the credential (`credential_plan.decide`) and store it; the gateway comes after."""
    spec, status = work.spec, work.status
    # Adoption applies until Torii has the key's credential in the Secret, or rotated away from it. (A CLIENT
    # keeps its id when rotating: during a grace period its stored secret is the old one.)
    adoption = spec.adopt if spec.adopt is not None and status.key_id in (None, spec.adopt.id) else None
    if status.previous_key_revoke_at:
        adoption = None
    plan = CredentialPlan(adopting=adoption is not None)
    step = decide(Situation(
        has_current=work.current is not None, adopting=adoption is not None, wanted_rotation=work.wanted_rotation,
        applied_rotation=work.applied_rotation, metadata_drifted=metadata_drifted(work),
    ))  # fmt: skip
    if step == Step.ADOPT and adoption is not None:
        await adopt(ctx, work, plan, KeyRequest(work.ref, spec, apis, gid, Credential(), adopting=True), adoption.id,
                    may_read_adopted_credentials(conn, work.ref.namespace))  # fmt: skip
    elif step == Step.ISSUE:
        await reissue(ctx, work, plan, unrecognised)
    elif step == Step.ROTATE:
        await rotate(ctx, work, KeyRequest(work.ref, spec, apis, gid, work.current or Credential()))
    elif step == Step.REWRITE:
        await write_secret(ctx, work)
    return plan


async def adopt(ctx: ReconcileContext, work: KeyWork, plan: CredentialPlan, request: KeyRequest, key_id: str,
                read_allowed: bool) -> None:  # fmt: skip
    supplied = await supplied_credential(ctx, work.ref, work.spec)
    recovered = await work.driver.keys.adopted_credential(request, key_id, supplied, read_allowed=read_allowed)
    step = after_adoption(recovered=recovered is not None, wanted_rotation=work.wanted_rotation,
                          recorded_rotation=work.status.rotation_generation or 0)  # fmt: skip
    if step == AdoptStep.STORE and recovered is not None:
        # The existing credential goes into the Secret: from now on it is managed like one Torii issued.
        work.applied_rotation = work.wanted_rotation
        await issue(ctx, work, recovered, key_id=key_id, rotation_generation=work.wanted_rotation)
        work.events.append(Event("Normal", "Adopted", f"existing key {key_id} adopted; its credential is in "
                                                      f"Secret {work.secret_name}"))  # fmt: skip
    elif step == AdoptStep.BY_ID:
        plan.by_id, work.applied_rotation = key_id, work.wanted_rotation
    else:
        # Rotation out of a key whose credential nobody gave Torii: a new key now, the adopted one keeps working
        # for the grace period (and then expires on the gateway itself).
        work.applied_rotation, work.revoke_at = work.wanted_rotation, ctx.now() + timedelta(seconds=work.grace)
        await issue(ctx, work, work.new_credential(), rotation_generation=work.wanted_rotation,
                    previous_key_id=key_id, previous_key_revoke_at=fmt(work.revoke_at))  # fmt: skip
        plan.rotated_from = key_id
        message = f"new credential in Secret {work.secret_name}; adopted key {key_id} revoked at "
        work.events.append(Event("Normal", "Rotated", message + fmt(work.revoke_at)))


async def reissue(ctx: ReconcileContext, work: KeyWork, plan: CredentialPlan, unrecognised: bool) -> None:
    """No credential yet, or the Secret lost it (or holds one Torii does not recognise). A new one is recorded
    and stored BEFORE the gateway sees it. One issued before (status.keyId) must not stay alive unseen: a
    CLIENT keeps its id (the update replaces the secret); a KEY is revoked by its id once the new one exists."""
    status = work.status
    separate = work.kind == CredentialKind.KEY
    plan.lost_key_id = status.key_id if separate and work.previous is None else None
    if work.previous is None:
        work.applied_rotation, work.revoke_at = work.wanted_rotation, None
    client_id = "" if separate else (status.key_id or (work.previous.client_id if work.previous else ""))
    await issue(ctx, work, work.new_credential(client_id), rotation_generation=work.applied_rotation)
    if unrecognised:
        work.events.append(Event("Warning", "CredentialReplaced", f"Secret {work.secret_name} held a credential "
                                 "Torii did not issue; a new one was issued"))  # fmt: skip


async def rotate(ctx: ReconcileContext, work: KeyWork, request: KeyRequest) -> None:
    """The new credential goes into the Secret first; the current one keeps working for the grace period."""
    assert work.current is not None
    if work.previous is not None:
        # Rotated again before the last grace period ended: that older credential goes now.
        await work.driver.keys.revoke_previous(request, work.previous)
    work.previous = work.current
    work.revoke_at = ctx.now() + timedelta(seconds=work.grace)
    work.applied_rotation = work.wanted_rotation
    await issue(ctx, work, work.new_credential(work.current.client_id),
                rotation_generation=work.wanted_rotation, previous_key_revoke_at=fmt(work.revoke_at))  # fmt: skip
    work.events.append(Event("Normal", "Rotated", f"new credential in Secret {work.secret_name}; previous revoked "
                                                  f"at {fmt(work.revoke_at)}"))  # fmt: skip


def gateway_request(
    work: KeyWork, apis: tuple[ResolvedApi, ...], gid: str | None, plan: CredentialPlan, now: datetime
) -> KeyRequest:
    keep_counters = work.status.quota_fingerprint in (None, work.spec.quota_fingerprint)
    in_grace = work.previous is not None and work.revoke_at is not None and now < work.revoke_at
    request = KeyRequest(work.ref, work.spec, apis, gid, Credential(), None, work.grace, keep_counters,
                         adopting=plan.adopting)  # fmt: skip
    if plan.by_id is not None or work.current is None:
        return replace(request, key_id=plan.by_id)
    if work.kind == CredentialKind.CLIENT and in_grace and work.previous is not None:
        # The gateway's own rotation: clientSecret stays the old secret, nextSecret is the new one; both valid.
        return replace(request, credential=work.previous, next_credential=work.current)
    return replace(request, credential=work.current, fresh=work.fresh is not None and work.current is work.fresh)


async def end_grace(ctx: ReconcileContext, work: KeyWork, request: KeyRequest, plan: CredentialPlan) -> None:
    """What a rotation's (or an adoption's) grace period asks for now (`credential_plan.grace_actions`)."""
    status, keys, now = work.status, work.driver.keys, ctx.now()
    grace_over = work.revoke_at is None or now >= work.revoke_at
    situation = GraceSituation(
        has_current=work.current is not None, has_previous=work.previous is not None, grace_over=grace_over,
        rotated_away_now=plan.rotated_from is not None, previous_key_id=bool(status.previous_key_id),
        by_id=plan.by_id is not None,
    )  # fmt: skip
    at_unix = int(work.revoke_at.timestamp()) if work.revoke_at else 0
    for action in grace_actions(situation):
        if action == GraceAction.EXPIRE_PREVIOUS and work.previous is not None:
            # The gateway enforces the grace period itself too (where a previous credential is a key of its
            # own): the old key expires even if Torii is down then.
            await keys.expire_previous(request, work.previous, at_unix)
        elif action == GraceAction.EXPIRE_ADOPTED and plan.rotated_from is not None:
            await keys.expire_by_id(replace(request, adopting=True), plan.rotated_from, at_unix)
        elif action == GraceAction.REVOKE_ADOPTED and status.previous_key_id:
            await keys.revoke_by_id(replace(request, adopting=True), status.previous_key_id)
            work.events.append(Event("Normal", "PreviousCredentialRevoked", "the adopted key no longer works"))
            status.previous_key_id, work.revoke_at = None, None
        elif action == GraceAction.REVOKE_PREVIOUS and work.previous is not None and work.current is not None:
            await keys.revoke_previous(replace(request, credential=work.current, next_credential=None), work.previous)
            work.previous, work.revoke_at = None, None
            await record(ctx, work, previous_credential_digest=None, previous_key_revoke_at=None)
            await write_secret(ctx, work)
            message = "the rotated-out credential no longer works"
            work.events.append(Event("Normal", "PreviousCredentialRevoked", message))


async def converge(ctx: ReconcileContext, obj: Subject[GatewayKeyStatus]) -> Outcome:
    status, ref, owner = obj.status, obj.ref, obj.owner
    spec = parse_spec(GatewayKeySpec, obj.raw_spec)
    driver = ctx.gateways.get(spec.gateway)
    status.gateway = driver.name
    conn = ctx.connection(driver)
    check_key(conn, ref.namespace, spec)
    secret_name = spec.secret_name or ref.name
    status.secret_name = secret_name
    view = await ctx.owned_secret(ref, owner, secret_name)
    apis, gid = await resolve_apis(ctx, driver, ref, spec)
    work = KeyWork(ref, owner, spec, status, driver, secret_name, view)
    unrecognised = read_credentials(work)
    plan = await settle_credential(ctx, work, apis, gid, conn, unrecognised)
    request = gateway_request(work, apis, gid, plan, ctx.now())
    if obj.cause.checks:
        request = replace(request, max_age=ctx.drift_view_age)
    result = await driver.keys.converge_key(request)
    if plan.lost_key_id and plan.lost_key_id != result.key_id:
        await driver.keys.revoke_by_id(request, plan.lost_key_id)
    await end_grace(ctx, work, request, plan)
    finish_status(work, result, apis, plan)
    await quota(work, request)
    return key_outcome(work, obj.generation, obj.cause, result, apis, plan)


def finish_status(work: KeyWork, result: KeyResult, apis: tuple[ResolvedApi, ...], plan: CredentialPlan) -> None:
    status, current = work.status, work.current
    status.key_id = result.key_id or status.key_id or (current.client_id if current else None) or None
    if plan.by_id is not None:
        status.secret_name = None  # nothing to deliver: see the Ready message
    status.scope = result.scope
    status.api_ids = [a.gateway_id for a in apis]
    status.quota_fingerprint = work.spec.quota_fingerprint
    status.rotation_generation = work.applied_rotation
    status.previous_key_revoke_at = fmt(work.revoke_at) if work.revoke_at else None
    status.credential_digest = work.digest(current)
    status.previous_credential_digest = work.digest(work.previous)


async def quota(work: KeyWork, request: KeyRequest) -> None:
    status, spec = work.status, work.spec
    wanted_reset = spec.quota_reset_generation or 0
    if wanted_reset > (status.quota_reset_generation or 0):
        await work.driver.keys.reset_key_quota(request)
        work.events.append(Event("Normal", "QuotaReset", "live quota counters reset on the gateway"))
    status.quota_reset_generation = wanted_reset or status.quota_reset_generation
    if spec.quota is None:
        status.quota = None  # nothing to count: no admin read
        return
    with contextlib.suppress(GatewayError):  # quota figures are informative
        status.quota = await work.driver.keys.key_quota(request)


def key_outcome(
    work: KeyWork, generation: int, cause: Cause, result: KeyResult, apis: tuple[ResolvedApi, ...],
    plan: CredentialPlan,
) -> Outcome:  # fmt: skip
    status, driver, events = work.status, work.driver, work.events
    if plan.by_id is not None and ((c := status.condition(READY)) is None or c.status != ConditionStatus.TRUE):
        events.append(Event("Normal", "Adopted", f"existing key {plan.by_id} adopted; Tyk keeps only its hash"))
    if result.changed:
        reason = "DriftRepaired" if cause == Cause.DRIFT else ("Created" if result.created else "Updated")
        events.insert(
            0, Event("Normal", reason, f"key {status.key_id or ''} {reason.lower()} on gateway {driver.name}")
        )
    names = ", ".join(a.name for a in apis)
    if plan.by_id is not None:
        ready(status, generation, True, "Active", by_id_message(work.spec.type, plan.by_id, driver.name, names))
    else:
        ready(status, generation, True, "Active", f"key active on gateway {driver.name} for {names}; "
                                                  f"credential in Secret {status.secret_name}")  # fmt: skip
    return Outcome(status.to_wire(), events)


def by_id_message(form: KeyType, key_id: str, gateway: str, names: str) -> str:
    """Ready's message for an adopted key Torii knows by its id only: why there is no Secret, what gives one."""
    if form == KeyType.BASIC_AUTH:
        return (f"adopted basic-auth user {key_id} active on gateway {gateway} for {names}; Tyk never returns a "
                "password, so Torii cannot put it in a Secret: its clients keep using theirs. Set "
                "spec.rotation.generation to issue a user and password Torii delivers")  # fmt: skip
    hand_over = "the consumer's kid" if form == KeyType.JWT else "the key"
    return (f"adopted key {key_id} active on gateway {gateway} for {names}; Tyk stores only a hash of it, so Torii "
            f"cannot put it in a Secret: its clients keep using it. Set spec.adopt.credentialSecretRef to "
            f"{hand_over} to deliver it, or spec.rotation.generation to issue a new key")  # fmt: skip


async def remove(ctx: ReconcileContext, obj: Subject[GatewayKeyStatus], driver: GatewayDriver) -> str:
    """Revoke the key on the gateway. The Secret goes with the GatewayKey (ownerReference)."""
    status, ref, owner, raw_spec = obj.status, obj.ref, obj.owner, obj.raw_spec
    view = await ctx.secrets.get(ref.namespace, raw_spec.get("secretName") or ref.name)
    kind = driver.keys.credential_kind
    form = KeyType(raw_spec.get("type") or KeyType.KEY.value)
    current, previous = credentials_in(kind, view.data, form=form) if view and view.owned_by(owner) else (None, None)
    # Only what Torii recognises is revoked by value; a key it issued is otherwise found by its id.
    current = current if recognised(kind, owner.uid, current, status.credential_digest) else None
    previous = previous if status.previous_credential_digest and recognised(
        kind, owner.uid, previous, status.previous_credential_digest) else None  # fmt: skip
    adopted_id = (raw_spec.get("adopt") or {}).get("id")
    by_id = adopted_id if current is None and adopted_id and status.key_id == adopted_id else None
    lost_id = status.key_id if current is None and by_id is None else None
    if current is None and by_id is None and lost_id is None:
        return "no credential was issued: nothing to revoke"
    apis, gid = await deleted_key_apis(ctx, obj)
    if not apis and gid is None:
        return "the key referred to no API: nothing to revoke"
    try:
        spec = GatewayKeySpec.model_validate(raw_spec)
    except ValidationError:
        spec = GatewayKeySpec.model_construct()  # deleting an invalid object: only the ids above matter
    request = KeyRequest(ref, spec, apis, gid, current or Credential(), key_id=by_id, adopting=by_id is not None)
    keys = driver.keys
    if lost_id is not None:
        await keys.revoke_by_id(request, lost_id)
        deleted = True
    else:
        deleted = await keys.delete_key(request)
    if previous is not None and kind == CredentialKind.KEY:  # a KEY's previous credential is a key of its own
        await keys.revoke_previous(request, previous)
    if status.previous_key_id:  # an adopted key still in its grace period
        await keys.revoke_by_id(replace(request, adopting=True), status.previous_key_id)
    return f"key revoked on gateway {driver.name}" if deleted else f"key already gone from gateway {driver.name}"


async def deleted_key_apis(
    ctx: ReconcileContext, obj: Subject[GatewayKeyStatus]
) -> tuple[tuple[ResolvedApi, ...], str | None]:
    """The APIs (and group) a key being deleted was on: from status, else from the deterministic ids its spec
    names (a crash may have kept them out of status); with an adopted API's org, read while its object exists
    (Tyk deletes a key only in the org it is told)."""
    status, ref, raw_spec = obj.status, obj.ref, obj.raw_spec
    api_ids = status.api_ids or [
        ObjectRef(ref.namespace, a["name"]).gateway_id(ctx.id_prefix) for a in raw_spec.get("apis") or []
    ]
    orgs = [((await ctx.apis.get(ref.namespace, a["name"])) or {}).get("spec", {}).get("adopt", {}).get("orgId")
            for a in raw_spec.get("apis") or []]  # fmt: skip
    org = next((o for o in orgs if o), None)
    gid = status.scope.split("/", 1)[1] if status.scope and status.scope.startswith("groups/") else None
    if gid is None and raw_spec.get("apiGroup"):
        gid = group_id(ctx.id_prefix, ref.namespace, raw_spec["apiGroup"])
    return tuple(ResolvedApi(i, i, (), org) for i in api_ids), gid


reconcile_key = reconciler(GatewayKeyStatus, converge, what="converge key")
delete_key = deleter(GatewayKeyStatus, remove)
