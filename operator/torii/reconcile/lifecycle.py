"""The shape every kind's reconcile and delete share, once: parse the status, skip a drift check of a generation
that already failed for good, give the reference its owner record, and turn a Blocked or a GatewayError into
the outcome. A kind supplies only its own work (`converge`, `remove`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from torii.gateways.base import GatewayDriver, ObjectRef
from torii.gateways.errors import GatewayError
from torii.kube import Owner
from torii.models.common import StatusBase
from torii.reconcile.context import ReconcileContext
from torii.reconcile.outcome import Blocked, Cause, Outcome, blocked, failed, permanently_failed_at

S = TypeVar("S", bound=StatusBase)


@dataclass(frozen=True)
class Subject(Generic[S]):
    """One object being reconciled: its reference (with its owner record), spec as stored, generation, cause,
    and the status the reconcile fills in."""

    ref: ObjectRef
    owner: Owner
    raw_spec: dict[str, Any]
    generation: int
    cause: Cause
    status: S


Reconcile = Callable[
    [ReconcileContext, ObjectRef, Owner, dict[str, Any], int, dict[str, Any] | None, Cause], Awaitable[Outcome]
]
Delete = Callable[[ReconcileContext, ObjectRef, Owner, dict[str, Any], int, dict[str, Any] | None], Awaitable[Outcome]]


def with_owner(ref: ObjectRef, owner: Owner) -> ObjectRef:
    """The object's reference with its owner record's kind and uid (what the gateway objects carry)."""
    return replace(ref, kind=owner.kind, uid=owner.uid)


def reconciler(
    status_model: type[S], converge: Callable[[ReconcileContext, Subject[S]], Awaitable[Outcome]], *, what: str
) -> Reconcile:
    """A kind's reconcile: `converge` does its work; failures become Ready=False (`what` names the step)."""

    async def reconcile(
        ctx: ReconcileContext, ref: ObjectRef, owner: Owner, raw_spec: dict[str, Any], generation: int,
        raw_status: dict[str, Any] | None, cause: Cause,
    ) -> Outcome:  # fmt: skip
        status = status_model.model_validate(raw_status or {})
        if cause == Cause.DRIFT and permanently_failed_at(status, generation):
            return Outcome(status.to_wire())  # already reported; a spec change (new generation) retries
        subject = Subject(with_owner(ref, owner), owner, raw_spec, generation, cause, status)
        try:
            return await converge(ctx, subject)
        except Blocked as exc:
            return blocked(status, generation, exc)
        except GatewayError as exc:
            return failed(status, generation, exc, what=what)

    return reconcile


def deleter(
    status_model: type[S], remove: Callable[[ReconcileContext, Subject[S], GatewayDriver], Awaitable[str]]
) -> Delete:
    """A kind's delete: `remove` does its gateway work and says what it did; the rest is `ctx.cleanup`'s
    (Orphan, connections gone, failures that keep the finalizer)."""

    async def delete(
        ctx: ReconcileContext, ref: ObjectRef, owner: Owner, raw_spec: dict[str, Any], generation: int,
        raw_status: dict[str, Any] | None,
    ) -> Outcome:  # fmt: skip
        status = status_model.model_validate(raw_status or {})
        subject = Subject(with_owner(ref, owner), owner, raw_spec, generation, Cause.UPDATE, status)
        return await ctx.cleanup(raw_spec, status, generation, lambda driver: remove(ctx, subject, driver))

    return delete
