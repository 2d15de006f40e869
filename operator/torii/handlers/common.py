"""Helpers shared by the handlers: events, status patches, retries."""

from __future__ import annotations

from typing import Any

import kopf

from torii import metrics
from torii.handlers.tracking import status_changes
from torii.reconcile.outcome import READY, Outcome


def apply(outcome: Outcome, body: kopf.Body, patch: kopf.Patch, *, kind: str, cause: str) -> None:
    """Write the outcome's status, events and metrics. Retries are the caller's: Torii's own timer for changes
    (torii.handlers.retries), and for deletions (torii.handlers.cleanup)."""
    # Patch only what changed. Besides saving apiserver writes, this matters for deletion: after a patch kopf
    # waits for the watch event the patch causes, and an identical status causes none, so an object whose drift
    # timer was still stopping kept its finalizer forever (the teardown flake: "Sleeping was skipped because of
    # the patch" and nothing after it).
    changed = status_changes(outcome, plain(body.status))
    if changed:
        patch.setdefault("status", {}).update(changed)
    for event in outcome.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    count(outcome, kind, cause, str(body.metadata.namespace), str(body.metadata.name))


def plain(mapping: Any) -> dict[str, Any]:
    """kopf's read-only views as plain, deep-copied dicts."""
    if mapping is None:
        return {}
    return {k: plain(v) if isinstance(v, dict) or hasattr(v, "keys") else v for k, v in dict(mapping).items()}


def count(outcome: Outcome, kind: str, cause: str, namespace: str, name: str) -> None:
    """The metrics of one reconcile."""
    for event in outcome.events:
        if event.reason == "DriftRepaired":
            metrics.DRIFT_REPAIRS.labels(kind).inc()
    ready = ready_condition(outcome)
    result = "deleted" if cause == "delete" and not outcome.retry else (ready or {}).get("reason", "unknown")
    metrics.RECONCILES.labels(kind, cause, result).inc()
    if cause == "delete":
        if not outcome.retry:
            metrics.track_ready(kind, namespace, name, None)
    elif ready is not None:
        metrics.track_ready(kind, namespace, name, str(ready.get("status")))


def ready_condition(outcome: Outcome) -> dict[str, Any] | None:
    return next((c for c in outcome.status.get("conditions", []) if c.get("type") == READY), None)
