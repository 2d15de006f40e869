"""Otoroshi routes and services converged in bursts (`burst.BurstSync`): one list before, only the writes that
differ; then each written object waits for the state sync and asks the proxy about its path. This is where the
Otoroshi driver's GatewayAPI work goes (`OtoroshiRouteSync` in otoroshi_routes.py, `OtoroshiServiceSync` here).

Per burst of B objects: `GET /api/routes` (or `/api/services`) once, `POST` (create), `PUT .../{id}` (update; it
never creates) or `DELETE .../{id}` for each object that differs, and no read-back (both write answers carry
the object as stored). Admin writes reach the proxy only at its next state sync, so once the burst is written
each caller waits for that sync and then probes the proxy (client traffic, not admin calls) for its own path
until it routes (or stops routing) it.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from torii.gateways.base import freeze, is_subset, pick, thaw
from torii.gateways.burst import Applied, BurstSync, Neighbour, Op, Put, Remove, Results, View, owner_of
from torii.gateways.errors import PermanentGatewayError, RetryableGatewayError
from torii.gateways.http import AdminClient, admin_path

CORE_FIELDS = (
    "id", "enabled", "domain", "subdomain", "matchingRoot", "stripPath", "root", "targets",
    "publicPatterns", "privatePatterns", "metadata.torii-fingerprint",
)  # fmt: skip
# The owner record Torii writes into every service it manages (metadata); absent: not Torii's.
OWNER_NAMESPACE, OWNER_NAME = "torii.dev/namespace", "torii.dev/name"
# An update the proxy cannot be seen serving waits 2 x the state sync plus this (a sync loads state for a while).
UNOBSERVED_MARGIN_SECONDS = 0.5
VANISHED_CHECK_SECONDS = 5.0  # while the proxy does not route a written path, look at the admin API this often
Probe = Callable[[str, str], Awaitable[bool]]  # does the proxy route this path on this host?


def core(service: dict[str, Any]) -> View:
    """The fields the in-sync check compares (the view of the gateway keeps only these), and the owner record."""
    view = _fields(service)
    view["targets"] = freeze(view["targets"])  # stored with many defaulted fields: compact text (see routes)
    return view


def _fields(service: dict[str, Any]) -> dict[str, Any]:
    """core() before its targets are frozen: what the desired side of a comparison needs as it is."""
    metadata: dict[str, Any] = service["metadata"] if isinstance(service.get("metadata"), dict) else {}
    view = pick(service, CORE_FIELDS)
    view["owner"] = (
        (metadata[OWNER_NAMESPACE], metadata[OWNER_NAME])
        if metadata.get(OWNER_NAMESPACE) and metadata.get(OWNER_NAME)
        else None
    )
    return view


def in_sync(desired: dict[str, Any], current: View | None) -> bool:
    """`current` is a core() view of the stored service. Otoroshi stores targets with many defaulted fields:
    compare only what Torii sets (only the stored side is thawed)."""
    if current is None:
        return False
    want = _fields(desired)
    same = all(current.get(k) == v for k, v in want.items() if k != "targets") and want.keys() == current.keys()
    return same and is_subset(want["targets"] or [], thaw(current.get("targets")) or [])


def served(state: View | None) -> tuple[str, str] | None:
    """(host, path) the proxy routes to a stored service (None: it routes nothing, e.g. disabled)."""
    if not state or state.get("enabled") is False:
        return None
    path = state.get("matchingRoot")
    if not isinstance(path, str) or not path:
        return None
    return ".".join(p for p in (state.get("subdomain"), state.get("domain")) if p), path


def keyed(state: View | None) -> bool:
    """Does the service ask for an API key (private patterns, no public ones)?"""
    return bool(state) and bool(state.get("privatePatterns")) and not state.get("publicPatterns")  # type: ignore[union-attr]


class OtoroshiSync(BurstSync):
    """Otoroshi objects the proxy serves (services, routes): written in bursts, each confirmed at the proxy.
    Subclasses say how a stored object is viewed, compared and where it is served."""

    def __init__(
        self, name: str, http: AdminClient, routed: Probe, *, state_sync_seconds: float, serve_timeout: float,
        quiet: float = 0.25, max_delay: float = 2.0, concurrency: int = 16,
    ) -> None:  # fmt: skip
        super().__init__(name, http, quiet=quiet, max_delay=max_delay, concurrency=concurrency)
        self._routed = routed
        self._state_sync_seconds = state_sync_seconds
        self._serve_timeout = serve_timeout
        self.neighbour: OtoroshiSync | None = None  # the other kind (routes beside services), whose paths count

    @abstractmethod
    def served(self, view: View | None) -> tuple[str, str] | None:
        """(host, path) the proxy serves a stored object on; None when it serves nothing."""

    @abstractmethod
    def keyed(self, view: View | None) -> bool:
        """Does the object ask clients for an API key?"""

    def route(self, view: View) -> str | None:
        where = self.served(view)
        return f"{where[0]}{where[1]}" if where else None

    def get_path(self, object_id: str) -> str:
        return admin_path(self.list_path + "/{}", object_id)

    async def neighbours(self, claims: dict[str, str]) -> dict[str, Neighbour]:
        """The other kind's objects, for a burst that claims new paths (one list of them, read then: a service
        made a moment ago counts; a drift pass or an unchanged path costs nothing). Keyed `<list path>/<id>`:
        never an id of this kind."""
        other = self.neighbour
        if other is None or not claims:
            return {}
        views = await other.list_all()
        return {
            f"{other.list_path}/{i}": Neighbour(other.what, i, other.route(v), owner_of(v)) for i, v in views.items()
        }

    async def put(
        self, object_id: str, desired: dict[str, Any], *, max_age: float = 0.0, adopting: bool = False
    ) -> Applied:
        return await self._settled(object_id, await self.submit(object_id, Put(desired, max_age, adopting)))

    async def remove(self, object_id: str, owner: tuple[str, str], *, confirm: bool = True) -> bool:
        """Delete the object; `confirm`: wait until the proxy stops serving its path (not when another object
        takes the path over, as in a migration)."""
        return (await self._settled(object_id, await self.submit(object_id, Remove(owner, confirm=confirm)))).changed

    async def location(self, object_id: str) -> tuple[str, str, bool] | None:
        """(host, path, keyed) of a stored object, from the view or (not in it) the admin API."""
        view = self._view.get(object_id) or await self.get(object_id)
        where = self.served(view)
        return (*where, self.keyed(view)) if where else None

    async def write(self, object_id: str, desired: dict[str, Any], *, exists: bool) -> View | None:
        """The object as stored (both write answers carry it, verified on 17.17)."""
        if not exists:
            try:
                response = await self._http.request("POST", self.list_path, op=f"create {self.what}", json=desired)
                return self._stored(response.json())
            except PermanentGatewayError as exc:
                # Created concurrently (or by an attempt whose answer was lost): update instead.
                if "already exists" not in exc.message:
                    raise
        response = await self._http.request("PUT", self.get_path(object_id), op=f"update {self.what}", json=desired)
        return self._stored(response.json())

    def _stored(self, body: Any) -> View | None:
        return self.core(body) if isinstance(body, dict) else None

    async def delete(self, object_id: str) -> None:
        await self._http.request("DELETE", self.get_path(object_id), op=f"delete {self.what}", passthrough=(404,))

    async def finish(self, ops: dict[str, Op], before: dict[str, View], written: dict[str, View | None],
                     results: Results) -> Results:  # fmt: skip
        """No confirmation inside the burst: each caller waits for the state sync and probes its own path."""
        written_at = time.monotonic()
        for object_id, op in ops.items():
            if object_id in results:
                continue
            if object_id not in written:
                results[object_id] = Applied(changed=False)  # a removal of an object already gone
                continue
            probe: tuple[str, str, bool] | None = None
            if isinstance(op, Put):
                stored = written[object_id]
                if stored is None or not self.in_sync(op.desired, stored):
                    results[object_id] = RetryableGatewayError(
                        f"gateway {self.name}: {self.what} {object_id} not stored as sent"
                    )
                    continue
                self._view[object_id] = stored
                where = self.served(self.core(op.desired))
                probe = (*where, True) if where is not None else None
                if where is not None and where == self.served(before.get(object_id)):
                    # Routed there before the write too: the proxy answers on the path whichever version it
                    # holds, so a probe cannot tell them apart. Wait for the worst case of a state sync instead
                    # (a write just after a sync began is loaded by the next one), as for keys.
                    results[object_id] = Applied(changed=True, written_at=written_at + self._state_sync_seconds
                                                 + UNOBSERVED_MARGIN_SECONDS)  # fmt: skip
                    continue
            else:
                where = self.served(before.get(object_id)) if op.confirm else None
                self._view.pop(object_id, None)
                probe = (*where, False) if where is not None else None
            results[object_id] = Applied(
                changed=True, created=before.get(object_id) is None, written_at=written_at, probe=probe
            )
        return results

    async def reconfirm(self, object_id: str) -> None:
        """Wait for a state sync, then until the proxy routes the object's path again (after an object that
        answered on the same path, e.g. the service a migration replaced, was removed)."""
        where = self.served(self._view.get(object_id) or await self.get(object_id))
        if where is not None:
            await self._settled(object_id, Applied(changed=True, written_at=time.monotonic(), probe=(*where, True)))

    async def _settled(self, object_id: str, applied: Applied) -> Applied:
        """Wait for the state sync after the write, then until the proxy routes (or no longer routes) the path.
        Each caller waits for its own object, outside the batch: a path the proxy is slow to route (Otoroshi
        restarting, say) never holds up the next burst."""
        if not applied.changed:
            return applied
        await asyncio.sleep(max(0.0, applied.written_at + self._state_sync_seconds - time.monotonic()))
        if applied.probe is None:
            return applied  # an inactive object is routed by nobody: only the sync is awaited for it
        host, path, want = applied.probe
        deadline = time.monotonic() + self._serve_timeout
        next_look = time.monotonic() + VANISHED_CHECK_SECONDS
        delay = 0.1
        while await self._probe(path, host) != want:
            if want and time.monotonic() > next_look:
                # Still not routed: is the object still stored? An Otoroshi restarted with in-memory storage
                # lost it, and waiting out the whole timeout would only delay the rewrite.
                next_look = time.monotonic() + VANISHED_CHECK_SECONDS
                if await self.get(object_id) is None:
                    self._view.pop(object_id, None)
                    raise RetryableGatewayError(
                        f"gateway {self.name}: {self.what} {object_id} disappeared before the proxy served it "
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


class OtoroshiServiceSync(OtoroshiSync):
    """Service descriptors (`/api/services`): the entity of a `services` connection."""

    what = "service"
    id_field = "id"
    list_path = "/api/services"

    def core(self, body: dict[str, Any]) -> View:
        return core(body)

    def in_sync(self, desired: dict[str, Any], current: View | None) -> bool:
        return in_sync(desired, current)

    def served(self, view: View | None) -> tuple[str, str] | None:
        return served(view)

    def keyed(self, view: View | None) -> bool:
        return keyed(view)
