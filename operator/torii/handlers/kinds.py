"""kopf handlers for the three kinds: converge on create/update/resume, drift check on a timer, cleanup on
delete. Each handler resolves the object's identity and hands over to `torii.reconcile`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from torii import kube
from torii.gateways.base import ObjectRef
from torii.handlers.common import apply, plain
from torii.kube import Owner
from torii.models.common import API_VERSION, GROUP, VERSION
from torii.reconcile.context import ReconcileContext
from torii.reconcile.gatewayapi import delete_api, reconcile_api
from torii.reconcile.gatewaykey import delete_key, reconcile_key
from torii.reconcile.oauthclient import delete_oauth_client, reconcile_oauth_client
from torii.reconcile.outcome import Cause, Outcome
from torii.settings import OperatorSettings

Reconcile = Callable[
    [ReconcileContext, ObjectRef, Owner, dict[str, Any], int, dict[str, Any] | None, Cause], Awaitable[Outcome]
]
Delete = Callable[[ReconcileContext, ObjectRef, Owner, dict[str, Any], int, dict[str, Any] | None], Awaitable[Outcome]]


def register_kind(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    *,
    kind: str,
    plural: str,
    reconcile: Reconcile,
    delete: Delete,
) -> None:
    resource: dict[str, Any] = {"group": GROUP, "version": VERSION, "plural": plural, "registry": registry}

    # kopf runs a timer concurrently with the change handlers of the same object. Two reconciles of one object
    # at once could both rotate a credential (two keys, one in no Secret): one lock per object prevents it.
    locks: dict[str, asyncio.Lock] = {}

    def lock_for(body: kopf.Body) -> asyncio.Lock:
        return locks.setdefault(str(body.metadata.uid), asyncio.Lock())

    def context(memo: kopf.Memo) -> ReconcileContext:
        return ReconcileContext(
            memo.gateways, kube.KubeSecrets(), kube.KubeApis(), settings.id_prefix,
            drift_view_age=settings.drift_interval_seconds / 2,
        )  # fmt: skip

    def identity(body: kopf.Body) -> tuple[ObjectRef, Owner, int]:
        meta = body.metadata
        ref = ObjectRef(str(meta.namespace), str(meta.name))
        return ref, Owner(API_VERSION, kind, str(meta.name), str(meta.uid)), int(meta.get("generation", 1))

    async def converge(cause: Cause, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int) -> None:
        ref, owner, generation = identity(body)
        async with lock_for(body):
            outcome = await reconcile(
                context(memo), ref, owner, plain(body.spec), generation, plain(body.status), cause
            )
        if cause == Cause.DRIFT:
            outcome.retry = False  # a timer has no retry loop of its own: the next tick is the retry
        apply(outcome, body, patch, retry, kind=kind, cause=cause.value)

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
        if body.metadata.get("deletionTimestamp"):
            return  # being deleted: repairing it on the gateway now would fight the cleanup
        await converge(Cause.DRIFT, body, patch, memo, 0)

    @kopf.on.delete(**resource, id="cleanup")
    async def on_delete(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **_: Any) -> None:
        ref, owner, generation = identity(body)
        async with lock_for(body):
            outcome = await delete(context(memo), ref, owner, plain(body.spec), generation, plain(body.status))
        if not outcome.retry:
            locks.pop(str(body.metadata.uid), None)
        apply(outcome, body, patch, retry, kind=kind, cause="delete")


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    kinds: tuple[tuple[str, str, Reconcile, Delete], ...] = (
        ("GatewayAPI", "gatewayapis", reconcile_api, delete_api),
        ("GatewayKey", "gatewaykeys", reconcile_key, delete_key),
        ("OAuthClient", "oauthclients", reconcile_oauth_client, delete_oauth_client),
    )
    for kind, plural, reconcile, delete in kinds:
        register_kind(registry, settings, kind=kind, plural=plural, reconcile=reconcile, delete=delete)
