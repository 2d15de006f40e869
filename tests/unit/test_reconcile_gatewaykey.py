"""reconcile_key decisions with in-memory Secrets/APIs and a scripted driver: ordering, conflicts, rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from torii.gateways.base import ConvergeResult, Credential, KeyRequest, KeyResult, ObjectRef
from torii.gateways.errors import RetryableGatewayError
from torii.gateways.registry import Gateways
from torii.kube import Owner, SecretView
from torii.models.gatewaykey import QuotaState
from torii.reconcile.gatewaykey import KeyEnv, delete_key, reconcile_key
from torii.reconcile.outcome import Cause

REF = ObjectRef("shop", "checkout")
OWNER = Owner("torii.dev/v1alpha1", "GatewayKey", "checkout", "uid-1")


class Journal(list[str]):
    pass


class FakeSecrets:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.items: dict[str, SecretView] = {}

    async def get(self, namespace: str, name: str) -> SecretView | None:
        return self.items.get(name)

    async def write(self, namespace: str, name: str, owner: Owner, data: dict[str, str], *,
                    labels: dict[str, str], annotations: dict[str, str], create: bool) -> None:  # fmt: skip
        assert create == (name not in self.items)
        self.journal.append(f"secret:{'create' if create else 'update'}")
        self.items[name] = SecretView(name, dict(data), {**labels, "app.kubernetes.io/managed-by": "torii"},
                                      dict(annotations), (owner.uid,))  # fmt: skip


class FakeApis:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}

    def add(self, name: str, *, gateway: str = "tyk", auth: str = "key", served: bool = True, group: str = "") -> None:
        spec = {"gateway": gateway, "auth": auth, **({"group": group} if group else {})}
        status = {"gateway": gateway, **({"gatewayId": f"torii.shop.{name}"} if served else {})}
        self.objects[name] = {"metadata": {"name": name}, "spec": spec, "status": status}

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(name)

    async def in_group(self, namespace: str, group: str) -> list[dict[str, Any]]:
        return [o for o in self.objects.values() if o["spec"].get("group") == group]


class KeyDriver:
    def __init__(self, journal: Journal, type_: str = "tyk") -> None:
        self.name, self.type = type_, type_
        self.journal = journal
        self.keys: dict[str, KeyRequest] = {}
        self.fail: Exception | None = None
        self.revoked: list[Credential] = []
        self.resets = 0

    async def converge_key(self, request: KeyRequest) -> KeyResult:
        self.journal.append("gateway:converge")
        if self.fail:
            raise self.fail
        ident = request.credential.key or request.credential.client_id
        created = ident not in self.keys
        self.keys[ident] = request
        return KeyResult("hash-" + ident[:6] if self.type == "tyk" else None, None, changed=True, created=created)

    async def revoke_previous(self, request: KeyRequest, previous: Credential) -> None:
        self.revoked.append(previous)

    async def delete_key(self, request: KeyRequest) -> bool:
        return self.keys.pop(request.credential.key or request.credential.client_id, None) is not None

    async def key_quota(self, request: KeyRequest) -> QuotaState | None:
        return QuotaState(max=100, remaining=42)

    async def reset_key_quota(self, request: KeyRequest) -> None:
        self.resets += 1

    async def expire_key(self, key: str, api_id: str, at: int) -> None:
        self.journal.append("gateway:expire-previous")

    # unused parts of the protocol
    async def converge_api(self, *a: Any) -> ConvergeResult:
        raise NotImplementedError

    async def aclose(self) -> None: ...


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def world() -> tuple[KeyEnv, FakeSecrets, FakeApis, KeyDriver, Journal, Clock]:
    journal = Journal()
    secrets, apis, driver, clock = FakeSecrets(journal), FakeApis(), KeyDriver(journal), Clock()
    apis.add("orders")
    env = KeyEnv(Gateways({"tyk": driver}, "tyk"), secrets, apis, now=clock)  # type: ignore[dict-item]
    return env, secrets, apis, driver, journal, clock


SPEC: dict[str, Any] = {"apis": [{"name": "orders"}], "rateLimit": {"rate": 5, "per": 1}}


def ready(out: Any) -> dict[str, Any]:
    return next(c for c in out.status["conditions"] if c["type"] == "Ready")


async def test_secret_is_written_before_the_gateway_sees_the_credential(world: Any) -> None:
    env, secrets, _, driver, journal, _ = world
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert journal[:2] == ["secret:create", "gateway:converge"]
    key = secrets.items["checkout"].data["key"]
    assert len(key) == 48 and secrets.items["checkout"].data["Authorization"] == key
    assert key in driver.keys
    assert ready(out)["status"] == "True" and out.status["secretName"] == "checkout"
    assert out.status["keyId"] == "hash-" + key[:6] and key not in str(out.status) and key not in str(out.events)
    assert out.status["quota"] == {"max": 100, "remaining": 42}


async def test_a_crash_after_the_secret_reuses_the_same_credential(world: Any) -> None:
    env, secrets, _, driver, _, _ = world
    driver.fail = RetryableGatewayError("gateway tyk: create key: cannot reach")
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert out.retry and ready(out)["reason"] == "GatewayUnavailable"
    key = secrets.items["checkout"].data["key"]
    driver.fail = None
    await reconcile_key(env, REF, OWNER, SPEC, 1, out.status, Cause.CREATE)
    assert list(driver.keys) == [key]  # exactly one key, the one in the Secret


async def test_a_foreign_secret_is_never_touched(world: Any) -> None:
    env, secrets, _, _, journal, _ = world
    secrets.items["checkout"] = SecretView("checkout", {"password": "theirs"}, {}, {}, ())
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert ready(out)["reason"] == "SecretConflict" and "never overwrites" in ready(out)["message"]
    assert not out.retry and journal == [] and secrets.items["checkout"].data == {"password": "theirs"}


@pytest.mark.parametrize(
    ("spec", "setup", "reason", "text"),
    [
        ({"apis": [{"name": "orders", "namespace": "other"}]}, None, "InvalidReference", "spec.apis[0].namespace"),
        ({"apis": [{"name": "payments"}]}, ("payments", {"gateway": "otoroshi"}), "InvalidReference", "gateway"),
        ({"apis": [{"name": "open"}]}, ("open", {"auth": "keyless"}), "InvalidReference", "auth: key"),
        ({"apis": [{"name": "missing"}]}, None, "WaitingForAPI", "does not exist"),
        ({"apis": [{"name": "pending"}]}, ("pending", {"served": False}), "WaitingForAPI", "not served"),
        ({"apiGroup": "nobody"}, None, "WaitingForAPI", "spec.apiGroup"),
    ],
)
async def test_references_are_checked(world: Any, spec: dict[str, Any], setup: Any, reason: str, text: str) -> None:
    env, secrets, apis, _, journal, _ = world
    if setup:
        apis.add(setup[0], **setup[1])
    out = await reconcile_key(env, REF, OWNER, spec, 1, None, Cause.CREATE)
    assert ready(out)["reason"] == reason and text in ready(out)["message"]
    assert out.retry == (reason == "WaitingForAPI")
    assert journal == [] and not secrets.items  # nothing created for a key that cannot work


async def test_api_group_reference(world: Any) -> None:
    env, _, apis, driver, _, _ = world
    apis.add("a", group="shop")
    apis.add("b", group="shop")
    await reconcile_key(env, REF, OWNER, {"apiGroup": "shop"}, 1, None, Cause.CREATE)
    request = next(iter(driver.keys.values()))
    assert request.group_id == "torii.shop.group.shop"
    assert {a.gateway_id for a in request.apis} == {"torii.shop.a", "torii.shop.b"}


async def test_rotation_with_grace_period(world: Any) -> None:
    env, secrets, _, driver, journal, clock = world
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    old = secrets.items["checkout"].data["key"]
    spec = {**SPEC, "rotation": {"generation": 1, "gracePeriodSeconds": 60}}
    journal.clear()
    out = await reconcile_key(env, REF, OWNER, spec, 2, out.status, Cause.UPDATE)
    new = secrets.items["checkout"].data["key"]
    assert new != old and secrets.items["checkout"].data["previousKey"] == old
    assert journal[0] == "secret:update" and "gateway:expire-previous" in journal
    assert {new, old} <= set(driver.keys) and driver.revoked == []
    assert "Rotated" in [e.reason for e in out.events] and out.status["previousKeyRevokeAt"]
    # Still in grace: nothing revoked on a drift check.
    out = await reconcile_key(env, REF, OWNER, spec, 2, out.status, Cause.DRIFT)
    assert driver.revoked == []
    clock.at += timedelta(seconds=61)
    out = await reconcile_key(env, REF, OWNER, spec, 2, out.status, Cause.DRIFT)
    assert [c.key for c in driver.revoked] == [old]
    assert "previousKey" not in secrets.items["checkout"].data and out.status.get("previousKeyRevokeAt") is None
    assert out.status["rotationGeneration"] == 1


async def test_otoroshi_rotation_uses_next_secret(world: Any) -> None:
    env, secrets, apis, _, journal, clock = world
    driver = KeyDriver(journal, "otoroshi")
    env.gateways = Gateways({"otoroshi": driver}, "otoroshi")  # type: ignore[dict-item]
    apis.add("orders", gateway="otoroshi")
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    data = dict(secrets.items["checkout"].data)
    assert len(data["clientId"]) == 16 and len(data["clientSecret"]) == 64
    assert data["basicAuthHeader"].startswith("Basic ")
    spec = {**SPEC, "rotation": {"generation": 1, "gracePeriodSeconds": 60}}
    out = await reconcile_key(env, REF, OWNER, spec, 2, out.status, Cause.UPDATE)
    request = driver.keys[data["clientId"]]
    assert request.credential.client_secret == data["clientSecret"]  # old still the clientSecret
    assert request.next_credential is not None
    assert request.next_credential.client_secret == secrets.items["checkout"].data["clientSecret"]
    clock.at += timedelta(seconds=61)
    await reconcile_key(env, REF, OWNER, spec, 2, out.status, Cause.DRIFT)
    final = driver.keys[data["clientId"]]
    assert final.next_credential is None and final.credential.client_secret != data["clientSecret"]


async def test_quota_reset_is_declarative_and_once(world: Any) -> None:
    env, _, _, driver, _, _ = world
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    spec = {**SPEC, "quotaResetGeneration": 1}
    out = await reconcile_key(env, REF, OWNER, spec, 2, out.status, Cause.UPDATE)
    out = await reconcile_key(env, REF, OWNER, spec, 2, out.status, Cause.DRIFT)
    assert driver.resets == 1 and out.status["quotaResetGeneration"] == 1


async def test_quota_change_resets_counters_other_changes_keep_them(world: Any) -> None:
    env, secrets, _, driver, _, _ = world
    out = await reconcile_key(env, REF, OWNER, {**SPEC, "quota": {"max": 10, "period": "day"}}, 1, None, Cause.CREATE)
    key = secrets.items["checkout"].data["key"]
    out = await reconcile_key(env, REF, OWNER, {**SPEC, "quota": {"max": 10, "period": "day"}, "tags": ["x"]}, 2,
                              out.status, Cause.UPDATE)  # fmt: skip
    assert driver.keys[key].keep_quota_counters is True
    await reconcile_key(env, REF, OWNER, {**SPEC, "quota": {"max": 20, "period": "day"}}, 3, out.status, Cause.UPDATE)
    assert driver.keys[key].keep_quota_counters is False


async def test_delete_revokes_and_orphan_leaves(world: Any) -> None:
    env, _, _, driver, _, _ = world
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    deleted = await delete_key(env, REF, OWNER, SPEC, 1, out.status)
    assert driver.keys == {} and deleted.events[0].reason == "Deleted"
    out = await reconcile_key(env, ObjectRef("shop", "k2"), Owner("v", "GatewayKey", "k2", "uid-2"),
                              {**SPEC, "secretName": "k2"}, 1, None, Cause.CREATE)  # fmt: skip
    orphan = await delete_key(env, ObjectRef("shop", "k2"), Owner("v", "GatewayKey", "k2", "uid-2"),
                              {**SPEC, "deletionPolicy": "Orphan"}, 1, out.status)  # fmt: skip
    assert orphan.events[0].reason == "Orphaned" and len(driver.keys) == 1
