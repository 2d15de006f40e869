"""The burst-sync core both gateways use for the objects they converge in bursts (Tyk API definitions, Otoroshi
services): one read of the gateway, only the writes that differ, then the gateway's own way of confirming what
it serves. `tyk_sync` and `otoroshi_sync` supply the hooks; everything else is here, once.

Per burst of B objects: one list of every object (or one GET each for a few among many: a single change must
not download every definition), a write or delete for each object that differs (at most `concurrency` at
once), nothing for those already in sync. A drift pass may accept a view up to `max_age` seconds old, so N
drift checks in one interval cost a list call or two in all, not N reads; a view's age is stamped BEFORE the
list that makes it (a change that lands while the list streams in is never taken for "seen").

Before any write, in this order: ownership (an object whose owner record names another Torii object, or no
owner where Torii does not adopt, is refused and neither takes nor frees a path), then routes (a path held by
another object, or overlapping another namespace's, is refused: `batch.path_conflicts`). Objects of another
kind the gateway routes alongside (`neighbours`: Otoroshi services beside routes) hold their paths too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from torii.gateways.batch import Batcher, conflict_message, path_conflicts
from torii.gateways.errors import GatewayError, ListenPathConflict, OwnershipConflict
from torii.gateways.http import AdminClient

log = logging.getLogger("torii.burst")
View = dict[str, Any]  # the core fields of one gateway object, and its owner record ("owner": (ns, name) | None)
Owner = tuple[str, str]
SMALL_BATCH = 8  # up to this many objects among many more are read one by one
FEW_RATIO = 4  # "many more": the view holds at least this many times the burst
# A big burst that follows another decides on the list the previous one made to confirm its work, if that list
# started at most this long ago. During a long apply every burst otherwise listed every object twice (before its
# writes, and after them to confirm), and parsing those lists was 14% of the operator's CPU in a 1000-object
# apply (py-spy). What Torii wrote is in that list; what someone else changed in these seconds is not, as with a
# drift pass's `max_age` (a hand-made object under Torii's deterministic id cannot be told from Torii's own).
FOLLOW_ON_AGE = 2.0


@dataclass(frozen=True)
class Put:
    """Make the gateway serve `desired` (a rendered object with its fingerprint and owner record)."""

    desired: dict[str, Any]
    max_age: float = 0.0  # how old a view may be for deciding "already in sync" (0: read afresh; see FOLLOW_ON_AGE)
    adopting: bool = False  # an object that existed before Torii (spec.adopt, granted by the policy)


@dataclass(frozen=True)
class Remove:
    """Make the gateway hold nothing under this id. `owner`: (namespace, name) of the object removing it (one
    whose record names anything else is left alone). `settled`: an id the gateway does not hold needs nothing
    (otherwise the gateway may confirm that nothing is left, e.g. Tyk reloads a definition file left behind)."""

    owner: Owner | None = None
    settled: bool = False
    confirm: bool = True  # wait until the gateway stops serving it (not when another object takes its path over)


@dataclass(frozen=True)
class Applied:
    changed: bool
    created: bool = False
    written_at: float = 0.0
    probe: tuple[str, str, bool] | None = None  # (host, path, should it be routed) to confirm after the burst


@dataclass(frozen=True)
class Neighbour:
    """An object of another kind that takes a route from the same gateway (`BurstSync.neighbours`)."""

    what: str  # how messages name one ("service")
    object_id: str
    route: str | None
    owner: Owner | None


Op = Put | Remove
Results = dict[str, Applied | BaseException]


def owner_of(view: View | None) -> Owner | None:
    owner = (view or {}).get("owner")
    return (str(owner[0]), str(owner[1])) if owner else None


class BurstSync(ABC):
    """One gateway connection's objects of one kind, converged in bursts. Subclasses supply the hooks."""

    what: str  # "API", "service": how messages name one
    id_field: str  # the id field of a listed object
    list_path: str

    def __init__(self, name: str, http: AdminClient, *, quiet: float, max_delay: float, concurrency: int = 16) -> None:
        self.name = name
        self._http = http
        self._limit = asyncio.Semaphore(concurrency)
        self._batcher: Batcher[str, Op, Applied] = Batcher(
            self._sync, quiet=quiet, max_delay=max_delay, name=f"{type(self).__name__}-{name}"
        )
        self._view: dict[str, View] = {}
        self._view_at = float("-inf")

    # ------------------------------------------------------------------------------------------------ hooks

    @abstractmethod
    def core(self, body: dict[str, Any]) -> View:
        """The fields the in-sync check compares and the owner record (all the view keeps of an object)."""

    @abstractmethod
    def route(self, view: View) -> str | None:
        """What the object takes from the gateway's routing (a listen path, a host and path); None: nothing."""

    @abstractmethod
    def get_path(self, object_id: str) -> str: ...

    @abstractmethod
    async def write(self, object_id: str, desired: dict[str, Any], *, exists: bool) -> View | None:
        """Write one object; the stored view when the answer carries it."""

    @abstractmethod
    async def delete(self, object_id: str) -> None: ...

    @abstractmethod
    async def finish(self, ops: dict[str, Op], before: dict[str, View], written: dict[str, View | None],
                     results: Results) -> Results:  # fmt: skip
        """Complete the burst once its writes are done: confirm what the gateway serves, answer every op that
        `results` does not answer yet. `written`: the ids written (with their stored views)."""

    async def neighbours(self, claims: dict[str, str]) -> dict[str, Neighbour]:
        """Objects of another kind the gateway routes on the same paths, for a burst that claims new paths
        (`claims`: {id: route}). Keys are never ids of this kind. None by default."""
        return {}

    def in_sync(self, desired: dict[str, Any], current: View | None) -> bool:
        return current is not None and self.core(desired) == current

    def refused(self, object_id: str, op: Put, current: View | None) -> GatewayError | None:
        """A gateway's own reason not to write `op` over `current` (None: none)."""
        return None

    # ------------------------------------------------------------------------------------------------ reads

    async def submit(self, object_id: str, op: Op) -> Applied:
        return await self._batcher.submit(object_id, op)

    async def list_all(self) -> dict[str, View]:
        """Every object of the kind on the gateway, by id, as views."""
        started = time.monotonic()
        views = await self._http.list_items(
            self.list_path, op=f"list {self.what}s", keep=lambda b: self.core(b) if b.get(self.id_field) else None
        )
        self._view = {v[self.id_field]: v for v in views}
        self._view_at = started
        return self._view

    @property
    def view(self) -> Mapping[str, View]:
        """The last view of the gateway's objects (no call)."""
        return self._view

    def forget(self) -> None:
        """Drop the view: the next burst reads the gateway (it lost state, or came back from an outage)."""
        self._view, self._view_at = {}, float("-inf")

    def few(self, ids: list[str] | set[str]) -> bool:
        return len(ids) <= SMALL_BATCH and len(self._view) >= FEW_RATIO * len(ids)

    async def read(self, ids: list[str] | set[str]) -> dict[str, View]:
        """The current state of `ids`: one GET each for a few among many, otherwise one list of all."""
        if not self.few(ids):
            return dict(await self.list_all())
        order = list(ids)
        states = await asyncio.gather(*(self.get(i) for i in order))
        for object_id, state in zip(order, states, strict=True):
            if state is None:
                self._view.pop(object_id, None)
            else:
                self._view[object_id] = state
        return {i: state for i, state in zip(order, states, strict=True) if state is not None}

    async def get(self, object_id: str) -> View | None:
        async with self._limit:
            response = await self._http.request(
                "GET", self.get_path(object_id), op=f"get {self.what}", passthrough=(404,)
            )
        body = response.json() if response.status_code == 200 else None
        return self.core(body) if isinstance(body, dict) and body.get(self.id_field) else None

    def _stale(self, ops: dict[str, Op]) -> list[str]:
        """The ops that must be decided on a read of the gateway made now; the others accept the current view.
        Decided per op: a change that lands among a drift pass's checks (which accept a view `max_age` old) is
        read with one GET, not with a list of every object (at 10,000 Otoroshi routes, 2-3 s per list)."""
        age = time.monotonic() - self._view_at
        follow_on = age <= FOLLOW_ON_AGE and len(ops) > SMALL_BATCH  # (a small burst reads afresh: a few GETs)

        def accepts_view(op: Op) -> bool:
            if isinstance(op, Put) and op.adopting:
                return False  # taking over what someone else made: decided on the gateway's answer of now
            return follow_on or (isinstance(op, Put) and bool(op.max_age) and age <= op.max_age)

        return [i for i, op in ops.items() if not accepts_view(op)]

    # ------------------------------------------------------------------------------------------------ a burst

    async def _sync(self, ops: dict[str, Op]) -> Mapping[str, Applied | BaseException]:
        # Timed in the debug log: where a slow burst spends its time (writes, or the gateway's confirmation).
        started = time.monotonic()
        try:
            return await self._burst(ops)
        finally:
            log.debug("gateway %s: burst of %d %ss in %.2fs", self.name, len(ops), self.what,
                      time.monotonic() - started)  # fmt: skip

    async def _burst(self, ops: dict[str, Op]) -> Mapping[str, Applied | BaseException]:
        if stale := self._stale(ops):
            await self.read(stale)  # brings the view up to date for them (one GET each for a few, else a list)
        before = dict(self._view)
        # Ownership first: an op refused for it neither takes nor frees a path (an adoption of another object's
        # id must not push that object's path out of the conflict check).
        results: Results = {
            i: refused for i, op in ops.items()
            if isinstance(op, Put) and (refused := self.claim_refused(i, op, before.get(i))) is not None
        }  # fmt: skip
        remaining = {i: op for i, op in ops.items() if i not in results}
        results |= self._conflicts(remaining, before, await self.neighbours(self._claims(remaining, before)))
        writes: dict[str, Awaitable[View | None]] = {}
        for object_id, op in ops.items():
            if object_id not in results:
                decided = self._decide(object_id, op, before.get(object_id))
                if isinstance(decided, Applied | BaseException):
                    results[object_id] = decided
                elif decided is not None:
                    writes[object_id] = decided
        writing = time.monotonic()
        outcomes = await asyncio.gather(*writes.values(), return_exceptions=True)
        log.debug("gateway %s: %d writes in %.2fs", self.name, len(writes), time.monotonic() - writing)
        written: dict[str, View | None] = {}
        for object_id, outcome in zip(writes, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                results[object_id] = outcome
            else:
                written[object_id] = outcome
        return await self.finish(ops, before, written, results)

    def _decide(
        self, object_id: str, op: Op, current: View | None
    ) -> Applied | GatewayError | Awaitable[View | None] | None:
        """What one op needs: an answer now, a write, or (None) the gateway's confirmation in `finish`."""
        if isinstance(op, Put):
            if (refused := self.refused(object_id, op, current)) is not None:
                return refused
            if self.in_sync(op.desired, current):
                return Applied(changed=False)
            return self._limited(self.write(object_id, op.desired, exists=current is not None))
        if current is None:
            return Applied(changed=False) if op.settled else None
        if owner_of(current) != op.owner:
            # Not this object's: never deleted by it (the deletion is released, the object left as it is).
            return OwnershipConflict(
                f"gateway {self.name}: the {self.what} under this id belongs to another object; Torii leaves it alone"
            )
        return self._limited(self._deleted(object_id))

    async def _limited(self, call: Awaitable[View | None]) -> View | None:
        async with self._limit:
            return await call

    async def _deleted(self, object_id: str) -> View | None:
        await self.delete(object_id)
        return None

    def claim_refused(self, object_id: str, op: Put, current: View | None) -> GatewayError | None:
        """Why `op` may not write over `current` (None: it may). An object with another object's owner record
        is never taken; one with none (made by hand, by another tool) only by spec.adopt, which the policy
        granted. The message names neither the other object nor its namespace."""
        if current is None:
            return None
        owner = owner_of(current)
        if owner is None and not op.adopting:
            return OwnershipConflict(
                f"gateway {self.name}: a {self.what} with id {object_id} already exists and is not managed by "
                "Torii; Torii leaves it alone (remove it, or adopt it with spec.adopt where the platform allows "
                "adoption)"
            )
        if owner is not None and owner != owner_of(self.core(op.desired)):
            return OwnershipConflict(
                f"gateway {self.name}: the {self.what} this object would manage is managed by another Torii "
                "object; Torii leaves it alone"
            )
        return None

    def _wanted(self, ops: dict[str, Op]) -> dict[str, str]:
        return {i: r for i, op in ops.items() if isinstance(op, Put) and (r := self.route(self.core(op.desired)))}

    def _claims(self, ops: dict[str, Op], before: dict[str, View]) -> dict[str, str]:
        """The routes of `ops` their objects do not hold yet."""
        views = {**self._view, **before}
        return {i: r for i, r in self._wanted(ops).items() if i not in views or self.route(views[i]) != r}

    def _conflicts(
        self, ops: dict[str, Op], before: dict[str, View], neighbours: dict[str, Neighbour]
    ) -> dict[str, GatewayError]:
        views = {**self._view, **before}
        wanted = self._wanted(ops)
        current = {i: self.route(v) for i, v in views.items()}
        # Only a removal that will happen frees a path (one of another object's is left alone).
        freed = {i for i, op in ops.items() if isinstance(op, Remove) and owner_of(views.get(i)) == op.owner}
        owners = {i: owner_of(v) for i, v in views.items()}
        owners |= {i: owner_of(self.core(op.desired)) for i, op in ops.items() if isinstance(op, Put)}
        # Paths this kind holds and keeps through the burst (not given up, not moved away).
        held = {r for i, r in current.items() if r and i not in freed and wanted.get(i, r) == r}
        for key, other in neighbours.items():
            # Not the same object's view of the other kind (what a switch of kind leaves, retired once this one
            # serves), nor a path one of ours keeps (it was there first, or took the path over).
            mine = other.owner is not None and owners.get(other.object_id) == other.owner
            if mine or other.route in held:
                continue
            current[key], owners[key] = other.route, other.owner
        namespaces = {i: (o or (None, None))[0] for i, o in owners.items()}
        refused: dict[str, GatewayError] = {}
        for object_id, conflict in path_conflicts(wanted, current, freed, namespaces).items():
            what, found = self.what, conflict
            if (holder := neighbours.get(conflict.holder)) is not None:  # named by its own kind and id
                what, found = holder.what, replace(conflict, holder=holder.object_id)
                namespaces = {**namespaces, holder.object_id: namespaces[conflict.holder]}
            message = conflict_message(self.name, what, found, namespaces, namespaces.get(object_id))
            refused[object_id] = ListenPathConflict(message)
        return refused
