"""GatewayKey and OAuthClient handlers: the same shape for both kinds (they deliver a credential Secret)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from torii import kube
from torii.gateways.base import ObjectRef
from torii.handlers.common import apply, plain
from torii.kube import Owner
from torii.models.common import API_VERSION, GROUP, VERSION
from torii.reconcile.gatewaykey import KeyEnv, delete_key, reconcile_key
from torii.reconcile.oauthclient import delete_oauth_client, reconcile_oauth_client
from torii.reconcile.outcome import Cause, Outcome
from torii.settings import OperatorSettings

Reconcile = Callable[[KeyEnv, ObjectRef, Owner, dict[str, Any], int, dict[str, Any] | None, Cause], Awaitable[Outcome]]
Delete = Callable[[KeyEnv, ObjectRef, Owner, dict[str, Any], int, dict[str, Any] | None], Awaitable[Outcome]]


def env_of(memo: kopf.Memo, settings: OperatorSettings) -> KeyEnv:
    return KeyEnv(memo.gateways, kube.KubeSecrets(), kube.KubeApis(), settings.id_prefix)


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

    def identity(body: kopf.Body) -> tuple[ObjectRef, Owner, int]:
        meta = body.metadata
        ref = ObjectRef(str(meta.namespace), str(meta.name))
        owner = Owner(API_VERSION, kind, str(meta.name), str(meta.uid))
        return ref, owner, int(meta.get("generation", 1))

    async def converge(cause: Cause, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int) -> None:
        ref, owner, generation = identity(body)
        outcome = await reconcile(
            env_of(memo, settings), ref, owner, plain(body.spec), generation, plain(body.status), cause
        )
        if cause == Cause.DRIFT:
            outcome.retry = False  # the next tick is the retry
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
        **resource, id="drift-check", interval=settings.drift_interval_seconds,
        initial_delay=settings.drift_interval_seconds,
    )  # fmt: skip
    async def drift_check(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
        await converge(Cause.DRIFT, body, patch, memo, 0)

    @kopf.on.delete(**resource, id="cleanup")
    async def on_delete(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, retry: int, **_: Any) -> None:
        ref, owner, generation = identity(body)
        outcome = await delete(env_of(memo, settings), ref, owner, plain(body.spec), generation, plain(body.status))
        apply(outcome, body, patch, retry, kind=kind, cause="delete")


def register(registry: kopf.OperatorRegistry, settings: OperatorSettings) -> None:
    register_kind(
        registry, settings, kind="GatewayKey", plural="gatewaykeys", reconcile=reconcile_key, delete=delete_key
    )
    register_kind(
        registry, settings, kind="OAuthClient", plural="oauthclients",
        reconcile=reconcile_oauth_client, delete=delete_oauth_client,
    )  # fmt: skip
