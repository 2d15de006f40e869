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
view); `unbind` cuts a finished response from its stream. kopf is pinned below 1.46 in pyproject.toml; a unit test
fails if an upgrade changes the patched classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import httpx

DONE = httpx.ByteStream(b"")  # what a finished response's stream becomes (its content is kept on the response)


def unbind(response: httpx.Response) -> httpx.Response:
    """Cut a response whose body has been read (or discarded) from its stream, which points back at it."""
    response.stream = DONE
    return response


def install() -> None:
    """Make kopf's body and patch views lazy (idempotent)."""
    from kopf._cogs.structs import bodies, dicts, patches

    if getattr(bodies.Body, "torii_acyclic", False):
        return

    def body_init(self: bodies.Body, src: Mapping[str, Any], /) -> None:
        dicts.ReplaceableMappingView.__init__(self, src)

    def meta_init(self: bodies.Meta, src: bodies.Body, /) -> None:
        dicts.MappingView.__init__(self, src, "metadata")

    def meta_patch_init(self: patches.MetaPatch, src: patches.Patch, /) -> None:
        dicts.MutableMappingView.__init__(self, src, "metadata")

    def patch_init(self: patches.Patch, src: dict[str, Any] | None = None, /, body: bodies.Body | None = None,
                   fns: Iterable[patches.PatchFn] = ()) -> None:  # fmt: skip
        dict.__init__(self, src or {})
        self._original = body
        self._fns = (src.fns if isinstance(src, patches.Patch) else []) + list(fns)

    body: Any = bodies.Body
    body.__init__ = body_init
    body.meta = body.metadata = property(lambda self: bodies.Meta(self))
    body.spec = property(lambda self: bodies.Spec(self))
    body.status = property(lambda self: bodies.Status(self))
    meta: Any = bodies.Meta
    meta.__init__ = meta_init
    meta.labels = property(lambda self: dicts.MappingView(self, "labels"))
    meta.annotations = property(lambda self: dicts.MappingView(self, "annotations"))

    patch: Any = patches.Patch
    patch.__init__ = patch_init
    patch.meta = patch.metadata = property(lambda self: patches.MetaPatch(self))
    patch.spec = property(lambda self: patches.SpecPatch(self))
    patch.status = property(lambda self: patches.StatusPatch(self))
    meta_patch: Any = patches.MetaPatch
    meta_patch.__init__ = meta_patch_init
    meta_patch.labels = property(lambda self: dicts.MutableMappingView(self, "labels"))
    meta_patch.annotations = property(lambda self: dicts.MutableMappingView(self, "annotations"))
    body.torii_acyclic = True
