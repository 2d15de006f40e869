"""The operator: kopf settings, start-up (gateway drivers) and the handler registry."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from torii import kube, metrics
from torii.gateways.registry import build_gateways
from torii.handlers import kinds
from torii.models.common import GROUP
from torii.settings import OperatorSettings

log = logging.getLogger("torii")


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    # Keep kopf's bookkeeping under our own API group (not kopf.zalando.org).
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Events come from the handlers themselves (Created, DriftRepaired, ...); kopf's per-handler chatter
    # would drown them, so only its warnings become Events.
    settings.posting.level = logging.WARNING
    # One object's slow gateway call never delays another's: kopf runs one worker per object.
    settings.queueing.worker_limit = None
    # A drift timer caught mid-run by a deletion is re-checked every `cancellation_polling` seconds, and the
    # finalizer stays until it has exited: kopf's 60 s default made such deletions take minutes (the teardown
    # flake of the first round). The timer itself returns at once for an object being deleted.
    settings.background.cancellation_polling = 1.0
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_kopf(settings)
        memo.gateways = await build_gateways(operator_settings, kube.read_secret_key, metrics.observer_for)
        for name, error in memo.gateways.broken.items():
            log.error("gateway %s unusable: %s", name, error.message)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        gateways = getattr(memo, "gateways", None)
        if gateways is not None:
            await gateways.aclose()

    operator_settings = settings
    kinds.register(registry, settings)
    return registry
