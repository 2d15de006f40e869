"""The operator: kopf settings, start-up (gateway drivers) and the handler registry."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from torii import acyclic, heap, intake, kube, memories, metrics
from torii.gateways.registry import build_gateways
from torii.handlers import cleanup, kinds
from torii.models.common import GROUP
from torii.settings import OperatorSettings

log = logging.getLogger("torii")


class SharedMemo(kopf.Memo):
    """The one memo every handler sees. kopf gives each object a shallow copy of the operator's memo, kept for the
    object's life (one more dict per object: 10,000 at 10,000 objects). Torii keeps no per-object state in it
    (what it remembers of an object is in its tracker), so every object shares this one."""

    def __copy__(self) -> SharedMemo:
        return self


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled configuration: only a digest of the spec, built without copying the body.

    kopf keeps the whole essence of the last handled object in an annotation, and annotations are limited to
    256 KiB in all: a GatewayAPI with a big `spec.tyk` could then never be handled (every patch refused, the
    status never written; found by the bad input catalogue). Torii's update handler only asks *whether* the spec
    changed (field="spec"), never for the diff itself, so a digest answers it: the annotation stays ~100 bytes
    whatever the spec. kopf's own `build` deep-copies the body on every event to make the essence (labels and
    annotations included), which during a burst doubles what every parked object costs: the digest is made
    straight from the body. Label and annotation changes are not changes for Torii (no handler reads them).
    The first event after an upgrade from full copies rewrites the annotation once per object."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> Any:
        spec = body.get("spec")
        if not isinstance(spec, Mapping):
            return {}
        return {"spec": {"sha256": hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()}}


# kopf's Event posting: workers at once, and the delays before retrying a refused post.
EVENT_POSTERS = 16
EVENT_BACKOFFS = (1.0,)


def configure_kopf(settings: kopf.OperatorSettings, object_workers: int | None = None) -> None:
    # Keep kopf's bookkeeping under our own API group (not kopf.zalando.org).
    settings.persistence.finalizer = cleanup.FINALIZER  # Torii releases a handed-over deletion's (handlers.cleanup)
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
    # Events come from the handlers themselves (Created, DriftRepaired, ...); kopf's per-handler chatter
    # would drown them, so only its warnings become Events.
    settings.posting.level = logging.WARNING
    # kopf posts each object's Events from a worker of its own, with no limit: in a 3000-object apply up to 478
    # posts were waiting on the apiserver at once, each holding a task, a request and buffers. A few workers drain
    # kopf's queue (small records; handlers never wait for it). A refused post is tried once more, 1 s later:
    # with kopf's default (8 retries over 54 s) the Events of namespaces being deleted (refused, 403) held every
    # worker and another namespace's warning waited over 30 s (the first attempt at this bound, reverted).
    settings.posting.worker_limit = EVENT_POSTERS
    settings.posting.default_backoffs = EVENT_BACKOFFS
    # kopf runs one worker per object, each holding the object's body, handler state and patch until done; beyond
    # `maxObjectWorkers` (default 1024) an object waits as its latest watch event only. No worker sleeps out a
    # change's retry (Torii's timer retries) and changes beyond maxHeldChanges are handed off, so the slots turn
    # over. A deletion waits for its gateway in its worker (the finalizer): without a limit, deleting 10,000
    # objects at once held all 10,000 (496 MiB); with it a big deletion goes in waves.
    settings.queueing.worker_limit = object_workers
    # A worker (with the object's last event) is kept this long after its last event: kopf's 5 s default keeps a
    # whole burst's bodies in memory for 5 s after the burst; Torii's own status patch echoes back within it.
    settings.queueing.idle_timeout = 1.0
    # Hot standby (replicas > 1): a replica that died without a goodbye (killed, its node lost) is taken over
    # once its peering record is this old; it refreshes it every 1-5 s (kopf: lifetime minus 5-10 s).
    settings.peering.lifetime = 10
    # The listing at start-up comes in pages (kubectl's page size): at 10,000 objects one answer was tens of MB
    # of JSON parsed at once, managedFields included (they are trimmed only after parsing).
    settings.watching.chunk_size = 500
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    intake.install()  # bodies trimmed as they arrive
    acyclic.install()  # and freed as soon as kopf lets go of them
    cleanup.install()  # kopf leaves a handed-over deletion's finalizer to Torii
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kube.login(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        configure_kopf(settings, operator_settings.max_object_workers)
        memo.gateways = await build_gateways(
            operator_settings, kube.read_secret_key, metrics.observer_for, kube.read_ca_bundle, kube.endpoint_urls
        )
        for name, error in memo.gateways.broken.items():
            log.error("gateway %s unusable: %s", name, error.message)
        memo.apis = kinds.api_lookup(runtime.trackers)
        memo.drift = kinds.start_drift(runtime, operator_settings, memo)
        memo.cycles = asyncio.create_task(heap.collect_cycles(), name="torii-collect-cycles")

    @kopf.on.cleanup(registry=registry)
    async def shutdown(memo: kopf.Memo, **_: Any) -> None:
        for task in (getattr(memo, "drift", None), getattr(memo, "cycles", None)):
            if task is not None:
                task.cancel()
        gateways = getattr(memo, "gateways", None)
        if gateways is not None:
            await gateways.aclose()
        await kube.api().aclose()

    operator_settings = settings
    runtime = kinds.register(registry, settings)
    memories.install(registry)  # what kopf remembers of each object between events is small
    return registry
