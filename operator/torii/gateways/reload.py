"""Coalesced Tyk reloads: one reload per burst of changes, not one per change.

A Tyk reload re-reads every API definition, so N reloads for N changes is O(N^2) gateway work. Callers
`await coalescer.reload()` after writing; the coalescer waits until the burst goes quiet (or a maximum delay
passes), runs ONE reload, and resolves every request made before that reload started.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class ReloadCoalescer:
    def __init__(
        self,
        do_reload: Callable[[], Awaitable[None]],
        *,
        quiet: float = 0.25,
        max_delay: float = 2.0,
    ) -> None:
        self._do_reload = do_reload
        self._quiet = quiet
        self._max_delay = max_delay
        self._pending: list[asyncio.Future[None]] = []
        self._first_pending = 0.0
        self._last_request = 0.0
        self._runner: asyncio.Task[None] | None = None
        self.reloads = 0

    async def reload(self) -> None:
        """Return once a reload that started after this call has finished; raise if that reload failed."""
        now = time.monotonic()
        if not self._pending:
            self._first_pending = now
        self._last_request = now
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Mark a failure as seen even when the waiter was cancelled (no "exception never retrieved" noise).
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending.append(future)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="tyk-reload-coalescer")
        await asyncio.shield(future)

    async def _run(self) -> None:
        while self._pending:
            # Gather the burst: wait for a quiet period, but never longer than max_delay in total.
            # A debounce deadline that moves with each request, not a flag to poll.
            while (wait := self._wait_left()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            batch, self._pending = self._pending, []
            self.reloads += 1
            try:
                await self._do_reload()
            except Exception as exc:
                for future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for future in batch:
                    if not future.done():
                        future.set_result(None)

    def _wait_left(self) -> float:
        now = time.monotonic()
        return min(self._last_request + self._quiet - now, self._first_pending + self._max_delay - now)
