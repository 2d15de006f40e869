"""Bursts of per-object requests, handed to the gateway as one batch.

A gateway holds one configuration and (Tyk) reloads it as a whole, so converging N objects one by one costs N
reads, N writes and, without care, N reloads. Callers `await batcher.submit(key, op)`; the batcher waits until
the burst goes quiet (or a maximum delay passes), then calls `process` ONCE with every pending request (the
latest op per key) and answers each caller with its own result. A request made while a batch runs goes into
the next batch: it is never answered by work that started before it.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
Op = TypeVar("Op")
R = TypeVar("R")


class Batcher(Generic[K, Op, R]):
    """`process` gets {key: latest op} and returns, per key, its result or the exception that key failed with
    (one object's failure is never another's)."""

    def __init__(
        self,
        process: Callable[[dict[K, Op]], Awaitable[Mapping[K, R | BaseException]]],
        *,
        quiet: float = 0.25,
        max_delay: float = 2.0,
        name: str = "batcher",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._process = process
        self._clock, self._sleep = clock, sleep  # injectable: tests drive time themselves
        self._quiet = quiet
        self._max_delay = max_delay
        self._name = name
        self._ops: dict[K, Op] = {}
        self._waiters: dict[K, list[asyncio.Future[R]]] = {}
        self._first = 0.0
        self._last = 0.0
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0

    async def submit(self, key: K, op: Op) -> R:
        """The result of the first batch that started after this call and holds `op` (or a later op for
        `key`, which supersedes it: both callers get its result)."""
        now = self._clock()
        if not self._ops:
            self._first = now
        self._last = now
        self._ops[key] = op
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        # Mark a failure as seen even when the waiter was cancelled (no "exception never retrieved" noise).
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._waiters.setdefault(key, []).append(future)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name=self._name)
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while self._ops:
            # A debounce deadline that moves with each request, bounded by max_delay: not a flag to poll.
            while (wait := self._wait_left()) > 0:
                await self._sleep(wait)
            ops, self._ops = self._ops, {}
            waiters, self._waiters = self._waiters, {}
            self.batches += 1
            try:
                results: Mapping[K, R | BaseException] = await self._process(ops)
            except Exception as exc:
                results = dict.fromkeys(ops, exc)
            for key, futures in waiters.items():
                outcome = results.get(key, RuntimeError(f"{self._name}: no result for {key!r}"))
                for future in futures:
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)

    def _wait_left(self) -> float:
        now = self._clock()
        return min(self._last + self._quiet - now, self._first + self._max_delay - now)


@dataclass(frozen=True)
class PathConflict(Generic[K]):
    path: str
    holder: K
    overlap: bool = False  # not the same path: one is a prefix of the other, across namespaces


def path_conflicts(
    wanted: Mapping[K, str],
    current: Mapping[K, str | None],
    freed: set[K],
    namespaces: Mapping[K, str | None] | None = None,
) -> dict[K, PathConflict[K]]:
    """Which objects of a burst would take a path another object holds: {key: conflict}.

    `wanted`: the path each object of the burst asks for; `current`: the path each object on the gateway holds
    now (the burst's own objects included); `freed`: objects whose path the burst gives up. An object keeps a
    path it holds already; among newcomers to the same path the first key in sorted order wins, so the outcome
    does not depend on arrival order. Two objects never serve one path: gateways route it to one at random.

    `namespaces`: the namespace each object belongs to (None: not a Torii object). A path that is a prefix of,
    or lies under, a path of another namespace's object is refused too: gateways route the longest matching
    prefix, so `/payments/v2/` would take part of another tenant's `/payments/` traffic."""
    ns = namespaces or {}
    holders: dict[str, K] = {
        path: key for key, path in current.items() if path and key not in wanted and key not in freed
    }
    ordered = sorted(holders)  # every held path, for the "lies under me" search
    conflicts: dict[K, PathConflict[K]] = {}
    order = sorted(wanted, key=lambda k: (current.get(k) != wanted[k], str(k)))
    for key in order:
        path = wanted[key]
        holder = holders.setdefault(path, key)
        if holder != key:
            conflicts[key] = PathConflict(path, holder)
            continue
        other = overlapping(path, key, holders, ordered, ns) if ns.get(key) is not None else None
        if other is not None:
            del holders[path]
            conflicts[key] = PathConflict(path, other, overlap=True)
            continue
        bisect.insort(ordered, path)
    return conflicts


def overlapping(path: str, key: K, holders: dict[str, K], ordered: list[str], ns: Mapping[K, str | None]) -> K | None:
    """A holder of another namespace whose path is a prefix of `path`, or lies under it (None: none)."""
    mine = ns.get(key)

    def foreign(holder: K) -> bool:
        return ns.get(holder) is not None and ns.get(holder) != mine

    for end in range(1, len(path)):
        holder = holders.get(path[:end])
        if holder is not None and foreign(holder):
            return holder
    for i in range(bisect.bisect_right(ordered, path), len(ordered)):
        if not ordered[i].startswith(path):
            break
        if foreign(holders[ordered[i]]):
            return holders[ordered[i]]
    return None


def conflict_message(gateway: str, what: str, conflict: PathConflict[K], namespaces: Mapping[K, str | None],
                     mine: str | None = None) -> str:  # fmt: skip
    """What a refused object is told: the holder is named only when it is of the same namespace (never another
    tenant's names or ids)."""
    if conflict.overlap:
        return (
            f"gateway {gateway}: spec.listenPath {conflict.path} overlaps a path another namespace serves on this "
            "gateway (one is a prefix of the other); choose a path outside it"
        )
    holder_ns = namespaces.get(conflict.holder)
    if mine is not None and holder_ns == mine:
        holder = f"{what} {conflict.holder} of this namespace"
    else:
        holder = f"another {what} (of another namespace, or not managed by Torii)"
    return f"gateway {gateway}: spec.listenPath {conflict.path} is already served by {holder}; choose another path"
