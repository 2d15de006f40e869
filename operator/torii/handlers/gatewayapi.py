"""GatewayAPI handlers: converge on create/update/resume, drift check on a timer, cleanup on delete."""

from __future__ import annotations

from typing import Any

import kopf

from torii.gateways.base import ObjectRef
from torii.handlers.common import apply, plain
from torii.models.common import GROUP, VERSION
from torii.reconcile.gatewayapi import delete_api, reconcile_api
from torii.reconcile.outcome import Cause
from torii.settings import OperatorSettings

PLURAL = "gatewayapis"
KIND = "GatewayAPI"


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    resource: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": PLURAL, "registry": registry}

    async def converge(cause: Cause, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int) -> None:
        meta = body.metadata
        outcome = await reconcile_api(
            memo.gateways,
            ObjectRef(str(meta.namespace), str(meta.name)),
            plain(body.spec),
            int(meta.get("generation", 1)),
            plain(body.status),
            cause,
        )
        apply(outcome, body, patch, retry, kind=KIND, cause=cause.value)

    @kopf.on.create(**resource, id="converge-on-create")
    async def on_create(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **_: Any) -> None:
        await converge(Cause.CREATE, body, patch, memo, retry)

    @kopf.on.update(**resource, id="converge-on-update", field="spec")
    async def on_update(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **_: Any) -> None:
        await converge(Cause.UPDATE, body, patch, memo, retry)

    @kopf.on.resume(**resource, id="converge-on-resume")
    async def on_resume(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **_: Any) -> None:
        await converge(Cause.RESUME, body, patch, memo, retry)

    @kopf.timer(
        **resource,
        id="drift-check",
        interval=settings.drift_interval_seconds,
        initial_delay=settings.drift_interval_seconds,
    )
    async def drift_check(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        # A timer has no retry loop of its own: the next tick is the retry.
        outcome = await reconcile_api(
            memo.gateways,
            ObjectRef(str(body.metadata.namespace), str(body.metadata.name)),
            plain(body.spec),
            int(body.metadata.get("generation", 1)),
            plain(body.status),
            Cause.DRIFT,
        )
        outcome.retry = False
        apply(outcome, body, patch, 0, kind=KIND, cause=Cause.DRIFT.value)

    @kopf.on.delete(**resource, id="cleanup")
    async def on_delete(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **_: Any) -> None:
        outcome = await delete_api(
            memo.gateways,
            ObjectRef(str(body.metadata.namespace), str(body.metadata.name)),
            plain(body.spec),
            int(body.metadata.get("generation", 1)),
            plain(body.status),
        )
        apply(outcome, body, patch, retry, kind=KIND, cause="delete")
