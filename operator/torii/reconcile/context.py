"""What a reconciler may touch: the gateways, generated Secrets, GatewayAPI lookups, and a clock.

Injected, so reconcilers run in unit tests with in-memory stand-ins and in the operator with the real API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from torii.gateways.base import ObjectRef
from torii.gateways.registry import Gateways
from torii.kube import Owner, SecretView
from torii.reconcile.outcome import Blocked


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
