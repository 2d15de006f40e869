"""How soon a failed reconcile is tried again: a policy per kind of failure, carried by the error (or the
Blocked reason) into the outcome, so the handlers never guess it from a reason's spelling."""

from __future__ import annotations

from enum import Enum

BACKOFF_BASE = 5.0  # seconds: 5, 10, 20, ...
BACKOFF_CAP = 300.0
UNAVAILABLE_CAP = 20.0  # a gateway will come back: after an outage of any length, be at most this late to notice
WAITING_CAP = 5.0  # waiting for another object costs one apiserver read per look: look often


def backoff(attempt: int) -> float:
    return float(min(BACKOFF_BASE * 2 ** max(attempt, 0), BACKOFF_CAP))


class RetryPolicy(Enum):
    NONE = "none"  # retrying the same thing cannot help: reported, re-checked by the next spec change (or drift)
    BACKOFF = "backoff"  # 5 s doubling to 5 minutes
    UNAVAILABLE = "unavailable"  # the gateway is down or overloaded: the backoff capped at 20 s
    WAITING = "waiting"  # another object (an API to serve, a Secret to exist): the backoff capped at 5 s
    WAKE = "wake"  # a GatewayAPI to be served: woken when one is (torii.handlers.wake), else as WAITING

    def delay(self, attempt: int) -> float | None:
        """Seconds until the next attempt (`attempt`: how many were made), None: no retry."""
        caps = {RetryPolicy.BACKOFF: BACKOFF_CAP, RetryPolicy.UNAVAILABLE: UNAVAILABLE_CAP,
                RetryPolicy.WAITING: WAITING_CAP, RetryPolicy.WAKE: WAITING_CAP}  # fmt: skip
        return None if self is RetryPolicy.NONE else min(backoff(attempt), caps[self])
