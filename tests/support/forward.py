"""Pod-like addresses for local processes: a TCP forwarder on this machine's own (non-loopback) address.

An EndpointSlice may not hold a loopback address (the apiserver refuses 127.0.0.0/8), and the stack's gateways
listen on 127.0.0.1 only. A forwarder on the machine's own address plays the pod IP a Service would list.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def host_address() -> str:
    """This machine's first global IPv4 address (traffic to it stays on the machine)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        words = line.split()
        if "inet" in words:
            return words[words.index("inet") + 1].split("/")[0]
    raise AssertionError(f"no global IPv4 address on this machine (ip says: {out.stdout or out.stderr!r})")


@contextmanager
def forwarder(target_port: int, address: str) -> Iterator[int]:
    """Forward `address:<port>` to 127.0.0.1:`target_port` while the context lasts; yields the port."""
    loop = asyncio.new_event_loop()
    started: list[asyncio.Server] = []
    ready = threading.Event()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()  # the node is down: the client sees a refused/closed connection
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    async def serve() -> None:
        started.append(await asyncio.start_server(handle, address, 0))
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    server = started[0]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
