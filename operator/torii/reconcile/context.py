"""What a reconciler may touch: the gateways, generated Secrets, GatewayAPI lookups, and a clock.

Injected, so reconcilers run in unit tests with in-memory stand-ins and in the operator with the real API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from torii.gateways.base import GatewayDriver, ObjectRef
from torii.gateways.errors import GatewayError, OwnershipConflict
from torii.gateways.registry import Gateways
from torii.kube import Owner, SecretView
from torii.models.common import DeletionPolicy, StatusBase
from torii.reconcile.outcome import Blocked, Event, Outcome, ready
from torii.retry import RetryPolicy
from torii.tenancy.config import Tenancy
from torii.tenancy.rules import Connection

# Writes status fields of the object being reconciled at once (a merge patch of the status subresource).
StatusRecorder = Callable[[dict[str, Any]], Awaitable[None]]


async def no_record(fields: dict[str, Any]) -> None:
    """Where nothing needs writing ahead (the status is written with the outcome)."""


ORPHAN_HINT = " (set spec.deletionPolicy: Orphan to release the object without cleanup)"


class SecretStore(Protocol):
    async def get(self, namespace: str, name: str) -> SecretView | None: ...

    async def write(
        self,
        namespace: str,
        name: str,
        owner: Owner,
        data: dict[str, str],
        *,
        labels: dict[str, str],
        annotations: dict[str, str],
        create: bool,
        resource_version: str = "",
    ) -> str:
        """Write; return the new resourceVersion."""
        ...


class ApiLookup(Protocol):
    async def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def in_group(self, namespace: str, group: str) -> list[dict[str, Any]]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class ReconcileContext:
    gateways: Gateways
    secrets: SecretStore
    apis: ApiLookup
    id_prefix: str = "torii"
    now: Callable[[], datetime] = field(default=utcnow)
    # How old a gateway view a drift pass may use (half the drift interval: a hand edit is still repaired
    # within 1.5 intervals, and N drift checks share a few list calls instead of N reads).
    drift_view_age: float = 0.0
    # Status fields that must be durable before a Secret or a gateway sees what they describe (a new
    # credential's digest): written at once, not with the outcome.
    record: StatusRecorder = field(default=no_record)
    # The tenancy policy of each connection (the operator's configuration); the safe default for any other.
    tenancy: dict[str, Tenancy] = field(default_factory=dict)

    def connection(self, driver: GatewayDriver) -> Connection:
        """What the tenancy checks need to know of the driver's connection."""
        return Connection(
            driver.name, driver.type, self.tenancy.get(driver.name) or Tenancy(), list(driver.admin_urls),
            frozenset(driver.neutral_fields), driver.dialect,
        )  # fmt: skip

    async def owned_secret(self, ref: ObjectRef, owner: Owner, secret_name: str) -> SecretView | None:
        """The Secret if this object owns it, None if absent; Blocked(SecretConflict) if somebody else's."""
        view = await self.secrets.get(ref.namespace, secret_name)
        if view is not None and not view.owned_by(owner):
            raise Blocked(
                "SecretConflict",
                f"Secret {secret_name} already exists and is not managed by this {owner.kind}; Torii never "
                "overwrites it: delete or rename it, or set spec.secretName",
                retry=False,
            )
        return view

    async def cleanup(
        self,
        raw_spec: dict[str, Any],
        status: StatusBase,
        generation: int,
        remove: Callable[[GatewayDriver], Awaitable[str]],
    ) -> Outcome:
        """The shape every delete shares. `Orphan` releases at once; a connection gone from the configuration
        releases with a warning (deletion never hangs on it); a gateway failure keeps the finalizer, says how to
        let go, and retries. `remove` does the kind's gateway work and says what it did."""
        if raw_spec.get("deletionPolicy") == DeletionPolicy.ORPHAN.value:
            return Outcome(
                status.to_wire(), [Event("Normal", "Orphaned", "deletionPolicy Orphan: left on the gateway")]
            )
        try:
            driver = self.gateways.get(raw_spec.get("gateway"))
        except GatewayError as exc:
            return Outcome(status.to_wire(), [Event("Warning", exc.reason, f"not cleaned up: {exc.message}")])
        try:
            message = await remove(driver)
        except OwnershipConflict as exc:
            # Not this object's to delete: it is released, and the gateway object stays as it is.
            return Outcome(status.to_wire(), [Event("Warning", "LeftAlone", f"not deleted: {exc.message}")])
        except GatewayError as exc:
            ready(status, generation, False, "DeleteFailed", exc.message + ORPHAN_HINT)
            return Outcome(
                status.to_wire(),
                [Event("Warning", "DeleteFailed", exc.message + ORPHAN_HINT)],
                retry_policy=RetryPolicy.BACKOFF,
                message=exc.message,
            )
        return Outcome(status.to_wire(), [Event("Normal", "Deleted", message)])
