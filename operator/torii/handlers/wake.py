"""Keys and OAuth clients waiting for their GatewayAPI are woken when an API of their namespace becomes Ready,
instead of looking again on a timer (a look is an apiserver read, and a burst of keys applied with their APIs
would otherwise wait out retry delays after every API is served)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict


class Waker:
    """A wake count per namespace: a waiter notes the count before it looks, and waits only if no wake came
    since (so a wake between its look and its wait is never missed)."""

    def __init__(self) -> None:
        self._count: defaultdict[str, int] = defaultdict(int)
        self._events: dict[str, asyncio.Event] = {}

    def mark(self, namespace: str) -> int:
        return self._count[namespace]

    def wake(self, namespace: str) -> None:
        self._count[namespace] += 1
        event = self._events.pop(namespace, None)
        if event is not None:
            event.set()

    async def wait(self, namespace: str, since: int, seconds: float) -> bool:
        """True once an API of `namespace` became Ready after `since` (at once if one did already); False after
        `seconds`."""
        if self._count[namespace] != since:
            return True
        event = self._events.setdefault(namespace, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(seconds, 0.0))
            return True
        return False
