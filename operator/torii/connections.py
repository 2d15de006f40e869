"""A bound on kopf's connections to the apiserver.

kopf opens its aiohttp session with `TCPConnector(limit=0)`: no limit. When a burst of objects converges at
once (the gateway batches make that the normal case), every object's status patch opens its own TLS connection.
Measured with 1,000 GatewayAPIs on Tyk: operator RSS 400-500 MiB unbounded, 182 MiB with 50 connections (and
all Ready sooner). kopf has no setting for it, so its connector is given a limit here. Watch streams hold a
connection each for as long as they run, so the limit leaves room for every stream on top of the shared pool.
"""

from __future__ import annotations

import types
from typing import Any

import aiohttp

# Patches, events and list calls share this many connections; watch streams get theirs on top. Each TLS
# connection costs asyncio a 256 KiB read buffer and its SSL state: at 32 (before), 9 MiB of a 1000-object
# burst's peak went to them (memray), while 8 carry the burst's patches and events as fast (the apiserver
# answers each in milliseconds).
SHARED_CONNECTIONS = 16
STREAMS_PER_NAMESPACE = 4  # the three kinds, plus peering


def connection_limit(namespaces: list[str]) -> int:
    return SHARED_CONNECTIONS + STREAMS_PER_NAMESPACE * max(1, len(namespaces))


def bound_kopf_connections(limit: int) -> None:
    """Make kopf's API session use at most `limit` connections (kopf's own `limit=0` means unlimited)."""
    from kopf._cogs.clients import auth  # kopf's private module: pinned range in pyproject.toml, tested

    class BoundedConnector(aiohttp.TCPConnector):
        def __init__(self, *args: Any, limit: int = 0, **kwargs: Any) -> None:
            super().__init__(*args, limit=limit or bound, **kwargs)

    bound = limit
    proxy = types.ModuleType("aiohttp")
    proxy.__dict__.update(vars(aiohttp))
    proxy.TCPConnector = BoundedConnector  # type: ignore[attr-defined]
    auth.aiohttp = proxy  # type: ignore[attr-defined]
