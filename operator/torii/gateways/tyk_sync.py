"""Tyk API definitions converged in bursts: one list before, only the writes that differ, one reload, one list
after. This is where the Tyk driver's GatewayAPI work goes (`TykDriver.converge_api/delete_api` submit here).

Per burst of B objects: `GET /tyk/apis/` once, `POST /tyk/apis/` or `DELETE /tyk/apis/{id}` for each object that
differs (at most `concurrency` at once), one reload, `GET /tyk/apis/` once more to confirm what is served.
So ~1 admin call per changed object and none per unchanged one, instead of 3 per object, and one reload per
burst. A drift pass may accept a view of the gateway up to `max_age` seconds old: N drift checks in one
interval then cost a couple of list calls in all, not N reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torii.gateways.base import pick
from torii.gateways.batch import Batcher, conflict_message, path_conflicts
from torii.gateways.errors import (
    GatewayError,
    ListenPathConflict,
    OwnershipConflict,
    PermanentGatewayError,
    RetryableGatewayError,
)
from torii.gateways.http import AdminClient, admin_path

# The owner record Torii writes into every API it manages (config_data.torii); absent: not Torii's.
OWNER_NAMESPACE, OWNER_NAME = "config_data.torii.namespace", "config_data.torii.name"
SMALL_BATCH = 8  # up to this many objects among many more, read one by one rather than listing every API

# Compared one by one on every drift check: a hand edit of routing, auth or activation is always repaired.
# Everything else is covered by the fingerprint Torii stores in config_data (normalisation-proof).
CORE_FIELDS = (
    "api_id", "org_id", "active", "use_keyless", "use_standard_auth", "use_oauth2",
    "proxy.listen_path", "proxy.target_url", "proxy.strip_listen_path", "config_data.torii.fingerprint",
    OWNER_NAMESPACE, OWNER_NAME,
)  # fmt: skip


@dataclass(frozen=True)
class Put:
    """Make the gateway serve `desired` (a rendered definition with its fingerprint)."""

    desired: dict[str, Any]
    max_age: float = 0.0  # how old a view of the gateway may be for deciding "already in sync"
    adopting: bool = False  # an API that existed before Torii: its org must stay (its keys belong to it)


@dataclass(frozen=True)
class Remove:
    """Make the gateway serve nothing under this id. `settled`: an id that is not loaded needs nothing (a
    drift pass over an inactive API must not reload); otherwise a reload makes sure no definition written just
    before a crash is left to be loaded later. `owner`: (namespace, name) of the object removing it: an API
    whose owner record names anything else (or nothing) is left alone."""

    settled: bool = False
    owner: tuple[str, str] | None = None


def owner_of(view: dict[str, Any] | None) -> tuple[str, str] | None:
    """The (namespace, name) of the Torii object an API belongs to, from a core() view; None: not Torii's."""
    if not view or not view.get(OWNER_NAMESPACE) or not view.get(OWNER_NAME):
        return None
    return str(view[OWNER_NAMESPACE]), str(view[OWNER_NAME])


@dataclass(frozen=True)
class Applied:
    changed: bool
    created: bool = False


def claim_refused(gateway: str, api_id: str, op: Put, current: dict[str, Any] | None) -> GatewayError | None:
    """Why `op` may not write over `current` (None: it may). An API with another object's owner record is never
    taken; one with none (made by hand, by another tool) only by spec.adopt, which the policy granted."""
    if current is None:
        return None
    record = op.desired["config_data"]["torii"]
    owner = owner_of(current)
    if owner is None and not op.adopting:
        return OwnershipConflict(
            f"gateway {gateway}: an API with id {api_id} already exists and is not managed by Torii; Torii leaves "
            "it alone (remove it, or adopt it with spec.adopt where the platform allows adoption)"
        )
    if owner is not None and owner != (record["namespace"], record["name"]):
        return OwnershipConflict(
            f"gateway {gateway}: the API this object would manage is managed by another Torii object; Torii "
            "leaves it alone"
        )
    return None


def core(definition: dict[str, Any]) -> dict[str, Any]:
    """The fields the in-sync check compares; the view of the gateway keeps only these (a list of a thousand
    full definitions is tens of MB of Python objects)."""
    return pick(definition, CORE_FIELDS)


def in_sync(desired: dict[str, Any], current: dict[str, Any] | None) -> bool:
    """`current` is a core() view of what the gateway serves."""
    return current is not None and core(desired) == current


class TykApiSync:
    def __init__(
        self,
        name: str,
        http: AdminClient,
        reload: Callable[[], Awaitable[None]],
        *,
        quiet: float,
        max_delay: float,
        load_timeout: float,
        concurrency: int = 16,
    ) -> None:
        self.name = name
        self._http = http
        self._reload = reload
        self._load_timeout = load_timeout
        self._limit = asyncio.Semaphore(concurrency)
        self._batcher: Batcher[str, Put | Remove, Applied] = Batcher(
            self._sync, quiet=quiet, max_delay=max_delay, name=f"tyk-sync-{name}"
        )
        self._view: dict[str, dict[str, Any]] = {}
        self._view_at = float("-inf")
        self.reloads = 0

    async def apply(self, api_id: str, op: Put | Remove) -> Applied:
        return await self._batcher.submit(api_id, op)

    async def put(
        self, api_id: str, desired: dict[str, Any], *, max_age: float = 0.0, adopting: bool = False
    ) -> Applied:
        return await self.apply(api_id, Put(desired, max_age, adopting))

    async def remove(self, api_id: str, owner: tuple[str, str]) -> bool:
        return (await self.apply(api_id, Remove(owner=owner))).changed

    async def list_apis(self) -> dict[str, dict[str, Any]]:
        """Every API the node serves, by id, as core() views (`GET /tyk/apis/` lists loaded definitions only)."""
        views = await self._http.list_items(
            "/tyk/apis/", op="list APIs", keep=lambda d: core(d) if d.get("api_id") else None
        )
        self._view = {v["api_id"]: v for v in views}
        self._view_at = time.monotonic()
        return self._view

    def _few(self, ids: list[str] | set[str]) -> bool:
        """Few objects among many: read them one by one (a single change must not download every definition:
        at 10,000 APIs a list is 60 MB)."""
        return len(ids) <= SMALL_BATCH and len(self._view) >= 4 * len(ids)

    async def _read(self, ids: list[str] | set[str]) -> dict[str, dict[str, Any]]:
        """The loaded state of `ids` (core() views): one GET each for a few, otherwise one list of all."""
        if not self._few(ids):
            return dict(await self.list_apis())
        order = list(ids)
        states = await asyncio.gather(*(self._get(i) for i in order))
        for api_id, state in zip(order, states, strict=True):
            if state is None:
                self._view.pop(api_id, None)
            else:
                self._view[api_id] = state
        return {i: state for i, state in zip(order, states, strict=True) if state is not None}

    async def _get(self, api_id: str) -> dict[str, Any] | None:
        async with self._limit:
            response = await self._http.request(
                "GET", admin_path("/tyk/apis/{}", api_id), op="get API", passthrough=(404,)
            )
        body = response.json() if response.status_code == 200 else None
        return core(body) if isinstance(body, dict) and body.get("api_id") else None

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
        writes: dict[str, Awaitable[None]] = {}
        unloaded_removals = False
        for api_id, op in ops.items():
            if api_id in results:
                continue
            current = before.get(api_id)
            if isinstance(op, Put):
                if op.adopting and current is not None and current.get("org_id") != op.desired["org_id"]:
                    # Moving it would orphan its keys (Tyk looks keys up per org): say so, write nothing.
                    results[api_id] = PermanentGatewayError(
                        f"gateway {self.name}: API {api_id} belongs to org_id {current.get('org_id')!r}, not "
                        f"{op.desired['org_id']!r}: set spec.adopt.orgId: {current.get('org_id')!r} to keep its "
                        "keys working"
                    )
                elif in_sync(op.desired, current):
                    results[api_id] = Applied(changed=False)
                else:
                    # POST is an upsert of the definition file: create and update alike, so a retry after a
                    # crash or a lost answer never makes a duplicate (the id is deterministic).
                    writes[api_id] = self._write(op.desired)
            elif current is not None and owner_of(current) != op.owner:
                # Not this object's API: never deleted by it (the deletion is released, the API left as it is).
                results[api_id] = OwnershipConflict(
                    f"gateway {self.name}: the API under this id belongs to another object; Torii leaves it alone"
                )
            elif current is not None:
                writes[api_id] = self._delete(api_id)
            elif op.settled:
                results[api_id] = Applied(changed=False)
            else:
                # Not loaded. A definition written just before a crash may still sit in the app directory: the
                # reload below would load it, and the list after it shows it, so it is deleted next time.
                unloaded_removals = True
        outcomes = await asyncio.gather(*writes.values(), return_exceptions=True)
        written = set()
        for api_id, outcome in zip(writes, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                results[api_id] = outcome
            else:
                written.add(api_id)
        if not written and not unloaded_removals:
            return results
        try:
            await self._reload()
            self.reloads += 1
            after = await self._confirmed(ops, written | {i for i, op in ops.items() if isinstance(op, Remove)})
        except GatewayError as exc:
            return {**results, **{i: exc for i in ops if i not in results}}
        for api_id, op in ops.items():
            if api_id in results:
                continue
            served = after.get(api_id)
            if isinstance(op, Remove):
                if served is not None:
                    results[api_id] = RetryableGatewayError(
                        f"gateway {self.name}: API {api_id} still served after delete and reload"
                    )
                else:
                    results[api_id] = Applied(changed=api_id in written)
            elif served is None:
                results[api_id] = RetryableGatewayError(
                    f"gateway {self.name}: API {api_id} written but not loaded after reload"
                )
            elif not in_sync(op.desired, served):
                sent, got = core(op.desired), served
                differing = ", ".join(k for k in CORE_FIELDS if sent[k] != got[k])
                results[api_id] = PermanentGatewayError(
                    f"gateway {self.name}: API {api_id} loaded with other values than sent ({differing}); "
                    "check spec.tyk"
                )
            else:
                results[api_id] = Applied(changed=True, created=before.get(api_id) is None)
        return results

    def _conflicts(self, ops: dict[str, Put | Remove], before: dict[str, dict[str, Any]]) -> dict[str, GatewayError]:
        views = {**self._view, **before}
        wanted = {i: str(op.desired["proxy"]["listen_path"]) for i, op in ops.items() if isinstance(op, Put)}
        current = {i: v.get("proxy.listen_path") for i, v in views.items()}
        # Only a removal that will happen frees a path (one of another object's API is left alone).
        freed = {i for i, op in ops.items() if isinstance(op, Remove) and owner_of(views.get(i)) == op.owner}
        namespaces = {i: (owner_of(v) or (None, None))[0] for i, v in views.items()}
        namespaces |= {
            i: op.desired["config_data"]["torii"]["namespace"] for i, op in ops.items() if isinstance(op, Put)
        }
        return {
            api_id: ListenPathConflict(conflict_message(self.name, "API", conflict, namespaces, namespaces[api_id]))
            for api_id, conflict in path_conflicts(wanted, current, freed, namespaces).items()
        }

    async def _confirmed(self, ops: dict[str, Put | Remove], touched: set[str]) -> dict[str, dict[str, Any]]:
        """The node's APIs once it serves every touched one as asked (a blocking reload: at the first list; a
        group reload: when this node has caught up), or the last list when the time is up."""
        deadline = time.monotonic() + self._load_timeout
        delay = 0.05
        while True:
            after = await self._read(touched)
            done = all(
                (after.get(i) is None) if isinstance(ops[i], Remove) else in_sync(ops[i].desired, after.get(i))  # type: ignore[union-attr]
                for i in touched
            )
            if done or time.monotonic() > deadline:
                return after
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _write(self, desired: dict[str, Any]) -> None:
        async with self._limit:
            await self._http.request("POST", "/tyk/apis/", op="write API", json=desired)

    async def _delete(self, api_id: str) -> None:
        async with self._limit:
            try:
                await self._http.request(
                    "DELETE", admin_path("/tyk/apis/{}", api_id), op="delete API", passthrough=(404,)
                )
            except RetryableGatewayError as exc:
                # A 500 means the file is already gone but the API still loaded (a delete whose reload never
                # happened): the reload finishes that delete.
                if exc.status != 500:
                    raise
