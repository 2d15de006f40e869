"""Otoroshi services converged in bursts: one list before, only the writes that differ; then each written
object waits for the state sync and asks the proxy about its path. This is where the Otoroshi driver's
GatewayAPI work goes (`OtoroshiDriver.converge_api/delete_api` submit here), the design of `tyk_sync.TykApiSync`.

Per burst of B objects: `GET /api/services` once, `POST /api/services` (create), `PUT /api/services/{id}`
(update) or `DELETE /api/services/{id}` for each object that differs (at most `concurrency` at once), and no
read-back (both write answers carry the service as stored). Admin writes reach the proxy only at its next
state sync, so once the burst is written each caller waits for that sync and then probes the proxy (client
traffic, not admin calls) for its own path until it routes (or stops routing) it. A drift pass may accept a
view up to `max_age` seconds old: N drift checks in one interval cost one list call in all, not N reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torii.gateways.base import is_subset, pick
from torii.gateways.batch import Batcher, conflict_message, path_conflicts
from torii.gateways.errors import (
    GatewayError,
    ListenPathConflict,
    OwnershipConflict,
    PermanentGatewayError,
    RetryableGatewayError,
)
from torii.gateways.http import AdminClient, admin_path

CORE_FIELDS = (
    "id", "enabled", "domain", "subdomain", "matchingRoot", "stripPath", "root", "targets",
    "publicPatterns", "privatePatterns", "metadata.torii-fingerprint",
)  # fmt: skip


# The owner record Torii writes into every service it manages (metadata); absent: not Torii's.
OWNER_NAMESPACE, OWNER_NAME = "torii.dev/namespace", "torii.dev/name"


def core(service: dict[str, Any]) -> dict[str, Any]:
    """The fields the in-sync check compares (the view of the gateway keeps only these), and the owner record."""
    metadata: dict[str, Any] = service["metadata"] if isinstance(service.get("metadata"), dict) else {}
    return pick(service, CORE_FIELDS) | {
        "owner": (metadata[OWNER_NAMESPACE], metadata[OWNER_NAME])
        if metadata.get(OWNER_NAMESPACE) and metadata.get(OWNER_NAME)
        else None
    }


def owner_of(view: dict[str, Any] | None) -> tuple[str, str] | None:
    owner = (view or {}).get("owner")
    return (str(owner[0]), str(owner[1])) if owner else None


def claim_refused(gateway: str, service_id: str, op: Put, current: dict[str, Any] | None) -> GatewayError | None:
    """Why `op` may not write over `current` (None: it may); see tyk_sync.claim_refused."""
    if current is None:
        return None
    owner = owner_of(current)
    if owner is None and not op.adopting:
        return OwnershipConflict(
            f"gateway {gateway}: a service with id {service_id} already exists and is not managed by Torii; Torii "
            "leaves it alone (remove it, or adopt it with spec.adopt where the platform allows adoption)"
        )
    if owner is not None and owner != owner_of(core(op.desired)):
        return OwnershipConflict(
            f"gateway {gateway}: the service this object would manage is managed by another Torii object; Torii "
            "leaves it alone"
        )
    return None


def in_sync(desired: dict[str, Any], current: dict[str, Any] | None) -> bool:
    """`current` is a core() view of the stored service."""
    if current is None:
        return False
    want, have = core(desired), dict(current)
    # Otoroshi stores targets with many defaulted fields: compare only what Torii sets.
    want_targets, have_targets = want.pop("targets") or [], have.pop("targets") or []
    return want == have and is_subset(want_targets, have_targets)


def route(state: dict[str, Any]) -> str | None:
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


@dataclass(frozen=True)
class Put:
    """Make the gateway store and route `desired` (a rendered service with its fingerprint)."""

    desired: dict[str, Any]
    max_age: float = 0.0  # how old a view of the gateway may be for deciding "already in sync"
    adopting: bool = False  # a service that existed before Torii (spec.adopt, granted by the policy)


@dataclass(frozen=True)
class Remove:
    """Make the gateway hold no service under this id, and its proxy route nothing for it; a service whose
    owner record names another object (or nothing) is left alone."""

    owner: tuple[str, str] | None = None


@dataclass(frozen=True)
class Applied:
    changed: bool
    created: bool = False
    written_at: float = 0.0
    probe: tuple[str, str, bool] | None = None  # (host, path, should the proxy route it) after the state sync


VANISHED_CHECK_SECONDS = 5.0  # while the proxy does not route a written path, look at the admin API this often
SMALL_BATCH = 8  # up to this many objects, read one by one rather than listing every service
Probe = Callable[[str, str], Awaitable[bool]]  # does the proxy route this path on this host?


class OtoroshiServiceSync:
    def __init__(
        self,
        name: str,
        http: AdminClient,
        routed: Probe,
        *,
        state_sync_seconds: float,
        serve_timeout: float,
        quiet: float = 0.25,
        max_delay: float = 2.0,
        concurrency: int = 16,
    ) -> None:
        self.name = name
        self._http = http
        self._routed = routed
        self._state_sync_seconds = state_sync_seconds
        self._serve_timeout = serve_timeout
        self._limit = asyncio.Semaphore(concurrency)
        self._batcher: Batcher[str, Put | Remove, Applied] = Batcher(
            self._sync, quiet=quiet, max_delay=max_delay, name=f"otoroshi-sync-{name}"
        )
        self._view: dict[str, dict[str, Any]] = {}
        self._view_at = float("-inf")

    async def put(
        self, service_id: str, desired: dict[str, Any], *, max_age: float = 0.0, adopting: bool = False
    ) -> Applied:
        applied = await self._batcher.submit(service_id, Put(desired, max_age, adopting))
        return await self._settled(service_id, applied)

    async def remove(self, service_id: str, owner: tuple[str, str]) -> bool:
        return (await self._settled(service_id, await self._batcher.submit(service_id, Remove(owner)))).changed

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
                if await self._get(service_id) is None:
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

    async def list_services(self) -> dict[str, dict[str, Any]]:
        """Every stored service, by id, as core() views."""
        started = time.monotonic()
        views = await self._http.list_items(
            "/api/services", op="list services", keep=lambda s: core(s) if s.get("id") else None
        )
        self._view = {v["id"]: v for v in views}
        self._view_at = started
        return self._view

    async def _read(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The current state of `ids`: one GET each for a few objects among many (a single change must not
        download every service), otherwise one list of all."""
        if len(ids) > SMALL_BATCH or len(self._view) < 4 * len(ids):
            return dict(await self.list_services())
        states = await asyncio.gather(*(self._get(i) for i in ids))
        for service_id, state in zip(ids, states, strict=True):
            if state is None:
                self._view.pop(service_id, None)
            else:
                self._view[service_id] = state
        return {i: state for i, state in zip(ids, states, strict=True) if state is not None}

    async def _get(self, service_id: str) -> dict[str, Any] | None:
        async with self._limit:
            response = await self._http.request(
                "GET", admin_path("/api/services/{}", service_id), op="get service", passthrough=(404,)
            )
        return core(response.json()) if response.status_code == 200 else None

    async def _sync(self, ops: dict[str, Put | Remove]) -> Mapping[str, Applied | BaseException]:
        fresh_enough = all(isinstance(op, Put) and op.max_age > 0 for op in ops.values()) and (
            time.monotonic() - self._view_at <= min(op.max_age for op in ops.values() if isinstance(op, Put))
        )
        before = dict(self._view) if fresh_enough else await self._read(list(ops))
        # Ownership first: an op refused for it neither takes nor frees a path (an adoption of another object's id
        # must not push that object's path out of the conflict check).
        results: dict[str, Applied | BaseException] = {
            i: refused for i, op in ops.items()
            if isinstance(op, Put) and (refused := claim_refused(self.name, i, op, before.get(i))) is not None
        }  # fmt: skip
        results |= self._conflicts({i: op for i, op in ops.items() if i not in results}, before)
        writes: dict[str, Awaitable[dict[str, Any] | None]] = {}
        for service_id, op in ops.items():
            if service_id in results:
                continue
            current = before.get(service_id)
            if isinstance(op, Put):
                if in_sync(op.desired, current):
                    results[service_id] = Applied(changed=False)
                else:
                    writes[service_id] = self._write(service_id, op.desired, exists=current is not None)
            elif current is not None and owner_of(current) == op.owner:
                writes[service_id] = self._delete(service_id)
            elif current is not None:
                # Not this object's service: never deleted by it (the deletion is released, the service left).
                results[service_id] = OwnershipConflict(
                    f"gateway {self.name}: the service under this id belongs to another object; Torii leaves it alone"
                )
            else:
                results[service_id] = Applied(changed=False)
        if not writes:
            return results
        outcomes = await asyncio.gather(*writes.values(), return_exceptions=True)
        written_at = time.monotonic()
        for service_id, outcome in zip(writes, outcomes, strict=True):
            op = ops[service_id]
            if isinstance(outcome, BaseException):
                results[service_id] = outcome
                continue
            probe: tuple[str, str, bool] | None = None
            if isinstance(op, Put):
                if outcome is None or not in_sync(op.desired, core(outcome)):
                    results[service_id] = RetryableGatewayError(
                        f"gateway {self.name}: service {service_id} not stored as sent"
                    )
                    continue
                self._view[service_id] = core(outcome)
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

    def _conflicts(self, ops: dict[str, Put | Remove], before: dict[str, dict[str, Any]]) -> dict[str, GatewayError]:
        views = {**self._view, **before}
        wanted = {i: route(core(op.desired)) for i, op in ops.items() if isinstance(op, Put)}
        current = {i: route(v) for i, v in views.items()}
        # Only a removal that will happen frees a path (one of another object's API is left alone).
        freed = {i for i, op in ops.items() if isinstance(op, Remove) and owner_of(views.get(i)) == op.owner}
        namespaces = {i: (owner_of(v) or (None, None))[0] for i, v in views.items()}
        namespaces |= {
            i: (owner_of(core(op.desired)) or (None, None))[0] for i, op in ops.items() if isinstance(op, Put)
        }
        conflicts = path_conflicts({i: p for i, p in wanted.items() if p is not None}, current, freed, namespaces)
        return {
            service_id: ListenPathConflict(
                conflict_message(self.name, "service", conflict, namespaces, namespaces.get(service_id))
            )
            for service_id, conflict in conflicts.items()
        }

    async def _probe(self, path: str, host: str) -> bool:
        async with self._limit:
            return await self._routed(path, host)

    async def _write(self, service_id: str, desired: dict[str, Any], *, exists: bool) -> dict[str, Any] | None:
        """The service as stored (both write answers carry it, verified on 17.17)."""
        async with self._limit:
            if not exists:
                try:
                    response = await self._http.request("POST", "/api/services", op="create service", json=desired)
                    return _entity(response.json())
                except PermanentGatewayError as exc:
                    # Created concurrently (or by an attempt whose answer was lost): update instead.
                    if "already exists" not in exc.message:
                        raise
            response = await self._http.request(
                "PUT", admin_path("/api/services/{}", service_id), op="update service", json=desired
            )
            return _entity(response.json())

    async def _delete(self, service_id: str) -> None:
        async with self._limit:
            await self._http.request(
                "DELETE", admin_path("/api/services/{}", service_id), op="delete service", passthrough=(404,)
            )


def _entity(body: Any) -> dict[str, Any] | None:
    return body if isinstance(body, dict) else None
