"""The batcher: one `process` call per burst, every caller answered with its own result, never with work that
started before its request."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from torii.gateways.batch import Batcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[dict[str, int]] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.fail: set[str] = set()
        self.crash = False

    async def __call__(self, ops: dict[str, int]) -> Mapping[str, int | BaseException]:
        self.batches.append(dict(ops))
        self.started.set()
        await self.release.wait()
        if self.crash:
            raise RuntimeError("gateway down")
        return {k: (ValueError(k) if k in self.fail else v * 10) for k, v in ops.items()}


async def test_a_burst_of_fifty_requests_is_one_batch_with_each_result() -> None:
    rec = Recorder()
    batcher: Batcher[str, int, int] = Batcher(rec, quiet=0.05, max_delay=1.0)
    results = await asyncio.gather(*(batcher.submit(f"k{i}", i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert len(rec.batches) == 1 and batcher.batches == 1


async def test_the_latest_op_for_a_key_wins_and_answers_both_callers() -> None:
    rec = Recorder()
    batcher: Batcher[str, int, int] = Batcher(rec, quiet=0.05, max_delay=1.0)
    assert await asyncio.gather(batcher.submit("a", 1), batcher.submit("a", 2)) == [20, 20]
    assert rec.batches == [{"a": 2}]


async def test_a_request_during_a_batch_waits_for_the_next_one() -> None:
    rec = Recorder()
    rec.release.clear()
    batcher: Batcher[str, int, int] = Batcher(rec, quiet=0.01, max_delay=0.5)
    first = asyncio.create_task(batcher.submit("a", 1))
    await rec.started.wait()  # batch 1 runs: a change made now is not covered by it
    second = asyncio.create_task(batcher.submit("a", 2))
    rec.release.set()
    assert await first == 10
    assert await second == 20
    assert rec.batches == [{"a": 1}, {"a": 2}]


async def test_one_keys_failure_is_its_own_and_a_crash_fails_only_its_batch() -> None:
    rec = Recorder()
    rec.fail = {"bad"}
    batcher: Batcher[str, int, int] = Batcher(rec, quiet=0.01, max_delay=0.5)
    good, bad = await asyncio.gather(batcher.submit("good", 1), batcher.submit("bad", 2), return_exceptions=True)
    assert good == 10 and isinstance(bad, ValueError)
    rec.crash = True
    crashed = await asyncio.gather(batcher.submit("x", 1), batcher.submit("y", 1), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in crashed)
    rec.crash = False
    assert await batcher.submit("x", 3) == 30  # the next batch is unaffected


class Clock:
    """Time the test moves itself: the batcher's sleeps end when the test has advanced past them."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, future in [s for s in self.sleepers if s[0] <= self.now]:
            self.sleepers.remove((due, future))
            future.set_result(None)
        for _ in range(10):  # let the woken batcher run its batch and re-arm
            await asyncio.sleep(0)


async def test_max_delay_bounds_a_never_ending_burst() -> None:
    rec, clock = Recorder(), Clock()
    # Binary fractions: the batcher's deadlines are exact, whatever the order of float additions.
    batcher: Batcher[str, int, int] = Batcher(rec, quiet=0.25, max_delay=0.375, clock=clock, sleep=clock.sleep)
    waiters = []
    for i in range(8):  # a request every 0.125 s: each renews the quiet period, never 0.25 s of quiet
        waiters.append(asyncio.ensure_future(batcher.submit(f"k{i}", i)))
        await asyncio.sleep(0)
        await clock.advance(0.125)
    await clock.advance(1.0)
    await asyncio.gather(*waiters)
    # Without max_delay the trickle would postpone the batch until it stops; with it, a batch runs every 0.375 s.
    assert [sorted(b) for b in rec.batches] == [["k0", "k1", "k2"], ["k3", "k4", "k5"], ["k6", "k7"]]


def test_path_conflicts_keep_the_holder_and_order_newcomers_by_key() -> None:
    from torii.gateways.batch import path_conflicts

    current = {"held": "/a/", "foreign": "/f/", "leaving": "/l/", "mover": "/m/"}
    wanted = {"held": "/a/", "new-b": "/a/", "new-z": "/n/", "new-y": "/n/", "x": "/f/", "y": "/l/", "mover": "/m2/"}
    got = path_conflicts(wanted, current, freed={"leaving"})
    assert {k: (c.path, c.holder, c.overlap) for k, c in got.items()} == {
        "new-b": ("/a/", "held", False),  # the object already serving a path keeps it
        "new-z": ("/n/", "new-y", False),  # two newcomers: the first in sorted order wins, whatever arrived first
        "x": ("/f/", "foreign", False),  # an object Torii does not manage holds its path too
    }
    # "y" takes a path given up in the same burst; "mover" frees /m/ and takes /m2/.
    assert {k: c.holder for k, c in path_conflicts({"z": "/m/"}, current, freed=set()).items()} == {"z": "mover"}


def test_paths_overlapping_another_namespace_are_refused_within_one_namespace_allowed() -> None:
    from torii.gateways.batch import path_conflicts

    current = {"b-pay": "/payments/", "b-root": "/b/", "foreign": "/", "a-old": "/a/"}
    namespaces = {"b-pay": "b", "b-root": "b", "foreign": None, "a-old": "a", "a-under": "a", "a-above": "a",
                  "a-own": "a", "b-under": "b", "a-free": "a", "a-next": "a"}  # fmt: skip
    wanted = {
        "a-under": "/payments/v2/",  # under B's /payments/: would take part of B's traffic
        "a-above": "/pay",  # a prefix of B's path
        "a-own": "/a/v2/",  # under its own namespace's path: allowed
        "b-under": "/b/x/",  # B under B: allowed
        "a-free": "/other/",  # under only a foreign catch-all (exact conflicts only for foreign APIs)
        "a-next": "/paymentsx/",  # shares characters, no prefix relation with /payments/: allowed
    }
    got = path_conflicts(wanted, current, set(), namespaces)
    assert {k: (c.holder, c.overlap) for k, c in got.items()} == {
        "a-under": ("b-pay", True), "a-above": ("b-pay", True),
    }  # fmt: skip
    # Between newcomers of two namespaces in one burst, the first in sorted order keeps its path.
    burst = path_conflicts({"a1": "/x/", "b1": "/x/y/"}, {}, set(), {"a1": "a", "b1": "b"})
    assert {k: c.holder for k, c in burst.items()} == {"b1": "a1"}
