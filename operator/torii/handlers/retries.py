"""Retries of a failed reconcile, run by Torii instead of kopf.

A kopf retry (`TemporaryError(delay=...)`) sleeps out its delay inside the object's kopf worker, holding the
object's body, its worker task and queue, and patches kopf's progress record into the object on every attempt.
During a gateway outage that is every object of the gateway at once: the memory of a burst, for as long as the
outage lasts, and an apiserver write per object per attempt. Here a failed change handler records what the
drift pass needs anyway (`Tracked`), returns, and leaves the next attempt to one timer: a heap of (when, object)
whose due entries are re-converged through the drift check, a few at a time. The delay is the failure's own
policy (`torii.retry`); the attempt count is per object and generation, and any success clears it.

A gateway that answers again is noticed by the first object retried against it, or sooner by the probe: while
objects wait for an unavailable gateway, one cheap call (`GatewayDriver.ping`) every PROBE_EVERY seconds asks
whether it is back. Either way every object still waiting for it is then tried at once, instead of each at its
own time within the UNAVAILABLE cap (20 s): the gateway's burst sync takes them in a few batches.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable

from torii.handlers.drift import Check, CheckPool
from torii.handlers.tracking import Tracker
from torii.retry import RetryPolicy

log = logging.getLogger("torii.retries")

# Does the gateway connection named so ("": the default) answer? One cheap call; False on any failure.
Probe = Callable[[str], Awaitable[bool]]

PROBE_EVERY = 2.0  # seconds between probes of a gateway objects wait for
PROBE_TIMEOUT = 5.0  # a probe unanswered this long is a "no" (a black-holed gateway must not stall the others)
# A gateway that answered a probe is not probed again for this long: if its objects still fail as unavailable
# (the probed call works, theirs do not), they are pulled forward at most this often, like the UNAVAILABLE cap.
PROBE_QUIET = 20.0


class Retries:
    """When each failed object is tried again. `schedule` and `clear` are called by the change handlers and by
    every check; `run` re-converges the due objects through `check` (at most `concurrency` at once)."""

    def __init__(self, *, concurrency: int = 16, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._quiet_until: dict[str, float] = {}  # gateway -> no probe before (it answered one: PROBE_QUIET)
        self._heap: list[tuple[float, int, Tracker, str]] = []
        self._due: dict[str, tuple[float, Tracker]] = {}  # uid -> its next attempt (the heap may hold stale ones)
        self._attempts: dict[str, tuple[int, int]] = {}  # uid -> (generation, attempts made at it so far)
        # gateway -> the objects whose last attempt found it unavailable, and due later
        self._unavailable: dict[str, set[str]] = {}
        self._order = itertools.count()
        self._changed = asyncio.Event()
        self._pool = CheckPool(concurrency, "retry")

    def attempts(self, uid: str, generation: int) -> int:
        seen, made = self._attempts.get(uid, (generation, 0))
        return made if seen == generation else 0  # a new generation starts again

    def schedule(
        self, tracker: Tracker, uid: str, generation: int, policy: RetryPolicy, gateway: str = ""
    ) -> float | None:
        """Record the outcome of an attempt at `uid` (on `gateway`): try it again after its policy's delay for
        this attempt. Returns the delay (None: the policy never retries, a success included, and nothing is
        scheduled)."""
        waiting = self._unavailable.get(gateway, set())
        if policy is not RetryPolicy.UNAVAILABLE and uid in waiting:
            self._gateway_answered(gateway)
            self._quiet_until.pop(gateway, None)  # it answers objects again: probe at once next time
        attempt = self.attempts(uid, generation)
        delay = policy.delay(attempt)
        if delay is None:
            self.clear(uid)
            return None
        self._attempts[uid] = (generation, attempt + 1)
        if policy is RetryPolicy.UNAVAILABLE:
            self._unavailable.setdefault(gateway, set()).add(uid)
        else:
            waiting.discard(uid)
        self._push(tracker, uid, self._clock() + delay)
        return delay

    def _push(self, tracker: Tracker, uid: str, when: float) -> None:
        if uid in self._due and self._due[uid][0] <= when:
            return  # an earlier attempt is due already: it will look
        self._due[uid] = (when, tracker)
        heapq.heappush(self._heap, (when, next(self._order), tracker, uid))
        self._changed.set()

    def _gateway_answered(self, gateway: str) -> None:
        """An object whose gateway was unavailable got another answer: every object still waiting for that
        gateway is due now."""
        now = self._clock()
        for uid in self._unavailable.pop(gateway, set()):
            if uid in self._due:
                self._push(self._due[uid][1], uid, now)

    def waiting_for(self) -> list[str]:
        """The gateways objects are waiting for (their last attempt found it unavailable)."""
        return [gateway for gateway, uids in self._unavailable.items() if uids]

    async def probe_once(self, probe: Probe) -> list[str]:
        """Probe every gateway objects wait for (not those quiet after a recent answer), at once; each that
        answers makes its waiting objects due now. Returns the gateways that answered."""
        now = self._clock()
        gateways = [g for g in self.waiting_for() if self._quiet_until.get(g, 0.0) <= now]
        answers = await asyncio.gather(*(self._ask(probe, g) for g in gateways))
        back = [g for g, answered in zip(gateways, answers, strict=True) if answered]
        for gateway in back:
            self._quiet_until[gateway] = self._clock() + PROBE_QUIET
            log.info("gateway %s answers again: %d waiting objects retried now", gateway or "(default)",
                     len(self._unavailable.get(gateway, ())))  # fmt: skip
            self._gateway_answered(gateway)
        return back

    @staticmethod
    async def _ask(probe: Probe, gateway: str) -> bool:
        try:
            return await asyncio.wait_for(probe(gateway), PROBE_TIMEOUT)
        except TimeoutError:
            return False

    async def _probing(self, probe: Probe) -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY)
            await self.probe_once(probe)

    def clear(self, uid: str) -> None:
        """`uid` converged (or is gone): no attempt pending, the count starts again."""
        self._due.pop(uid, None)
        self._attempts.pop(uid, None)
        for waiting in self._unavailable.values():
            waiting.discard(uid)

    def pending(self) -> int:
        return len(self._due)

    def take_due(self) -> list[tuple[Tracker, str]]:
        """The objects whose attempt is due now (each once), removed from the schedule."""
        now, due = self._clock(), []
        while self._heap and self._heap[0][0] <= now:
            when, _, tracker, uid = heapq.heappop(self._heap)
            if uid in self._due and self._due[uid][0] == when:  # not cleared, not rescheduled since
                del self._due[uid]
                due.append((tracker, uid))
        return due

    def _next_in(self) -> float | None:
        while self._heap and self._due.get(self._heap[0][3], (None,))[0] != self._heap[0][0]:
            heapq.heappop(self._heap)  # a stale entry (cleared or rescheduled)
        return max(self._heap[0][0] - self._clock(), 0.0) if self._heap else None

    async def run(self, check: Check, probe: Probe | None = None) -> None:
        """Forever: wait for the next due attempt, then re-converge every due object through `check`; meanwhile
        `probe` the gateways objects wait for. Cancelled (the operator stops): the attempts in flight are
        cancelled too."""
        probing = asyncio.create_task(self._probing(probe), name="torii-retries-probe") if probe else None
        try:
            await self._run(check)
        finally:
            self._pool.cancel()
            if probing:
                probing.cancel()

    async def _run(self, check: Check) -> None:
        while True:
            self._changed.clear()
            wait = self._next_in()
            if wait is None or wait > 0:
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                    continue  # scheduled meanwhile: look at the heap again
                except TimeoutError:
                    pass
            for tracker, uid in self.take_due():
                await self._pool.start(check, tracker, uid)
