"""The smallest escape-hatch object that, merged over what Torii renders, gives back what the gateway holds.

`torii import` maps what it can to neutral fields and renders the definition Torii would send for them; what
still differs from the gateway's object goes into `spec.tyk` / `spec.otoroshi`. Values equal to the gateway's
own defaults are left out, so the manifest is what a person would have written: Tyk returns every field of its
Go struct (defaults are zero values), Otoroshi fills in its `_template` values.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from torii.gateways.base import is_subset

_ABSENT = object()


def is_zero(value: Any) -> bool:
    """Go's zero values, which Tyk fills in for every field nobody set."""
    if isinstance(value, dict):
        return all(is_zero(v) for v in value.values())
    return value is None or value is False or value == 0 or value == "" or value == []


def _same(actual: Any, rendered: Any, default: Any) -> bool:
    if is_zero(actual) and is_zero(rendered) and type(actual) is not bool:
        return actual is None or rendered is None or type(actual) is type(rendered)  # Go's nil is its empty value
    if isinstance(actual, list) and isinstance(rendered, list):
        # Gateways add defaulted fields to list items (Otoroshi targets): what Torii sends must be there and the
        # rest must be the item's default.
        template = default[0] if isinstance(default, list) and default and isinstance(default[0], dict) else {}
        return len(actual) == len(rendered) and all(
            _same(a, r, template) for a, r in zip(actual, rendered, strict=True)
        )
    if isinstance(actual, dict) and isinstance(rendered, dict):
        return not minimal_override(actual, rendered, default if isinstance(default, dict) else {})
    return is_subset(rendered, actual) and is_subset(actual, rendered)


def minimal_override(actual: dict[str, Any], rendered: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """The fields of `actual` that neither `rendered` nor the gateway's `default` produce."""
    out: dict[str, Any] = {}
    for key, value in actual.items():
        base = rendered.get(key, _ABSENT)
        fallback = default.get(key, _ABSENT)
        if base is _ABSENT:
            if fallback is _ABSENT:
                if not is_zero(value):
                    out[key] = value
                continue
            base = fallback
        if isinstance(value, dict) and isinstance(base, dict):
            nested = minimal_override(value, base, fallback if isinstance(fallback, dict) else {})
            if nested:
                out[key] = nested
        elif not _same(value, base, fallback if fallback is not _ABSENT else None):
            out[key] = value
    return out


def without(data: dict[str, Any], paths: tuple[str, ...] | list[str]) -> dict[str, Any]:
    out = dict(data)
    for path in paths:
        *parents, last = path.split(".")
        node: Any = out
        for part in parents:
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                node = None
                break
            node[part] = child = dict(child)
            node = child
        if isinstance(node, dict):
            node.pop(last, None)
    return out


def prune(data: dict[str, Any]) -> dict[str, Any]:
    """Drop emptied nested objects left by without()."""
    pruned = {k: (prune(v) if isinstance(v, dict) else v) for k, v in data.items()}
    return {k: v for k, v in pruned.items() if not (isinstance(v, dict) and not v)}


def first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False, include_input=False)[0]
        return f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)


# Names of fields and headers that hold credentials. A manifest is not a place for them (CR specs are readable by
# everyone who may list the resource, and live in Git): an object carrying one is listed, not imported.
SECRET_NAME = re.compile(r"secret|password|passwd|token|private_?key|credential|api_?key|jwt_source|cookie|"
                         r"^authorization$|^proxy-authorization$", re.IGNORECASE)  # fmt: skip


def secret_paths(data: Any, path: str = "") -> list[str]:
    """Dotted paths of non-empty string values whose field (or header) name says they are a credential."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            # "...HeaderName", "auth_header_name": where a credential is sent, not a credential.
            named = SECRET_NAME.search(str(key)) and not str(key).lower().endswith("name")
            if isinstance(value, str) and value and named:
                found.append(here)
            else:
                found += secret_paths(value, here)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            found += secret_paths(item, f"{path}[{i}]")
    return found
