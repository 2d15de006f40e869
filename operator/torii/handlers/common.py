"""Helpers shared by the handlers: events, status patches, retries."""

from __future__ import annotations

from typing import Any

import kopf

from torii.reconcile.outcome import Outcome, backoff


def apply(outcome: Outcome, body: kopf.Body, patch: kopf.Patch, retry: int) -> None:
    """Write the outcome's status and events; raise kopf's retry when the failure is retryable."""
    patch.setdefault("status", {}).update(outcome.status)
    for event in outcome.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    if outcome.retry:
        raise kopf.TemporaryError(outcome.message, delay=backoff(retry))


def plain(mapping: Any) -> dict[str, Any]:
    """kopf's read-only views as plain, deep-copied dicts."""
    if mapping is None:
        return {}
    return {k: plain(v) if isinstance(v, dict) or hasattr(v, "keys") else v for k, v in dict(mapping).items()}
