"""reconcile_key decisions with in-memory Secrets/APIs and a scripted driver: ordering, conflicts, rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from support.fakes import OWNER, REF, KeyDriver, ready
from torii.gateways.base import ObjectRef
from torii.gateways.errors import RetryableGatewayError
from torii.gateways.registry import Gateways
from torii.kube import Owner, SecretView
from torii.reconcile.gatewaykey import delete_key, reconcile_key
from torii.reconcile.outcome import Cause

SPEC: dict[str, Any] = {"apis": [{"name": "orders"}], "rateLimit": {"rate": 5, "per": 1}}


async def test_secret_is_written_before_the_gateway_sees_the_credential(world: Any) -> None:
    env, secrets, _, driver, journal, _ = world
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert journal[:2] == ["secret:create", "gateway:converge"]
    key = secrets.items["checkout"].data["key"]
    assert len(key) == 48 and secrets.items["checkout"].data["Authorization"] == key
    assert key in driver.issued
    assert ready(out)["status"] == "True" and out.status["secretName"] == "checkout"
    assert out.status["keyId"] == "hash-" + key[:6] and key not in str(out.status) and key not in str(out.events)
    assert out.status.get("quota") is None  # no quota set: its figures are not read
    with_quota = {**SPEC, "quota": {"max": 100, "period": "day"}}
    out = await reconcile_key(env, REF, OWNER, with_quota, 2, out.status, Cause.UPDATE)
    assert out.status["quota"] == {"max": 100, "remaining": 42}
    assert journal.count("gateway:converge") == 2


async def test_a_crash_after_the_secret_reuses_the_same_credential(world: Any) -> None:
    env, secrets, _, driver, _, _ = world
    driver.fail = RetryableGatewayError("gateway tyk: create key: cannot reach")
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert out.retry and ready(out)["reason"] == "GatewayUnavailable"
    key = secrets.items["checkout"].data["key"]
    driver.fail = None
    await reconcile_key(env, REF, OWNER, SPEC, 1, out.status, Cause.CREATE)
    assert list(driver.issued) == [key]  # exactly one key, the one in the Secret


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
    request = next(iter(driver.issued.values()))
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
    # The new credential is recorded in status, then stored in the Secret, then the gateway sees it.
    assert journal[0].startswith("status:") and "credentialDigest" in journal[0] and journal[1] == "secret:update"
    assert "gateway:expire-previous" in journal
    assert {new, old} <= set(driver.issued) and driver.revoked == []
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
    request = driver.issued[data["clientId"]]
    assert request.credential.client_secret == data["clientSecret"]  # old still the clientSecret
    assert request.next_credential is not None
    assert request.next_credential.client_secret == secrets.items["checkout"].data["clientSecret"]
    clock.at += timedelta(seconds=61)
    await reconcile_key(env, REF, OWNER, spec, 2, out.status, Cause.DRIFT)
    final = driver.issued[data["clientId"]]
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
    assert driver.issued[key].keep_quota_counters is True
    await reconcile_key(env, REF, OWNER, {**SPEC, "quota": {"max": 20, "period": "day"}}, 3, out.status, Cause.UPDATE)
    assert driver.issued[key].keep_quota_counters is False


async def test_delete_revokes_and_orphan_leaves(world: Any) -> None:
    env, _, _, driver, _, _ = world
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    deleted = await delete_key(env, REF, OWNER, SPEC, 1, out.status)
    assert driver.issued == {} and deleted.events[0].reason == "Deleted"
    out = await reconcile_key(env, ObjectRef("shop", "k2"), Owner("v", "GatewayKey", "k2", "uid-2"),
                              {**SPEC, "secretName": "k2"}, 1, None, Cause.CREATE)  # fmt: skip
    orphan = await delete_key(env, ObjectRef("shop", "k2"), Owner("v", "GatewayKey", "k2", "uid-2"),
                              {**SPEC, "deletionPolicy": "Orphan"}, 1, out.status)  # fmt: skip
    assert orphan.events[0].reason == "Orphaned" and len(driver.issued) == 1


async def test_a_lost_secret_does_not_leave_the_old_key_alive(world: Any) -> None:
    env, secrets, _, driver, _, _ = world
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    old_id = out.status["keyId"]
    del secrets.items["checkout"]  # somebody deleted the Secret
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, out.status, Cause.DRIFT)
    assert driver.revoked_ids == [old_id] and out.status["keyId"] != old_id


async def test_otoroshi_lost_secret_keeps_the_client_id(world: Any) -> None:
    env, secrets, apis, _, journal, _ = world
    driver = KeyDriver(journal, "otoroshi")
    env.gateways = Gateways({"otoroshi": driver}, "otoroshi")  # type: ignore[dict-item]
    apis.add("orders", gateway="otoroshi")
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    client_id = secrets.items["checkout"].data["clientId"]
    del secrets.items["checkout"]
    await reconcile_key(env, REF, OWNER, SPEC, 1, out.status, Cause.DRIFT)
    assert secrets.items["checkout"].data["clientId"] == client_id and list(driver.issued) == [client_id]


async def test_rotating_again_within_grace_revokes_the_oldest(world: Any) -> None:
    env, secrets, _, driver, _, _ = world
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    first = secrets.items["checkout"].data["key"]
    for generation in (1, 2):
        spec = {**SPEC, "rotation": {"generation": generation, "gracePeriodSeconds": 600}}
        out = await reconcile_key(env, REF, OWNER, spec, generation + 1, out.status, Cause.UPDATE)
    assert [c.key for c in driver.revoked] == [first]
    assert set(driver.issued) == {secrets.items["checkout"].data["key"], secrets.items["checkout"].data["previousKey"]}


@pytest.mark.parametrize("change", ["not-ready", "stale", "deleting"])
async def test_a_key_waits_for_an_api_that_is_not_serving(world: Any, change: str) -> None:
    env, _, apis, _, journal, _ = world
    obj = apis.objects["orders"]
    if change == "not-ready":
        obj["status"]["conditions"][0]["status"] = "False"
    elif change == "stale":
        obj["metadata"]["generation"] = 2
    else:
        obj["metadata"]["deletionTimestamp"] = "2026-11-01T00:00:00Z"
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert ready(out)["reason"] == "WaitingForAPI" and out.retry and journal == []


async def test_delete_without_status_uses_deterministic_ids(world: Any) -> None:
    env, _, _, driver, _, _ = world
    await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    out = await delete_key(env, REF, OWNER, SPEC, 1, None)  # status lost (crash before it was written)
    assert driver.issued == {} and out.events[0].reason == "Deleted"


def test_status_patch_removes_fields_that_became_empty() -> None:
    from torii.models.gatewaykey import GatewayKeyStatus

    wire = GatewayKeyStatus(secret_name="s", previous_key_revoke_at=None).to_wire()
    assert wire["secretName"] == "s" and "previousKeyRevokeAt" in wire and wire["previousKeyRevokeAt"] is None


async def test_oauth_client_delete_keeps_finalizer_until_orphaned(world: Any) -> None:
    from torii.reconcile.oauthclient import delete_oauth_client

    env, _, _, driver, _, _ = world
    status = {"clientId": "c1", "apiId": "torii.shop.orders"}

    async def unreachable(request: Any) -> bool:
        raise RetryableGatewayError("gateway tyk: delete OAuth client: cannot reach http://x (ConnectError)")

    driver.delete_oauth_client = unreachable
    stuck = await delete_oauth_client(env, REF, OWNER, {"api": "orders"}, 1, status)
    assert (
        stuck.retry and ready(stuck)["reason"] == "DeleteFailed" and "deletionPolicy: Orphan" in ready(stuck)["message"]
    )
    released = await delete_oauth_client(env, REF, OWNER, {"api": "orders", "deletionPolicy": "Orphan"}, 1, status)
    assert not released.retry and released.events[0].reason == "Orphaned"
