"""Otoroshi services converged in bursts (`burst.BurstSync`): one list before, only the writes that differ; then
each written object waits for the state sync and asks the proxy about its path. This is where the Otoroshi
driver's GatewayAPI work goes.

Per burst of B objects: `GET /api/services` once, `POST /api/services` (create), `PUT /api/services/{id}`
(update) or `DELETE /api/services/{id}` for each object that differs, and no read-back (both write answers carry
the service as stored). Admin writes reach the proxy only at its next state sync, so once the burst is written
each caller waits for that sync and then probes the proxy (client traffic, not admin calls) for its own path
until it routes (or stops routing) it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from torii.gateways.base import is_subset, pick
from torii.gateways.burst import Applied, BurstSync, Op, Put, Remove, Results, View
from torii.gateways.errors import PermanentGatewayError, RetryableGatewayError
from torii.gateways.http import AdminClient, admin_path

CORE_FIELDS = (
    "id", "enabled", "domain", "subdomain", "matchingRoot", "stripPath", "root", "targets",
    "publicPatterns", "privatePatterns", "metadata.torii-fingerprint",
)  # fmt: skip
# The owner record Torii writes into every service it manages (metadata); absent: not Torii's.
OWNER_NAMESPACE, OWNER_NAME = "torii.dev/namespace", "torii.dev/name"
VANISHED_CHECK_SECONDS = 5.0  # while the proxy does not route a written path, look at the admin API this often
Probe = Callable[[str, str], Awaitable[bool]]  # does the proxy route this path on this host?


def core(service: dict[str, Any]) -> View:
    """The fields the in-sync check compares (the view of the gateway keeps only these), and the owner record."""
    metadata: dict[str, Any] = service["metadata"] if isinstance(service.get("metadata"), dict) else {}
    return pick(service, CORE_FIELDS) | {
        "owner": (metadata[OWNER_NAMESPACE], metadata[OWNER_NAME])
        if metadata.get(OWNER_NAMESPACE) and metadata.get(OWNER_NAME)
        else None
    }


def in_sync(desired: dict[str, Any], current: View | None) -> bool:
    """`current` is a core() view of the stored service."""
    if current is None:
        return False
    want, have = core(desired), dict(current)
    # Otoroshi stores targets with many defaulted fields: compare only what Torii sets.
    want_targets, have_targets = want.pop("targets") or [], have.pop("targets") or []
    return want == have and is_subset(want_targets, have_targets)


def route(state: View) -> str | None:
    """Host and path the proxy routes to a stored service (None: disabled)."""
    path = served_path(state)
    if path is None:
        return None
    return f"{host_of(state)}{path}"


def host_of(state: dict[str, Any]) -> str:
    return ".".join(p for p in (state.get("subdomain"), state.get("domain")) if p)


def served_path(state: dict[str, Any] | None) -> str | None:
    """The path the proxy routes for a stored service (None: it routes nothing, e.g. disabled)."""
    if not state or state.get("enabled") is False:
        return None
    path = state.get("matchingRoot")
    return path if isinstance(path, str) and path else None


class OtoroshiServiceSync(BurstSync):
    what = "service"
    id_field = "id"
    list_path = "/api/services"

    def __init__(
        self, name: str, http: AdminClient, routed: Probe, *, state_sync_seconds: float, serve_timeout: float,
        quiet: float = 0.25, max_delay: float = 2.0, concurrency: int = 16,
    ) -> None:  # fmt: skip
        super().__init__(name, http, quiet=quiet, max_delay=max_delay, concurrency=concurrency)
        self._routed = routed
        self._state_sync_seconds = state_sync_seconds
        self._serve_timeout = serve_timeout

    async def put(
        self, service_id: str, desired: dict[str, Any], *, max_age: float = 0.0, adopting: bool = False
    ) -> Applied:
        return await self._settled(service_id, await self.submit(service_id, Put(desired, max_age, adopting)))

    async def remove(self, service_id: str, owner: tuple[str, str]) -> bool:
        return (await self._settled(service_id, await self.submit(service_id, Remove(owner)))).changed

    def core(self, body: dict[str, Any]) -> View:
        return core(body)

    def in_sync(self, desired: dict[str, Any], current: View | None) -> bool:
        return in_sync(desired, current)

    def route(self, view: View) -> str | None:
        return route(view)

    def get_path(self, object_id: str) -> str:
        return admin_path("/api/services/{}", object_id)

    async def write(self, object_id: str, desired: dict[str, Any], *, exists: bool) -> View | None:
        """The service as stored (both write answers carry it, verified on 17.17)."""
        if not exists:
            try:
                response = await self._http.request("POST", "/api/services", op="create service", json=desired)
                return _stored(response.json())
            except PermanentGatewayError as exc:
                # Created concurrently (or by an attempt whose answer was lost): update instead.
                if "already exists" not in exc.message:
                    raise
        response = await self._http.request("PUT", self.get_path(object_id), op="update service", json=desired)
        return _stored(response.json())

    async def delete(self, object_id: str) -> None:
        await self._http.request("DELETE", self.get_path(object_id), op="delete service", passthrough=(404,))

    async def finish(self, ops: dict[str, Op], before: dict[str, View], written: dict[str, View | None],
                     results: Results) -> Results:  # fmt: skip
        """No confirmation inside the burst: each caller waits for the state sync and probes its own path."""
        written_at = time.monotonic()
        for service_id, op in ops.items():
            if service_id in results:
                continue
            if service_id not in written:
                results[service_id] = Applied(changed=False)  # a removal of a service already gone
                continue
            probe: tuple[str, str, bool] | None = None
            if isinstance(op, Put):
                stored = written[service_id]
                if stored is None or not in_sync(op.desired, stored):
                    results[service_id] = RetryableGatewayError(
                        f"gateway {self.name}: service {service_id} not stored as sent"
                    )
                    continue
                self._view[service_id] = stored
                path = served_path(core(op.desired))
                probe = (host_of(op.desired), path, True) if path is not None else None
            else:
                old = before.get(service_id) or {}
                previous = served_path(old)
                self._view.pop(service_id, None)
                probe = (host_of(old), previous, False) if previous is not None else None
            results[service_id] = Applied(
                changed=True, created=before.get(service_id) is None, written_at=written_at, probe=probe
            )
        return results

    async def _settled(self, service_id: str, applied: Applied) -> Applied:
        """Wait for the state sync after the write, then until the proxy routes (or no longer routes) the path.
        Each caller waits for its own object, outside the batch: a path the proxy is slow to route (Otoroshi
        restarting, say) never holds up the next burst."""
        if not applied.changed:
            return applied
        await asyncio.sleep(max(0.0, applied.written_at + self._state_sync_seconds - time.monotonic()))
        if applied.probe is None:
            return applied  # an inactive service is routed by nobody: only the sync is awaited for it
        host, path, want = applied.probe
        deadline = time.monotonic() + self._serve_timeout
        next_look = time.monotonic() + VANISHED_CHECK_SECONDS
        delay = 0.1
        while await self._probe(path, host) != want:
            if want and time.monotonic() > next_look:
                # Still not routed: is the service still stored? An Otoroshi restarted with in-memory storage
                # lost it, and waiting out the whole timeout would only delay the rewrite.
                next_look = time.monotonic() + VANISHED_CHECK_SECONDS
                if await self.get(service_id) is None:
                    self._view.pop(service_id, None)
                    raise RetryableGatewayError(
                        f"gateway {self.name}: service {service_id} disappeared before the proxy served it "
                        "(gateway restarted?); writing it again"
                    )
            if time.monotonic() > deadline:
                raise RetryableGatewayError(
                    f"gateway {self.name}: the proxy did not {'serve' if want else 'stop serving'} {path} within "
                    f"{self._state_sync_seconds + self._serve_timeout:.0f}s of the admin write"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return applied

    async def _probe(self, path: str, host: str) -> bool:
        async with self._limit:
            return await self._routed(path, host)

    async def list_services(self) -> dict[str, View]:
        """Every stored service, by id."""
        return await self.list_all()


def _stored(body: Any) -> View | None:
    return core(body) if isinstance(body, dict) else None
