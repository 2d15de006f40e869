"""Helpers shared by the handlers: events, status patches, retries."""

from __future__ import annotations

from typing import Any

import kopf

from torii import metrics
from torii.handlers.drift import status_changes
from torii.reconcile.outcome import Outcome, backoff


def apply(outcome: Outcome, body: kopf.Body, patch: kopf.Patch, retry: int, *, kind: str, cause: str) -> None:
    """Write the outcome's status, events and metrics; raise kopf's retry when the failure is retryable."""
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
    if outcome.retry:
        delay = backoff(retry)
        if reason(outcome) == "GatewayUnavailable":
            # The gateway will come back: after an outage of any length, be at most this late to notice.
            delay = min(delay, UNAVAILABLE_RETRY_CAP)
        elif reason(outcome).startswith("Waiting"):
            # Waiting for another object (an API to be served, a Secret to exist) costs one apiserver read per
            # look: look often, or a key applied with its API waits out a doubled backoff long after the API
            # is served (adopting 1,000 APIs and keys at once: 245 s).
            delay = min(delay, WAITING_RETRY_CAP)
        raise kopf.TemporaryError(outcome.message, delay=delay)


def plain(mapping: Any) -> dict[str, Any]:
    """kopf's read-only views as plain, deep-copied dicts."""
    if mapping is None:
        return {}
    return {k: plain(v) if isinstance(v, dict) or hasattr(v, "keys") else v for k, v in dict(mapping).items()}


UNAVAILABLE_RETRY_CAP = 20.0
WAITING_RETRY_CAP = 5.0


def reason(outcome: Outcome) -> str:
    ready = next((c for c in outcome.status.get("conditions", []) if c.get("type") == "Ready"), None)
    return str((ready or {}).get("reason", ""))


def count(outcome: Outcome, kind: str, cause: str, namespace: str, name: str) -> None:
    """The metrics of one reconcile."""
    for event in outcome.events:
        if event.reason == "DriftRepaired":
            metrics.DRIFT_REPAIRS.labels(kind).inc()
    ready = next((c for c in outcome.status.get("conditions", []) if c.get("type") == "Ready"), None)
    result = "deleted" if cause == "delete" and not outcome.retry else (ready or {}).get("reason", "unknown")
    metrics.RECONCILES.labels(kind, cause, result).inc()
    if cause == "delete":
        if not outcome.retry:
            metrics.track_ready(kind, namespace, name, None)
    elif ready is not None:
        metrics.track_ready(kind, namespace, name, str(ready.get("status")))
