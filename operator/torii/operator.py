"""The operator: kopf settings, start-up (gateway drivers) and the handler registry."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import kopf

from torii import kube, metrics
from torii.gateways.registry import build_gateways
from torii.handlers import kinds
from torii.models.common import GROUP
from torii.settings import OperatorSettings

log = logging.getLogger("torii")


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled configuration with the spec as a digest, not a copy.

    kopf keeps the whole essence of the last handled object in an annotation, and annotations are limited to
    256 KiB in all: a GatewayAPI with a big `spec.tyk` could then never be handled (every patch refused, the
    status never written; found by the bad input catalogue). Torii's update handler only asks *whether* the spec
    changed (field="spec"), never for the diff itself, so a digest answers it: the annotation stays ~100 bytes
    whatever the spec, and kopf parses less on every event. The first event after an upgrade from full copies
    runs the update handler once per object (a converge that finds nothing to do)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        essence = super().build(body=body, extra_fields=extra_fields)
        if isinstance(essence.get("spec"), dict):
            digest = hashlib.sha256(json.dumps(essence["spec"], sort_keys=True).encode()).hexdigest()
            essence["spec"] = {"sha256": digest}
        return essence


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    # Keep kopf's bookkeeping under our own API group (not kopf.zalando.org).
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
    # Events come from the handlers themselves (Created, DriftRepaired, ...); kopf's per-handler chatter
    # would drown them, so only its warnings become Events.
    settings.posting.level = logging.WARNING
    # One object's slow gateway call never delays another's: kopf runs one worker per object.
    settings.queueing.worker_limit = None
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
        memo.gateways = await build_gateways(
            operator_settings, kube.read_secret_key, metrics.observer_for, kube.read_ca_bundle, kube.endpoint_urls
        )
        for name, error in memo.gateways.broken.items():
            log.error("gateway %s unusable: %s", name, error.message)
        memo.drift = kinds.start_drift(trackers, operator_settings, memo)

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        drift = getattr(memo, "drift", None)
        if drift is not None:
            drift.cancel()
        gateways = getattr(memo, "gateways", None)
        if gateways is not None:
            await gateways.aclose()

    operator_settings = settings
    trackers = kinds.register(registry, settings)
    return registry
