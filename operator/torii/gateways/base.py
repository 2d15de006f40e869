"""The gateway-neutral driver protocol. Handlers and reconcilers only ever talk to this."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from torii.gateways.errors import OwnershipConflict
from torii.models.gatewayapi import ApiHealth, AuthMode, GatewayAPISpec
from torii.models.gatewaykey import GatewayKeySpec, QuotaState


@dataclass(frozen=True)
class ObjectRef:
    """A namespaced Kubernetes object, and the deterministic gateway id derived from it. `kind` and `uid` go
    into the owner record of what Torii creates for it on a gateway (not part of its identity: a GatewayAPI
    deleted with Orphan and applied again under the same name is the same owner)."""

    namespace: str
    name: str
    kind: str = field(default="", compare=False)
    uid: str = field(default="", compare=False)

    def owns(self, namespace: str | None, name: str | None) -> bool:
        """Is an owner record (namespace, name) read from a gateway object this object's?"""
        return namespace == self.namespace and name == self.name

    def gateway_id(self, prefix: str) -> str:
        # Namespaces cannot contain dots, so "<prefix>.<namespace>.<name>" is unambiguous; it has no "/"
        # (Tyk refuses it in api_id). Long names are shortened with a hash so ids stay under 200 chars.
        ident = f"{prefix}.{self.namespace}.{self.name}"
        if len(ident) > 200:
            digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
            ident = f"{ident[:180]}.{digest}"
        return ident

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def api_gateway_id(ref: ObjectRef, spec: GatewayAPISpec, prefix: str) -> str:
    """The id of a GatewayAPI's object on the gateway: the adopted one, or Torii's deterministic id."""
    return spec.adopt.id if spec.adopt else ref.gateway_id(prefix)


@dataclass(frozen=True)
class ConvergeResult:
    """What converging one object did."""

    gateway_id: str
    changed: bool  # a gateway write happened
    created: bool = False  # the object did not exist on the gateway before
    notes: tuple[str, ...] = ()  # what the user should know (e.g. escape-hatch fields Torii overrode)
    nodes: tuple[int, int] | None = None  # (serving, of) the gateway's nodes, where it has several (Tyk)


def group_id(prefix: str, namespace: str, group: str) -> str:
    """Gateway id of an API group (an Otoroshi service group)."""
    return f"{prefix}.{namespace}.group.{group}"


@dataclass(frozen=True)
class ResolvedApi:
    """A GatewayAPI a key refers to, as the gateway knows it."""

    name: str
    gateway_id: str
    versions: tuple[str, ...] = ()
    org_id: str | None = None  # Tyk: an adopted API's org (spec.adopt.orgId); its keys must share it


@dataclass(frozen=True)
class Credential:
    """What a client presents. Tyk: `key`. Otoroshi: `client_id` + `client_secret`. Never logged."""

    key: str = ""
    client_id: str = ""
    client_secret: str = ""

    def __repr__(self) -> str:  # never print a credential, even in a traceback
        return f"Credential(client_id={self.client_id!r}, ...)" if self.client_id else "Credential(...)"


@dataclass(frozen=True)
class KeyRequest:
    """Everything a driver needs to converge one key."""

    ref: ObjectRef
    spec: GatewayKeySpec
    apis: tuple[ResolvedApi, ...]
    group_id: str | None
    credential: Credential
    next_credential: Credential | None = None  # a rotation in its grace period (Otoroshi: rotation.nextSecret)
    grace_seconds: int = 0
    keep_quota_counters: bool = True  # Tyk suppress_reset: keep live counters unless the quota itself changed
    # An adopted key whose credential Torii does not know (Tyk stores only its hash): addressed by this id.
    key_id: str | None = None
    # The key may exist on the gateway without Torii's owner record (spec.adopt, granted by the policy): it is
    # taken over. Otherwise a key Torii does not own is never written, revoked or deleted.
    adopting: bool = False
    # The credential (and its id) was chosen in this very reconcile: the gateway cannot have it yet, so it is
    # created without looking it up first (one admin call per new key in a burst, not two or three).
    fresh: bool = False
    # A drift check: the gateway's keys may be read from a list this many seconds old (where the gateway lists
    # whole keys), not one GET per key per pass. 0: read this key now.
    max_age: float = 0.0


@dataclass(frozen=True)
class KeyResult:
    key_id: str | None  # non-secret id (Tyk key hash, Otoroshi clientId); None when the gateway did not say
    scope: str | None
    changed: bool
    created: bool = False


@dataclass(frozen=True)
class Inventory:
    """Everything a gateway holds that `torii import` can turn into resources, as the gateway returns it.
    Keys are (non-secret id, body); a key body may hold credentials: the importer never writes those out."""

    apis: list[dict[str, Any]]
    keys: list[tuple[str, dict[str, Any]]]
    oauth_clients: list[tuple[str, dict[str, Any]]]  # (api id, client)
    api_defaults: dict[str, Any]  # what the gateway fills in for fields nobody set ({} where that is zero values)
    key_defaults: dict[str, Any]
    # What this connection renders into every object (Tyk: org_id; Otoroshi: domain, subdomain, group).
    rendering: dict[str, str]
    kind: str = ""  # the gateway kind whose objects these are (which importer maps them)
    not_imported: list[tuple[str, str]] = field(default_factory=list)  # (object, why and what to do) to report


@dataclass(frozen=True)
class OAuthClientRequest:
    ref: ObjectRef
    api_id: str
    client_id: str
    client_secret: str
    redirect_uri: str
    policy: str | None
    description: str
    metadata: dict[str, str]
    adopting: bool = False  # spec.adopt (granted): a client without Torii's owner record may be taken over

    def __repr__(self) -> str:
        return f"OAuthClientRequest(ref={self.ref}, api_id={self.api_id!r}, client_id={self.client_id!r}, ...)"


# The owner record in a key's (or OAuth client's) meta_data: Torii never writes, revokes or deletes a key whose
# record names another object, nor takes one without a record unless it adopts it.
class CredentialKind(StrEnum):
    """What a gateway's credential is, and so how Torii issues, rotates and revokes it.

    KEY (Tyk): a credential IS a key; a new credential is a new key, the old one a key of its own to revoke.
    CLIENT (Otoroshi): a client id and a secret; the key keeps its client id and its secret changes (a rotation
    is the gateway's own: the old secret stays valid next to the new one for the grace period)."""

    KEY = "key"
    CLIENT = "client"


class ApiRole(Protocol):
    """GatewayAPIs on one gateway."""

    async def converge_api(self, ref: ObjectRef, spec: GatewayAPISpec, *, max_age: float = 0.0) -> ConvergeResult:
        """Make the gateway serve `spec`; no write when it already does. Returns once it serves it.
        `max_age`: how old a view of the gateway may be to decide "already in sync" (drift passes accept one
        taken for a neighbour moments ago; changes never do)."""
        ...

    async def delete_api(self, ref: ObjectRef, gateway_id: str | None = None, *,
                         auth: AuthMode = AuthMode.KEYLESS, certificates: bool = False) -> bool:  # fmt: skip
        """Remove the API (`gateway_id`: an adopted id, else Torii's own); True if something was deleted, False
        if it was already gone; OwnershipConflict (nothing deleted) when it belongs to another object. `auth`:
        the API's spec.auth, `certificates`: it had upstream TLS (what else Torii made for it goes too: a JWT
        API's verifier or policy, the certificates it uploaded)."""
        ...

    async def tidy(self, ref: ObjectRef, gateway_id: str, *, jwt: bool, certificates: bool) -> None:
        """Remove what Torii made for the API that its spec no longer needs (once the API no longer names it):
        `jwt`: its JWT policy or verifier; `certificates`: the certificates it uploaded."""
        ...

    async def api_health(self, ref: ObjectRef, gateway_id: str | None = None) -> ApiHealth | None:
        """Gateway health figures for the API, or None where the gateway has none."""
        ...


class KeyRole(Protocol):
    """GatewayKeys on one gateway."""

    credential_kind: CredentialKind

    async def converge_key(self, request: KeyRequest) -> KeyResult:
        """Create or update the key with the credential Torii chose; no write when already in sync."""
        ...

    async def delete_key(self, request: KeyRequest) -> bool:
        """Revoke the key; False when it was already gone."""
        ...

    async def adopted_credential(
        self, request: KeyRequest, key_id: str, supplied: Credential | None, *, read_allowed: bool
    ) -> Credential | None:
        """The credential of the existing key `key_id` that `request` adopts: the `supplied` one once checked to
        be that key, the one the gateway returns, or None when it cannot be recovered (Tyk hashes keys).
        AdoptionFailed when the key does not exist or `supplied` is another key; OwnershipConflict when another
        Torii object owns it (or it is the connection's own admin key); PolicyViolation when recovering it means
        reading a credential from the gateway and `read_allowed` (the tenancy grant) is False."""
        ...

    async def expire_by_id(self, request: KeyRequest, key_id: str, at_unix: int) -> None:
        """Let the gateway itself refuse a key known only by its id after `at_unix` (a rotated-out adopted key)."""
        ...

    async def expire_previous(self, request: KeyRequest, previous: Credential, at_unix: int) -> None:
        """Let the gateway itself refuse a rotated-out credential after its grace period, even if Torii is down
        then (where the previous credential is a key of its own; nothing where the gateway rotates natively)."""
        ...

    async def revoke_previous(self, request: KeyRequest, previous: Credential) -> None:
        """End a rotation's grace period: the previous credential stops working."""
        ...

    async def revoke_by_id(self, request: KeyRequest, key_id: str) -> None:
        """Revoke a key known only by its non-secret id (a credential whose Secret was lost)."""
        ...

    async def key_quota(self, request: KeyRequest) -> QuotaState | None: ...

    async def reset_key_quota(self, request: KeyRequest) -> None: ...


class OAuthRole(Protocol):
    """OAuthClients on one gateway."""

    async def converge_oauth_client(self, request: OAuthClientRequest) -> bool:
        """Create the OAuth client with the id/secret Torii chose; True when a write happened."""
        ...

    async def delete_oauth_client(self, request: OAuthClientRequest) -> bool: ...

    async def adopted_oauth_client(self, ref: ObjectRef, api_id: str, client_id: str) -> str:
        """The secret of the existing OAuth client `client_id` of API `api_id`; AdoptionFailed when none,
        OwnershipConflict when another Torii object owns it."""
        ...


class ImportRole(Protocol):
    async def inventory(self) -> Inventory:
        """Read every API and key on the gateway (for `torii import`; never called by the operator)."""
        ...


class GatewayDriver(Protocol):
    """One gateway connection and its roles. Implementations: `TykDriver`, `OtoroshiDriver`. What differs per
    gateway is a role's method or a declared capability (`keys.credential_kind`, `oauth is None`): never a check
    of the gateway's type above `gateways/`."""

    name: str
    type: str
    # Where its admin API answers (tenancy: upstreams may not point there).
    admin_urls: list[str]
    # Escape-hatch fields Torii overrides with its neutral fields, as dotted paths (setting them changes nothing).
    neutral_fields: frozenset[str]
    # What the escape hatch holds (the tenancy rules that apply to it): `tyk`, `otoroshi` (service descriptor
    # fields) or `otoroshi-routes` (route fields).
    dialect: str

    @property
    def apis(self) -> ApiRole: ...

    @property
    def keys(self) -> KeyRole: ...

    @property
    def oauth(self) -> OAuthRole | None:
        """None: the gateway has no OAuth clients (OAuthClient objects for it are Unsupported)."""
        ...

    @property
    def importer(self) -> ImportRole: ...

    async def check(self) -> str:
        """Connect and authenticate; return a short description (version, node) or raise a GatewayError."""
        ...

    async def ping(self) -> None:
        """One cheap call to the admin API (a probe, every few seconds while objects wait for the gateway to come
        back: never a list that grows with the objects); raises a GatewayError when it does not answer."""
        ...

    async def ready(self) -> None:
        """Return once the driver knows every admin endpoint of its gateway (`admin_urls`: tenancy checks
        refuse upstreams pointing there); nodes followed from a Service are known once listed."""
        ...

    async def watch(self, refill: Callable[[], None]) -> None:
        """Run until cancelled, calling `refill` when the gateway needs its objects converged now, not at the
        next drift pass (a node that came back or restarted empty). Returns at once where nothing is watched."""
        ...

    async def aclose(self) -> None: ...


OWNER_META = "torii-object"


def key_owner(ref: ObjectRef, kind: str) -> dict[str, str]:
    return {OWNER_META: str(ref), "torii-kind": ref.kind or kind, "torii-uid": ref.uid}


def owner_claim(gateway: str, what: str, ref: ObjectRef, meta: Any, *, adopting: bool) -> OwnershipConflict | None:
    """Why `ref` may not manage an existing key or client whose meta_data is `meta` (None: it may)."""
    owner = meta.get(OWNER_META) if isinstance(meta, dict) else None
    if owner is None and not adopting:
        return OwnershipConflict(
            f"gateway {gateway}: the credential names a {what} Torii does not manage; Torii leaves it alone"
        )
    if owner is not None and owner != str(ref):
        return OwnershipConflict(f"gateway {gateway}: that {what} is managed by another Torii object; Torii "
                                 "leaves it alone")  # fmt: skip
    return None


def is_subset(desired: Any, actual: Any) -> bool:
    """True when every value in `desired` is present and equal in `actual` (gateways add their defaults)."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(key in actual and is_subset(value, actual[key]) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(desired) != len(actual):
            return False
        return all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
    if isinstance(desired, float | int) and isinstance(actual, float | int) and not isinstance(desired, bool):
        return float(desired) == float(actual)
    return bool(desired == actual)


def fingerprint(desired: dict[str, Any]) -> str:
    """A stable hash of what Torii sends, stored in the gateway object to recognise "already in sync"."""
    return hashlib.sha256(json.dumps(desired, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


def pick(data: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """The values at dotted `paths` (missing ones as None), for comparing the fields that matter most."""
    out: dict[str, Any] = {}
    for path in paths:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[path] = value
    return out


def freeze(value: Any) -> Any:
    """A nested list or dict kept in a gateway view as compact JSON text (one string instead of a tree of dicts
    whose keys the parser does not share between objects); scalars as they are. `thaw` reads it back."""
    if isinstance(value, (list, dict)):
        return Frozen(json.dumps(value, separators=(",", ":"), sort_keys=True))
    return value


def thaw(value: Any) -> Any:
    return json.loads(value) if isinstance(value, Frozen) else value


class Frozen(str):
    """JSON text `freeze` made (a str: views compare and hash as before)."""

    __slots__ = ()


def dotted_get(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(present, value) at a dotted path."""
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def dotted_set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        if not isinstance(data.get(part), dict):
            data[part] = {}  # absent, or null in a gateway's answer
        data = data[part]
    data[last] = value


def deep_merge(base: dict[str, Any], override: dict[str, Any], *, fold: bool = False) -> dict[str, Any]:
    """`override` merged over `base`: nested dicts merge, everything else is replaced. `fold`: keys are matched
    case-insensitively and keep `base`'s spelling (Tyk reads JSON field names case-insensitively: `Proxy` next
    to `proxy` would be read as the same field, whichever comes last winning)."""
    out = dict(base)
    spelled = {key.lower(): key for key in out} if fold else {}
    for key, value in override.items():
        target = spelled.get(key.lower(), key) if fold else key
        if isinstance(value, dict) and isinstance(out.get(target), dict):
            out[target] = deep_merge(out[target], value, fold=fold)
        else:
            out[target] = value
    return out


def without_fields(override: dict[str, Any], owned: tuple[str, ...], *, fold: bool = False) -> dict[str, Any]:
    """`override` without the top-level fields Torii owns (compared case-insensitively with `fold`)."""
    names = {o.lower() for o in owned} if fold else set(owned)
    return {k: v for k, v in override.items() if (k.lower() if fold else k) not in names}
