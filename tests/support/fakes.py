"""In-memory stand-ins for reconciler unit tests: Secrets, GatewayAPI lookups, a key driver, a clock, and the
journal that records the order of every write (status records, Secrets, gateway calls)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from torii.gateways.base import ConvergeResult, Credential, CredentialKind, KeyRequest, KeyResult, ObjectRef
from torii.kube import Owner, SecretView
from torii.models.gatewaykey import QuotaState

REF = ObjectRef("shop", "checkout")
OWNER = Owner("torii.dev/v1alpha1", "GatewayKey", "checkout", "uid-1")


class Journal(list[str]):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []


class FakeSecrets:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.items: dict[str, SecretView] = {}

    async def get(self, namespace: str, name: str) -> SecretView | None:
        return self.items.get(name)

    async def write(self, namespace: str, name: str, owner: Owner, data: dict[str, str], *,
                    labels: dict[str, str], annotations: dict[str, str], create: bool,
                    resource_version: str = "") -> str:  # fmt: skip
        assert create == (name not in self.items)
        if not create:  # optimistic concurrency, as the apiserver does
            assert resource_version == self.items[name].resource_version
        self.journal.append(f"secret:{'create' if create else 'update'}")
        version = str(int(self.items[name].resource_version) + 1) if name in self.items else "1"
        self.items[name] = SecretView(name, dict(data), {**labels, "app.kubernetes.io/managed-by": "torii"},
                                      dict(annotations), (owner.uid,), version)  # fmt: skip
        return version


class FakeApis:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def add(self, name: str, *, gateway: str = "tyk", auth: str = "key", served: bool = True, group: str = "") -> None:
        spec = {"gateway": gateway, "auth": auth, **({"group": group} if group else {})}
        status: dict[str, Any] = {"gateway": gateway}
        if served:
            status |= {"gatewayId": f"torii.shop.{name}",
                       "conditions": [{"type": "Ready", "status": "True", "observedGeneration": 1}]}  # fmt: skip
        self.objects[name] = {"metadata": {"name": name, "generation": 1}, "spec": spec, "status": status}

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(name)

    async def in_group(self, namespace: str, group: str) -> list[dict[str, Any]]:
        return [o for o in self.objects.values() if o["spec"].get("group") == group]


class KeyDriver:
    """A driver whose key role (and OAuth role) is itself: `issued` holds the keys it was asked to converge."""

    admin_urls: ClassVar[list[str]] = []
    neutral_fields: frozenset[str] = frozenset()

    @property
    def dialect(self) -> str:
        return str(self.type)

    @property
    def keys(self) -> KeyDriver:
        return self

    @property
    def oauth(self) -> KeyDriver | None:
        return self if self.type == "tyk" else None

    @property
    def credential_kind(self) -> CredentialKind:
        return CredentialKind.KEY if self.type == "tyk" else CredentialKind.CLIENT

    def __init__(self, journal: Journal, type_: str = "tyk") -> None:
        self.name, self.type = type_, type_
        self.journal = journal
        self.issued: dict[str, KeyRequest] = {}
        self.fail: Exception | None = None
        self.revoked: list[Credential] = []
        self.revoked_ids: list[str] = []
        self.resets = 0

    async def converge_key(self, request: KeyRequest) -> KeyResult:
        self.journal.append("gateway:converge")
        if self.fail:
            raise self.fail
        ident = request.credential.key or request.credential.client_id
        created = ident not in self.issued
        self.issued[ident] = request
        return KeyResult("hash-" + ident[:6] if self.type == "tyk" else None, None, changed=True, created=created)

    async def revoke_previous(self, request: KeyRequest, previous: Credential) -> None:
        self.revoked.append(previous)
        self.issued.pop(previous.key or "", None)

    async def revoke_by_id(self, request: KeyRequest, key_id: str) -> None:
        self.revoked_ids.append(key_id)

    async def delete_key(self, request: KeyRequest) -> bool:
        return self.issued.pop(request.credential.key or request.credential.client_id, None) is not None

    async def key_quota(self, request: KeyRequest) -> QuotaState | None:
        return QuotaState(max=100, remaining=42)

    async def reset_key_quota(self, request: KeyRequest) -> None:
        self.resets += 1

    async def expire_previous(self, request: KeyRequest, previous: Credential, at: int) -> None:
        if self.type != "tyk":
            return  # a CLIENT's rotation is the gateway's own
        self.journal.append("gateway:expire-previous")

    # unused parts of the protocol
    async def converge_api(self, *a: Any) -> ConvergeResult:
        raise NotImplementedError

    async def ready(self) -> None: ...

    async def watch(self, refill: Any) -> None: ...

    async def aclose(self) -> None: ...


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


def recorder(journal: Journal) -> Any:
    """ctx.record: status fields written ahead, in the journal with the other writes."""

    async def record(fields: dict[str, Any]) -> None:
        journal.append("status:" + ",".join(sorted(fields)))
        journal.records.append(fields)

    return record


def ready(out: Any) -> dict[str, Any]:
    """The Ready condition of an Outcome."""
    return next(c for c in out.status["conditions"] if c["type"] == "Ready")
