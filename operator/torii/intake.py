"""What kopf keeps of each object: trimmed at intake.

During a burst kopf parks every object at once (its latest watch event in a per-object queue, a worker holding
the body while handlers run, the body again while a retry sleeps). More than half of a typical body is
`metadata.managedFields` and kubectl's last-applied annotation, which neither kopf nor Torii ever reads: they are
dropped from every watch event as it arrives, before kopf queues it. kopf offers no hook for this, so its watch
stream (`kopf._cogs.clients.watching.infinite_watch`, looked up by the reactor at call time) is wrapped; a unit
test fails if a kopf upgrade moves it (pinned below 1.46 in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def trim(body: Any) -> Any:
    """Drop what no handler reads from an object's body (in place; the same body returned)."""
    meta = body.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    return body


def install() -> None:
    """Trim every object of every kopf watch stream (idempotent)."""
    from kopf._cogs.clients import watching

    original = watching.infinite_watch
    if getattr(original, "torii_trimmed", False):
        return

    async def trimmed(**kwargs: Any) -> AsyncIterator[Any]:
        async for event in original(**kwargs):
            if isinstance(event, dict) and isinstance(obj := event.get("object"), dict):
                trim(obj)
            yield event

    trimmed.torii_trimmed = True  # type: ignore[attr-defined]
    watching.infinite_watch = trimmed
