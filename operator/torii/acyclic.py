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

    def patch_init(self: patches.Patch, src: dict[str, Any] | None = None, /, body: bodies.Body | None = None,
                   fns: Iterable[patches.PatchFn] = ()) -> None:  # fmt: skip
        dict.__init__(self, src or {})
        self._original = body
        self._fns = (src.fns if isinstance(src, patches.Patch) else []) + list(fns)

    body: Any = bodies.Body
    body.__init__ = body_init
    _lazy_views(body, bodies.Meta, bodies.Spec, bodies.Status, dicts.MappingView)
    patch: Any = patches.Patch
    patch.__init__ = patch_init
    _lazy_views(patch, patches.MetaPatch, patches.SpecPatch, patches.StatusPatch, dicts.MutableMappingView)
    body.torii_acyclic = True


def _lazy_views(owner: Any, meta: Any, spec: Any, status: Any, view: Any) -> None:
    """`owner.meta/metadata/spec/status` and `meta.labels/annotations` built on each access, pointing at their
    parent; `meta` no longer builds its sub-views when made. (`view`: the class of the plain views.)"""
    owner.meta = owner.metadata = property(lambda self: meta(self))
    owner.spec = property(lambda self: spec(self))
    owner.status = property(lambda self: status(self))
    meta.__init__ = lambda self, src, /: view.__init__(self, src, "metadata")
    meta.labels = property(lambda self: view(self, "labels"))
    meta.annotations = property(lambda self: view(self, "annotations"))
