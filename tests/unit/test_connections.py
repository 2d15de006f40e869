"""kopf's API session gets a connection limit (kopf itself asks aiohttp for none)."""

from __future__ import annotations

import inspect

from torii.connections import bound_kopf_connections, connection_limit


async def test_kopf_still_asks_for_unlimited_connections_and_gets_the_bound() -> None:
    from kopf._cogs.clients import auth

    # The reason for the patch: if kopf ever bounds its own connector, this fails and the patch can go.
    assert "limit=0" in inspect.getsource(auth)
    bound_kopf_connections(40)
    connector = auth.aiohttp.TCPConnector(limit=0)
    try:
        assert connector.limit == 40
    finally:
        await connector.close()
    assert auth.aiohttp.ClientSession.__name__ == "ClientSession"  # everything else is aiohttp's own


def test_every_watch_stream_fits_beside_the_shared_pool() -> None:
    assert connection_limit([]) == 20
    assert connection_limit([f"ns{i}" for i in range(40)]) == 16 + 4 * 40
