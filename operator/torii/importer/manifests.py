"""What an import produces: manifests to apply, and the objects it could not represent (never dropped silently)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from torii.models.common import API_VERSION


@dataclass(frozen=True)
class Manifest:
    kind: str
    name: str
    spec: dict[str, Any]
    source: str  # what it came from, e.g. "Tyk API orders-v1"
    namespace: str | None = None

    def to_object(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name}
        if self.namespace:
            metadata["namespace"] = self.namespace
        metadata["annotations"] = {"torii.dev/imported-from": self.source}
        return {"apiVersion": API_VERSION, "kind": self.kind, "metadata": metadata, "spec": self.spec}

    @property
    def filename(self) -> str:
        return f"{self.kind.lower()}-{self.name}.yaml"


@dataclass(frozen=True)
class Skipped:
    """An object on the gateway that no Torii resource can represent, and why."""

    source: str
    reason: str


def to_manifest(kind: str, model: type[BaseModel], name: str, spec: dict[str, Any], hatch: str,
                override: dict[str, Any], source: str, namespace: str | None) -> Manifest | Skipped:  # fmt: skip
    """The manifest of `spec` with its escape hatch (`spec.<hatch>`) set to `override` when there is one, or why
    there cannot be one: the spec does not validate, or the override would carry a credential."""
    from torii.importer.overrides import first_error, secret_paths

    if leaks := secret_paths(override):
        paths = ", ".join(f"spec.{hatch}.{p}" for p in leaks)
        return Skipped(source, f"holds a credential in {paths}, which a manifest must not carry")
    if override:
        spec = {**spec, hatch: override}
    try:
        model.model_validate(spec)
    except (ValidationError, ValueError) as exc:
        return Skipped(source, f"cannot be expressed as a {kind}: {first_error(exc)}")
    return Manifest(kind, name, spec, source, namespace)


def key_state(spec: dict[str, Any], *, expires_unix: float | None, enabled: bool, tags: Any, metadata: Any) -> None:
    """The fields every gateway's key maps the same way: expiry, suspension, tags, string metadata."""
    if expires_unix:
        spec["expires"] = datetime.fromtimestamp(expires_unix, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not enabled:
        spec["enabled"] = False
    if strings := [t for t in tags or [] if isinstance(t, str)]:
        spec["tags"] = strings
    if pairs := {k: v for k, v in (metadata or {}).items() if isinstance(v, str)}:
        spec["metadata"] = pairs


@dataclass
class ImportResult:
    manifests: list[Manifest] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for manifest in self.manifests:
            path = directory / manifest.filename
            path.write_text(dump(manifest.to_object()))
            paths.append(path)
        return paths

    def stream(self) -> str:
        return "---\n".join(dump(m.to_object()) for m in self.manifests)


class _Dumper(yaml.SafeDumper):
    pass


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML follows YAML 1.1 and writes a Tyk key hash such as 94333e00 bare; kubectl's parser reads that as the
    # number 94333. Anything that starts like a number is quoted.
    style = "'" if _NUMBERISH.match(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_NUMBERISH = re.compile(r"^[-+.]?[0-9]")
_Dumper.add_representer(str, _string)


def dump(obj: dict[str, Any]) -> str:
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


class Names:
    """Kubernetes names for gateway objects: readable, unique per kind, stable for the same input."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, *candidates: str) -> str:
        for candidate in candidates:
            name = slug(candidate)
            if name and name not in self._taken:
                self._taken.add(name)
                return name
        base = slug(candidates[0]) or "imported"
        digest = hashlib.sha256("/".join(candidates).encode()).hexdigest()[:6]
        name = f"{base[:56]}-{digest}"
        self._taken.add(name)
        return name


def slug(text: str) -> str:
    """A DNS-1123 label from free text ("Orders API v2" -> "orders-api-v2")."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return out[:63].rstrip("-")


@dataclass(frozen=True)
class KeyedApi:
    """An API the import adopts that GatewayKeys can reach: its manifest's name, and the key type it takes."""

    name: str
    key_type: str  # a GatewayKey spec.type: key, basicAuth or jwt


def key_type_for(api_spec: dict[str, Any]) -> str | None:
    """The GatewayKey type an imported API's callers hold: `key`, `basicAuth`, `jwt` (per-consumer secrets: no
    spec.jwt key of the API's own), or None (keyless, OAuth, or one JWT key for every caller)."""
    auth = api_spec.get("auth")
    if auth in ("key", "basicAuth") or (auth == "jwt" and not api_spec.get("jwt")):
        return str(auth)
    return None
