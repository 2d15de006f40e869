"""The operator's Prometheus metrics, as tests and benchmarks read them."""

from __future__ import annotations

import httpx

# Admin operations that change a gateway (the driver's `op` names).
WRITE_OPS = (
    "write API", "delete API", "reload", "reload group",
    "create key", "update key", "patch key", "delete key", "reset quota",
    "create OAuth client", "delete OAuth client",
    "create service", "update service", "delete service", "create group",
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


def writes(text: str) -> float:
    return sum(counter(text, "torii_gateway_calls_total", operation=op) for op in WRITE_OPS)
