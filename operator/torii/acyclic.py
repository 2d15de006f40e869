"""No reference cycles per event or per HTTP call: what a burst allocates is freed when the last user lets go.

Garbage in a reference cycle waits for the cyclic collector, and during a burst that was most of the garbage. A
census of one full collection in the middle of a 3000-object apply (`gc.DEBUG_SAVEALL`) found about 17,000
collectable objects, almost all from two sources:
- kopf wraps every watch event's object in a `Body` that stores its `meta`/`spec`/`status` views, each pointing
  back at it (and `Meta` stores its `labels`/`annotations` views, pointing back at the `Meta`); every handler run's
  `Patch` does the same. Each event so left a cycle holding the object's whole body.
- httpx binds every response's stream to the response (`response.stream._response is response`): 38 objects per
  call (the response, its request, URL, headers, and httpcore's stream chain) that only the collector frees.
Until a full collection ran, the dead bodies and responses of the whole burst sat in memory, and each full
collection walked every live object (about 0.3 s at 3000 objects, 8% of the operator's CPU during the apply).

`install` makes kopf's views lazy (built on access, never stored: a view points at its parent, a parent at no
view); every httpx client of the operator is a `Client`, which cuts each finished response from its stream. kopf is
pinned below 1.46 in pyproject.toml; a unit test fails if an upgrade changes the patched classes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

DONE = httpx.ByteStream(b"")  # what a finished response's stream becomes (its content is kept on the response)


def unbind(response: httpx.Response) -> httpx.Response:
    """Cut a response whose body has been read (or discarded) from its stream, which points back at it."""
    response.stream = DONE
    return response


class Client(httpx.AsyncClient):
    """An httpx client whose finished responses are in no reference cycle: every request of the operator (admin
    APIs, the apiserver, a gateway's proxy) goes through one, so no call path can forget it."""

    async def send(self, request: httpx.Request, *, stream: bool = False, **kwargs: Any) -> httpx.Response:
        response = await super().send(request, stream=stream, **kwargs)
        return response if stream else unbind(response)  # read and closed by then; a stream is cut below

    @asynccontextmanager
    async def stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        async with super().stream(*args, **kwargs) as response:
            yield response
        unbind(response)  # closed (its connection back in the pool) before it is cut


def install() -> None:
    """Make kopf's body and patch views lazy (idempotent)."""
    from kopf._cogs.structs import bodies, dicts, patches

    if getattr(bodies.Body, "torii_acyclic", False):
        return

    for owner, meta, spec, status, view in (
        (bodies.Body, bodies.Meta, bodies.Spec, bodies.Status, dicts.MappingView),
        (patches.Patch, patches.MetaPatch, patches.SpecPatch, patches.StatusPatch, dicts.MutableMappingView),
    ):
        _lazy_views(owner, meta, spec, status, view)
    bodies.Body.torii_acyclic = True  # type: ignore[attr-defined]


def _lazy_views(owner: Any, meta: Any, spec: Any, status: Any, view: Any) -> None:
    """`owner.meta/metadata/spec/status` and `meta.labels/annotations` built on each access, pointing at their
    parent; kopf's own `__init__` of the owner still runs (whatever else it sets), then drops the views it stored.
    (`view`: the class of the plain views.)"""
    owner.__init__ = _dropping(owner.__init__, "_meta", "_spec", "_status")
    owner.meta = owner.metadata = property(lambda self: meta(self))
    owner.spec = property(lambda self: spec(self))
    owner.status = property(lambda self: status(self))
    # Built on every access of `.meta`: not kopf's `__init__`, which would build two sub-views only to drop them.
    meta.__init__ = lambda self, src, /: view.__init__(self, src, "metadata")
    meta.labels = property(lambda self: view(self, "labels"))
    meta.annotations = property(lambda self: view(self, "annotations"))


def _dropping(init: Callable[..., None], *names: str) -> Callable[..., None]:
    def dropping(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        for name in names:
            self.__dict__.pop(name, None)

    return dropping
