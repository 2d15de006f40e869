"""Await a condition instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    pass


def wait_until(check: Callable[[], T | None], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll `check` until it returns a truthy value (returned); fail with `what` and the last value."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    last: T | None = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise ConditionTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


async def await_until(check: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    delay = 0.05
    last: T | None = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise ConditionTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)
