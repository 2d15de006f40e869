"""Reconcile one GatewayAPI with its gateway."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from torii.gateways.base import GatewayDriver, ObjectRef
from torii.gateways.errors import GatewayError
from torii.kube import Owner
from torii.models.common import ConditionStatus
from torii.models.gatewayapi import GatewayAPISpec, GatewayAPIStatus
from torii.reconcile.context import ReconcileContext
from torii.reconcile.outcome import (
    READY,
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
from torii.tenancy.rules import check_api


def parse_status(raw: dict[str, Any] | None) -> GatewayAPIStatus:
    return GatewayAPIStatus.model_validate(raw or {})


async def reconcile_api(
    ctx: ReconcileContext,
    ref: ObjectRef,
    owner: Owner,
    raw_spec: dict[str, Any],
    generation: int,
    raw_status: dict[str, Any] | None,
    cause: Cause,
) -> Outcome:
    status = parse_status(raw_status)
    if cause == Cause.DRIFT and permanently_failed_at(status, generation):
        return Outcome(status.to_wire())  # already reported; a spec change (new generation) retries
    ref = replace(ref, kind=owner.kind, uid=owner.uid)
    try:
        spec = parse_spec(GatewayAPISpec, raw_spec)
        driver = ctx.gateways.get(spec.gateway)
        status.gateway = driver.name
        await check_api(ctx.connection(driver), ref.namespace, spec)
        result = await driver.apis.converge_api(ref, spec, max_age=ctx.drift_view_age if cause == Cause.DRIFT else 0.0)
    except Blocked as exc:
        return blocked(status, generation, exc)
    except GatewayError as exc:
        return failed(status, generation, exc, what="converge")

    was_ready = (c := status.condition(READY)) is not None and c.status == ConditionStatus.TRUE
    status.gateway_id = result.gateway_id
    status.listen_path = spec.listen_path
    if cause == Cause.DRIFT:
        with contextlib.suppress(GatewayError):  # health figures are informative; the API itself is served
            status.health = await driver.apis.api_health(ref, result.gateway_id)
    if spec.active:
        reason, message = "Serving", f"gateway {driver.name} serves {spec.listen_path} as {result.gateway_id}"
    else:
        reason, message = "Inactive", f"spec.active is false: gateway {driver.name} does not serve {spec.listen_path}"
    ready(status, generation, True, reason, "; ".join([message, *result.notes]))

    events = []
    if result.changed:
        if cause == Cause.DRIFT or (cause == Cause.RESUME and was_ready):
            reason, what = "DriftRepaired", "restored on" if result.created else "repaired on"
        elif spec.adopt is not None and not was_ready and not result.created:
            reason, what = "Adopted", "adopted in place on"
        elif result.created:
            reason, what = "Created", "created on"
        else:
            reason, what = "Updated", "updated on"
        events.append(Event("Normal", reason, f"API {result.gateway_id} {what} gateway {driver.name}"))
    return Outcome(status.to_wire(), events)


async def delete_api(
    ctx: ReconcileContext,
    ref: ObjectRef,
    owner: Owner,
    raw_spec: dict[str, Any],
    generation: int,
    raw_status: dict[str, Any] | None,
) -> Outcome:
    """Remove the API from its gateway (unless Orphan). `retry` keeps the finalizer and tries again later."""

    adopted = (raw_spec.get("adopt") or {}).get("id")
    ref = replace(ref, kind=owner.kind, uid=owner.uid)

    async def remove(driver: GatewayDriver) -> str:
        if await driver.apis.delete_api(ref, adopted or None):
            return f"API removed from gateway {driver.name}"
        return f"API already gone from gateway {driver.name}"

    return await ctx.cleanup(raw_spec, parse_status(raw_status), generation, remove)
