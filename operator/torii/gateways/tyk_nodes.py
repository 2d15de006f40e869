"""The nodes of one Tyk connection: API definitions go to every node, and each node confirms what it serves.

Tyk OSS keeps API definitions per node (each node's `app_path`: `POST /tyk/apis` writes a file on the node it
reaches and nothing to Redis, verified in 5.10.2's sources), while keys and OAuth clients live in the Redis the
nodes share. So a connection with several nodes converges each GatewayAPI on every node, each through its own
burst sync (one list, the writes that differ, one reload per node per burst), and an API is served only when
every node serves it. One node's failure is reported naming that node; the other nodes still converge.

A node that comes back from an outage or restarts empty must be filled at once, not at the next drift pass:
`NodeMonitor` looks at every node every few seconds (`/hello`, and one API the node is known to serve) and,
when a node came back or lost what it served, forgets that node's view and wakes the drift loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from torii.gateways.burst import Applied, owner_of
from torii.gateways.errors import GatewayError, RetryableGatewayError
from torii.gateways.http import AdminClient
from torii.gateways.tyk_sync import TykApiSync

log = logging.getLogger("torii.tyk")
T = TypeVar("T")


@dataclass
class TykNode:
    """One gateway node: its admin client and the burst sync of the API definitions it serves."""

    url: str
    http: AdminClient
    sync: TykApiSync
    reachable: bool = True


class TykNodes:
    """Every node of a connection: a fixed list, or (`follow`) the ready endpoints of a Service as they change."""

    FIRST_NODES_TIMEOUT = 30.0  # a followed Service: how long a call waits for the first list of its endpoints

    def __init__(self, name: str, nodes: Sequence[TykNode], *, where: str = "") -> None:
        self.name = name
        self.nodes = list(nodes)
        self.where = where  # what the nodes are (a Service), for messages when there is none
        self._known = asyncio.Event()  # the node list is known (fixed, or followed and listed once)
        if nodes or not where:
            self._known.set()

    def replace(self, urls: Sequence[str], make: Callable[[str], TykNode]) -> list[TykNode]:
        """Follow a new list of node URLs: nodes still listed are kept (with their views), new ones made; the
        nodes that left are returned (their clients to close)."""
        kept = {n.url: n for n in self.nodes}
        self.nodes = [kept.pop(u) if u in kept else make(u) for u in urls]
        self._known.set()
        return list(kept.values())

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def several(self) -> bool:
        """Several nodes, or nodes followed from a Service (however many are ready now)."""
        return len(self.nodes) > 1 or bool(self.where)

    async def known(self) -> None:
        """Return once the node list is known (a followed Service listed once); RetryableGatewayError after
        FIRST_NODES_TIMEOUT."""
        if not self._known.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._known.wait(), self.FIRST_NODES_TIMEOUT)
        if not self._known.is_set():
            raise RetryableGatewayError(f"gateway {self.name}: the nodes {self.where} are not listed yet")

    async def each(self, call: Callable[[TykNode], Awaitable[T]]) -> list[T]:
        """`call` on every node at once; every node's result, or (any node failed) the first failure, its
        message naming the node and how many nodes succeeded. The node list may change meanwhile (a followed
        Service): a node that joined is called too before this returns, one that left does not count."""
        await self.known()
        if not self.nodes:
            raise RetryableGatewayError(f"gateway {self.name}: no ready node {self.where or 'configured'}")
        seen: dict[str, tuple[TykNode, T | BaseException]] = {}
        while pending := [n for n in self.nodes if n.url not in seen]:
            outcomes: list[T | BaseException]
            if len(pending) == 1:  # one node (the usual case): no task and gathering future per call
                try:
                    outcomes = [await call(pending[0])]
                except Exception as exc:
                    outcomes = [exc]
            else:
                outcomes = await asyncio.gather(*(call(n) for n in pending), return_exceptions=True)
            seen |= {n.url: (n, o) for n, o in zip(pending, outcomes, strict=True)}
        current = {n.url for n in self.nodes}
        results = [(n, o) for url, (n, o) in seen.items() if url in current]
        if not results:  # every node left meanwhile
            raise RetryableGatewayError(f"gateway {self.name}: no ready node {self.where or 'configured'}")
        failed = [(n, o) for n, o in results if isinstance(o, BaseException)]
        if not failed:
            return [o for _, o in results]  # type: ignore[misc]
        nodes = [n for n, _ in results]
        node, error = failed[0]
        if len(nodes) == 1 and not self.where:
            raise error
        if not isinstance(error, GatewayError):  # e.g. a closed client: a node going away
            error = RetryableGatewayError(f"{type(error).__name__} talking to the node")
        done = len(nodes) - len(failed)
        others = f" (and {len(failed) - 1} more node(s))" if len(failed) > 1 else ""
        raise type(error)(
            f"node {node.url}: {error.message}{others}; {done}/{len(nodes)} nodes done", status=error.status
        ) from error

    @staticmethod
    def applied(results: list[Applied]) -> Applied:
        """One result for all nodes: changed or created on any of them."""
        return Applied(changed=any(r.changed for r in results), created=any(r.created for r in results))


class NodeMonitor:
    """Watches every node of a connection (a few admin calls per node per interval) and calls `refill` when a
    node needs filling: it became reachable again, or an API Torii made it serve is gone (a restart on an empty
    app directory). `refill` should trigger a drift pass: the node's view is forgotten first, so that pass reads
    the node instead of trusting what it served before."""

    def __init__(self, name: str, nodes: TykNodes, *, interval: float = 2.0) -> None:
        self.name = name
        self.nodes = nodes
        self.interval = interval

    async def run(self, refill: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self.interval)
            lost = await asyncio.gather(*(self.check(n) for n in list(self.nodes.nodes)))
            if any(lost):
                refill()

    async def check(self, node: TykNode) -> bool:
        """Does `node` need filling? Its view is forgotten when it does."""
        try:
            await node.http.request("GET", "/hello", op="node check", passthrough=(503,))
            canary = next((i for i, v in node.sync.view.items() if owner_of(v) is not None), None)
            gone = canary is not None and await node.sync.get(canary) is None
        except Exception as exc:  # whatever it is, the node is not usable now; the monitor itself goes on
            if node.reachable:
                log.warning("gateway %s: node %s unreachable (%s)", self.name, node.url,
                            exc.message if isinstance(exc, GatewayError) else type(exc).__name__)  # fmt: skip
            node.reachable = False
            return False
        back = not node.reachable
        node.reachable = True
        if back or gone:
            log.info("gateway %s: node %s %s: filling it", self.name, node.url, "is back" if back else "lost its APIs")
            node.sync.forget()
            return True
        return False
