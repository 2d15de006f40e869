"""The operator's Prometheus metrics, as tests and benchmarks read them."""

from __future__ import annotations

import httpx

from support.wait import wait_until

# Admin operations that change a gateway (the driver's `op` names).
WRITE_OPS = (
    "write API", "delete API", "reload", "reload group",
    "create key", "update key", "patch key", "delete key", "reset quota",
    "create OAuth client", "delete OAuth client",
    "create service", "update service", "delete service", "create group",
    "create route", "update route", "delete route",
    "write policy", "delete policy", "create verifier", "update verifier", "delete verifier",
)  # fmt: skip


def scrape(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics").text


def counter(text: str, name: str, **labels: str) -> float:
    """The sum of a counter's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def by_label(text: str, name: str, label: str) -> dict[str, float]:
    """A counter's samples summed per value of `label`."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") and f'{label}="' in line:
            value = line.split(f'{label}="', 1)[1].split('"', 1)[0]
            totals[value] = totals.get(value, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def writes(text: str) -> float:
    return sum(counter(text, "torii_gateway_calls_total", operation=op) for op in WRITE_OPS)


def assert_no_writes_over_two_drift_passes(port: int, objects: int, timeout: float = 120) -> None:
    """Await two drift passes over every object (the reconcile counter, not the clock), then count writes."""
    before = scrape(port)
    before_writes = writes(before)
    before_passes = counter(scrape(port), "torii_reconciles_total", cause="drift")
    wait_until(
        lambda: counter(scrape(port), "torii_reconciles_total", cause="drift") >= before_passes + 2 * objects,
        timeout=timeout, what="two drift passes over every object",
    )  # fmt: skip
    after = scrape(port)
    made = {op: counter(after, "torii_gateway_calls_total", operation=op) - counter(
        before, "torii_gateway_calls_total", operation=op) for op in WRITE_OPS}  # fmt: skip
    assert writes(after) == before_writes, {op: n for op, n in made.items() if n}
