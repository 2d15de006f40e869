"""Tyk API definitions converged in bursts (`burst.BurstSync`): one list before, only the writes that differ,
one reload, one list after. This is where the Tyk driver's GatewayAPI work goes.

Per burst of B objects: `GET /tyk/apis/` once, `POST /tyk/apis/` or `DELETE /tyk/apis/{id}` for each object that
differs, one reload, `GET /tyk/apis/` once more to confirm what is served. So ~1 admin call per changed object
and none per unchanged one, and one reload per burst.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from torii.gateways.base import pick
from torii.gateways.burst import Applied, BurstSync, Op, Put, Remove, Results, View
from torii.gateways.errors import GatewayError, PermanentGatewayError, RetryableGatewayError
from torii.gateways.http import AdminClient, admin_path

# Compared one by one on every drift check: a hand edit of routing, auth or activation is always repaired.
# Everything else is covered by the fingerprint Torii stores in config_data (normalisation-proof).
CORE_FIELDS = (
    "api_id", "org_id", "active", "use_keyless", "use_standard_auth", "use_oauth2",
    "proxy.listen_path", "proxy.target_url", "proxy.strip_listen_path", "config_data.torii.fingerprint",
)  # fmt: skip
# The owner record Torii writes into every API it manages; absent: not Torii's.
OWNER_NAMESPACE, OWNER_NAME = "config_data.torii.namespace", "config_data.torii.name"


def core(definition: dict[str, Any]) -> View:
    """The fields the in-sync check compares and the owner record; the view of the gateway keeps only these
    (a list of a thousand full definitions is tens of MB of Python objects)."""
    owner = pick(definition, (OWNER_NAMESPACE, OWNER_NAME))
    return pick(definition, CORE_FIELDS) | {
        "owner": (owner[OWNER_NAMESPACE], owner[OWNER_NAME]) if all(owner.values()) else None
    }


def in_sync(desired: dict[str, Any], current: View | None) -> bool:
    """`current` is a core() view of what the gateway serves."""
    return current is not None and core(desired) == current


# Tyk serialises its definition writes (each rewrites a file and takes the API lock): measured alone on 2 cores,
# 300 POSTs ran at 362/s one at a time, 515/s four at a time, 303/s at 16 and 95/s at 64.
TYK_WRITE_CONCURRENCY = 4


class TykApiSync(BurstSync):
    what = "API"
    id_field = "api_id"
    list_path = "/tyk/apis/"

    def __init__(
        self, name: str, http: AdminClient, reload: Callable[[], Awaitable[None]], *, quiet: float,
        max_delay: float, load_timeout: float, concurrency: int = TYK_WRITE_CONCURRENCY,
    ) -> None:  # fmt: skip
        super().__init__(name, http, quiet=quiet, max_delay=max_delay, concurrency=concurrency)
        self._reload = reload
        self._load_timeout = load_timeout
        self.reloads = 0

    async def put(
        self, api_id: str, desired: dict[str, Any], *, max_age: float = 0.0, adopting: bool = False
    ) -> Applied:
        return await self.submit(api_id, Put(desired, max_age, adopting))

    async def reload_now(self) -> None:
        """Reload outside a burst: something the definitions name changed without them (a JWT API's policy)."""
        await self._reload()
        self.reloads += 1

    async def remove(self, api_id: str, owner: tuple[str, str]) -> bool:
        return (await self.submit(api_id, Remove(owner))).changed

    def core(self, body: dict[str, Any]) -> View:
        return core(body)

    def route(self, view: View) -> str | None:
        path = view.get("proxy.listen_path")
        return str(path) if path else None

    def get_path(self, object_id: str) -> str:
        return admin_path("/tyk/apis/{}", object_id)

    def refused(self, object_id: str, op: Put, current: View | None) -> GatewayError | None:
        if op.adopting and current is not None and current.get("org_id") != op.desired["org_id"]:
            # Moving it would orphan its keys (Tyk looks keys up per org): say so, write nothing.
            return PermanentGatewayError(
                f"gateway {self.name}: API {object_id} belongs to org_id {current.get('org_id')!r}, not "
                f"{op.desired['org_id']!r}: set spec.adopt.orgId: {current.get('org_id')!r} to keep its keys working"
            )
        return None

    async def write(self, object_id: str, desired: dict[str, Any], *, exists: bool) -> View | None:
        # POST is an upsert of the definition file: create and update alike, so a retry after a crash or a lost
        # answer never makes a duplicate (the id is deterministic). It is loaded at the next reload.
        await self._http.request("POST", "/tyk/apis/", op="write API", json=desired)
        return None

    async def delete(self, object_id: str) -> None:
        try:
            await self._http.request("DELETE", self.get_path(object_id), op="delete API", passthrough=(404,))
        except RetryableGatewayError as exc:
            # A 500 means the file is already gone but the API still loaded (a delete whose reload never
            # happened): the reload finishes that delete.
            if exc.status != 500:
                raise

    async def finish(self, ops: dict[str, Op], before: dict[str, View], written: dict[str, View | None],
                     results: Results) -> Results:  # fmt: skip
        # An id not answered and not written is a removal of an API that is not loaded: a definition written
        # just before a crash may still sit in the app directory; the reload loads it, the list after it shows
        # it, and it is deleted next time.
        unloaded = [i for i in ops if i not in results and i not in written]
        if not written and not unloaded:
            return results
        try:
            await self._reload()
            self.reloads += 1
            # Removals already answered (another object's API, left alone) stay served: waiting for them to go
            # would hold every other op of the burst until the load timeout.
            pending = {i for i, op in ops.items() if isinstance(op, Remove) and i not in results}
            after = await self._confirmed(ops, set(written) | pending)
        except GatewayError as exc:
            return {**results, **{i: exc for i in ops if i not in results}}
        for api_id, op in ops.items():
            if api_id not in results:
                results[api_id] = self._served(api_id, op, after.get(api_id), written, before)
        return results

    def _served(self, api_id: str, op: Op, served: View | None, written: dict[str, View | None],
                before: dict[str, View]) -> Applied | GatewayError:  # fmt: skip
        if isinstance(op, Remove):
            if served is not None:
                return RetryableGatewayError(f"gateway {self.name}: API {api_id} still served after delete and reload")
            return Applied(changed=api_id in written)
        if served is None:
            return RetryableGatewayError(f"gateway {self.name}: API {api_id} written but not loaded after reload")
        if not in_sync(op.desired, served):
            sent = core(op.desired)
            differing = ", ".join(k for k in CORE_FIELDS if sent[k] != served.get(k))
            return PermanentGatewayError(
                f"gateway {self.name}: API {api_id} loaded with other values than sent ({differing}); check spec.tyk"
            )
        return Applied(changed=True, created=before.get(api_id) is None)

    async def _confirmed(self, ops: dict[str, Op], touched: set[str]) -> dict[str, View]:
        """The node's APIs once it serves every touched one as asked (a blocking reload: at the first list; a
        group reload: when this node has caught up), or the last list when the time is up."""
        deadline = time.monotonic() + self._load_timeout
        delay = 0.05
        while True:
            after = await self.read(touched)
            done = all(self._as_asked(ops[i], after.get(i)) for i in touched)
            if done or time.monotonic() > deadline:
                return after
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    @staticmethod
    def _as_asked(op: Op, served: View | None) -> bool:
        return served is None if isinstance(op, Remove) else in_sync(op.desired, served)

    async def list_apis(self) -> dict[str, View]:
        """Every API the node serves, by id (`GET /tyk/apis/` lists loaded definitions only)."""
        return await self.list_all()
