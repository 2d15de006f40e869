"""What the handlers remember of each object between events: the drift pass's record of it (`Tracked`), the
per-object lock the change handlers and the drift pass share, and which status fields an outcome changes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from torii.gateways.base import ObjectRef
from torii.kube import Owner
from torii.reconcile.outcome import Outcome


@dataclass
class Tracked:
    ref: ObjectRef
    owner: Owner
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]

    def reference(self) -> dict[str, Any]:
        """Enough of the object for an Event's involvedObject."""
        return {
            "apiVersion": self.owner.api_version, "kind": self.owner.kind,
            "metadata": {"name": self.ref.name, "namespace": self.ref.namespace, "uid": self.owner.uid},
        }  # fmt: skip


@dataclass
class Tracker:
    """The objects of one kind a drift pass looks at, and one lock per object shared with the change handlers
    (two reconciles of one object at once could both rotate a credential: two keys, one in no Secret)."""

    kind: str
    objects: dict[str, Tracked] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def remember(self, tracked: Tracked) -> None:
        self.objects[tracked.owner.uid] = tracked

    def forget(self, uid: str) -> None:
        self.objects.pop(uid, None)

    def release(self, uid: str) -> None:
        self.forget(uid)
        self.locks.pop(uid, None)


def status_changes(outcome: Outcome, status: dict[str, Any]) -> dict[str, Any]:
    """The status fields the outcome changes (only those are patched)."""
    return {k: v for k, v in outcome.status.items() if status.get(k) != v}
