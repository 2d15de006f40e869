"""Keys waiting for a GatewayAPI are woken when an API of their namespace becomes Ready, never by another's."""

from __future__ import annotations

import asyncio

from torii.handlers.wake import Waker
from torii.reconcile.outcome import Blocked
from torii.retry import RetryPolicy


async def test_a_wake_of_the_namespace_ends_the_wait_and_one_before_the_wait_is_not_missed() -> None:
    waker = Waker()
    since = waker.mark("shop")
    waiting = asyncio.create_task(waker.wait("shop", since, 30))
    await asyncio.sleep(0)
    waker.wake("other")  # another namespace's API: not this one's
    await asyncio.sleep(0.01)
    assert not waiting.done()
    waker.wake("shop")
    assert await asyncio.wait_for(waiting, 1)
    # A wake between the look (mark) and the wait: the wait returns at once.
    since = waker.mark("shop")
    waker.wake("shop")
    assert await waker.wait("shop", since, 30)
    # No wake: the wait ends after its time, False.
    assert not await waker.wait("shop", waker.mark("shop"), 0.01)


def test_only_waiting_for_an_api_is_woken_and_kopf_still_retries_it() -> None:
    assert Blocked("WaitingForAPI", "m", retry=True, until_api=True).retry_policy is RetryPolicy.WAKE
    assert Blocked("WaitingForSecret", "m", retry=True).retry_policy is RetryPolicy.WAITING
    assert RetryPolicy.WAKE.delay(10) == RetryPolicy.WAITING.delay(10) == 5.0  # after a wait without a wake
