"""What a reconcile decided: the status to write, the Events to post, whether to retry. No kopf here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from torii.gateways.errors import GatewayError
from torii.models.common import Condition, ConditionStatus, StatusBase
from torii.retry import RetryPolicy

M = TypeVar("M", bound=BaseModel)

READY = "Ready"


class Cause(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RESUME = "resume"
    DRIFT = "drift"
    RETRY = "retry"  # a failed change tried again by Torii's own timer (torii.handlers.retries)

    @property
    def checks(self) -> bool:
        """A check of an object already handled (a drift pass, or a restart finding it): it may decide on a view
        of the gateway up to half a drift interval old. A restart's checks go 512 at a time, and each batch
        listed every definition afresh: 20 lists of 10,000 Tyk definitions, 95 s to resume them all."""
        return self in (Cause.DRIFT, Cause.RESUME)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    retry_policy: RetryPolicy = RetryPolicy.NONE  # how soon to try again (NONE: not)
    message: str = ""

    @property
    def retry(self) -> bool:
        return self.retry_policy is not RetryPolicy.NONE


def ready(status: StatusBase, generation: int, ok: bool, reason: str, message: str) -> None:
    status.observed_generation = generation
    status.set_condition(
        Condition(
            type=READY,
            status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
            reason=reason,
            message=message,
            observed_generation=generation,
        )
    )


def invalid_spec_message(exc: ValidationError) -> str:
    """A pydantic error as the user would fix it: `spec.<field>: <problem>` (no input values echoed)."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{loc}: {err['msg']}" if loc else err["msg"])
    return "; ".join(parts)


def failed(status: StatusBase, generation: int, exc: GatewayError, *, what: str) -> Outcome:
    ready(status, generation, False, exc.reason, exc.message)
    return Outcome(
        status=status.to_wire(),
        events=[Event("Warning", exc.reason, f"{what}: {exc.message}")],
        retry_policy=exc.retry_policy,
        message=exc.message,
    )


def permanently_failed_at(status: StatusBase, generation: int) -> bool:
    """True when this generation already failed for a reason retrying cannot fix (do not hammer the gateway)."""
    cond = status.condition(READY)
    return (
        cond is not None
        and cond.status == ConditionStatus.FALSE
        and cond.observed_generation == generation
        and cond.reason in PERMANENT_REASONS
    )


PERMANENT_REASONS = frozenset(
    {"InvalidSpec", "GatewayRejected", "Unsupported", "GatewayNotConfigured", "PolicyViolation"}
)


class Blocked(Exception):
    """The object cannot converge until the user (or another object) changes something. `retry`: it waits for
    another object (an API to be served, a Secret to exist): looked at again soon (RetryPolicy.WAITING)."""

    def __init__(self, reason: str, message: str, *, retry: bool, until_api: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_policy = RetryPolicy.WAKE if until_api else RetryPolicy.WAITING if retry else RetryPolicy.NONE


def blocked(status: StatusBase, generation: int, exc: Blocked) -> Outcome:
    ready(status, generation, False, exc.reason, exc.message)
    return Outcome(status.to_wire(), [Event("Warning", exc.reason, exc.message)], retry_policy=exc.retry_policy,
                   message=exc.message)  # fmt: skip


def parse_spec(model: type[M], raw_spec: dict[str, Any]) -> M:
    """The validated spec, or Blocked(InvalidSpec) naming the fields (the CRD normally refuses these first)."""
    try:
        return model.model_validate(raw_spec)
    except ValidationError as exc:
        raise Blocked("InvalidSpec", invalid_spec_message(exc), retry=False) from None
