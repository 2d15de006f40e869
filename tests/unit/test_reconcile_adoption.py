"""reconcile_key for adopted keys (spec.adopt): what is recovered, what goes in the Secret, rotation away from
a key Torii never knew the credential of, and deletion by id. In-memory Secrets and a scripted driver."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from support.fakes import (
    OWNER,
    REF,
    Clock,
    FakeApis,
    FakeSecrets,
    Journal,
    KeyDriver,
    ready,
    recorder,
)
from torii.gateways.base import Credential, KeyRequest, KeyResult
from torii.gateways.errors import AdoptionFailed, RetryableGatewayError
from torii.gateways.registry import Gateways
from torii.kube import SecretView
from torii.models.gatewaykey import KeyType
from torii.reconcile.context import ReconcileContext
from torii.reconcile.gatewaykey import by_id_message, delete_key, reconcile_key
from torii.reconcile.outcome import Cause
from torii.tenancy.config import Tenancy, TenancyMode

ADOPTED = "5f3a9c01"  # a Tyk key hash


class AdoptingDriver(KeyDriver):
    """A gateway holding one pre-existing key, known by `ADOPTED`; `recoverable` says whether it can return its
    credential (Otoroshi) or keeps only a hash (Tyk)."""

    def __init__(self, journal: Journal, recoverable: Credential | None = None) -> None:
        super().__init__(journal)
        self.recoverable = recoverable
        self.exists = True
        self.by_id: list[KeyRequest] = []
        self.supplied: list[Credential | None] = []
        self.expired: list[tuple[str, int]] = []

    async def adopted_credential(
        self, request: KeyRequest, key_id: str, supplied: Credential | None, *, read_allowed: bool
    ) -> Credential | None:
        self.supplied.append(supplied)
        if not self.exists:
            raise AdoptionFailed(f"gateway tyk: spec.adopt.id: no key with hash {key_id} exists")
        found = supplied or self.recoverable
        if found is not None:
            self.issued.setdefault(found.key or found.client_id, KeyRequest(REF, request.spec, (), None, found))
        return found

    async def converge_key(self, request: KeyRequest) -> KeyResult:
        if request.key_id:
            self.journal.append("gateway:converge-by-id")
            self.by_id.append(request)
            return KeyResult(request.key_id, None, changed=False)
        result = await super().converge_key(request)
        # Like Tyk: only a create's answer carries the key's hash.
        return result if result.created else KeyResult(None, None, changed=True)

    async def expire_by_id(self, request: KeyRequest, key_id: str, at_unix: int) -> None:
        self.expired.append((key_id, at_unix))

    async def delete_key(self, request: KeyRequest) -> bool:
        if request.key_id:
            self.journal.append(f"gateway:delete-by-id:{request.key_id}")
            return True
        return await super().delete_key(request)


def setup(recoverable: Credential | None = None) -> tuple[ReconcileContext, FakeSecrets, AdoptingDriver, Clock]:
    journal = Journal()
    secrets, apis, driver, clock = FakeSecrets(journal), FakeApis(), AdoptingDriver(journal, recoverable), Clock()
    apis.add("orders")
    # Adoption is a privilege the platform grants: these tests run under a single-team policy.
    gateways = Gateways({"tyk": driver}, "tyk")  # type: ignore[dict-item]
    single_team = {"tyk": Tenancy(mode=TenancyMode.SINGLE_TEAM)}
    env = ReconcileContext(gateways, secrets, apis, now=clock, record=recorder(journal), tenancy=single_team)
    return env, secrets, driver, clock


SPEC: dict[str, Any] = {"apis": [{"name": "orders"}], "adopt": {"id": ADOPTED}}


async def test_a_key_known_only_by_its_hash_is_managed_by_id_and_gets_no_secret() -> None:
    env, secrets, driver, _ = setup()
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert ready(out)["status"] == "True" and "cannot put it in a Secret" in ready(out)["message"]
    assert out.status["keyId"] == ADOPTED and out.status["secretName"] is None
    assert not secrets.items and not driver.issued  # no credential invented, no second key
    assert [r.key_id for r in driver.by_id] == [ADOPTED] and driver.by_id[0].credential == Credential()
    assert [e.reason for e in out.events] == ["Adopted"]
    again = await reconcile_key(env, REF, OWNER, SPEC, 1, out.status, Cause.DRIFT)
    assert len(driver.by_id) == 2 and not secrets.items and again.events == []


async def test_a_recoverable_credential_goes_into_the_secret_before_the_gateway_write() -> None:
    existing = Credential(client_id="abc", client_secret="s3cr3t")
    env, secrets, driver, _ = setup(existing)
    driver.type = "otoroshi"
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert driver.journal[:2] == ["secret:create", "gateway:converge"]
    assert secrets.items["checkout"].data["clientSecret"] == "s3cr3t" and out.status["keyId"] == ADOPTED
    assert "s3cr3t" not in str(out.status) and "s3cr3t" not in str(out.events)
    assert driver.issued["abc"].credential == existing  # the existing credential, not a new one


async def test_a_handed_over_credential_is_read_from_the_named_secret() -> None:
    env, secrets, driver, _ = setup()
    spec = {**SPEC, "adopt": {"id": ADOPTED, "credentialSecretRef": {"name": "handed-over"}}}
    waiting = await reconcile_key(env, REF, OWNER, spec, 1, None, Cause.CREATE)
    assert ready(waiting)["reason"] == "WaitingForSecret" and waiting.retry
    assert "spec.adopt.credentialSecretRef" in ready(waiting)["message"] and not driver.supplied
    secrets.items["handed-over"] = SecretView("handed-over", {"key": "acme123"}, {}, {}, ())
    out = await reconcile_key(env, REF, OWNER, spec, 1, waiting.status, Cause.UPDATE)
    assert driver.supplied == [Credential(key="acme123")]
    assert secrets.items["checkout"].data["key"] == "acme123" and ready(out)["status"] == "True"


async def test_a_missing_adopted_key_is_reported_not_replaced() -> None:
    env, secrets, driver, _ = setup()
    driver.exists = False
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert ready(out)["reason"] == "AdoptionFailed" and ADOPTED in ready(out)["message"] and not out.retry
    assert not secrets.items and not driver.issued


async def test_rotation_away_from_a_hash_only_key() -> None:
    env, secrets, driver, clock = setup()
    first = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    spec = {**SPEC, "rotation": {"generation": 1, "gracePeriodSeconds": 600}}
    out = await reconcile_key(env, REF, OWNER, spec, 2, first.status, Cause.UPDATE)
    new = secrets.items["checkout"].data["key"]
    assert new in driver.issued and out.status["keyId"] == "hash-" + new[:6]  # a new key Torii knows
    revoke_at = int((clock.at + timedelta(seconds=600)).timestamp())
    assert driver.expired == [(ADOPTED, revoke_at)]  # the gateway itself ends the grace period too
    assert out.status["previousKeyId"] == ADOPTED and not driver.revoked_ids
    clock.at += timedelta(seconds=300)
    during = await reconcile_key(env, REF, OWNER, spec, 2, out.status, Cause.DRIFT)
    assert not driver.revoked_ids and during.status["previousKeyId"] == ADOPTED
    clock.at += timedelta(seconds=301)
    after = await reconcile_key(env, REF, OWNER, spec, 2, during.status, Cause.DRIFT)
    assert driver.revoked_ids == [ADOPTED] and after.status["previousKeyId"] is None
    assert "PreviousCredentialRevoked" in [e.reason for e in after.events]
    assert secrets.items["checkout"].data["key"] == new and len(driver.by_id) == 1  # adoption is over


@pytest.mark.parametrize("policy", ["Delete", "Orphan"])
async def test_deleting_a_hash_only_key(policy: str) -> None:
    env, _, driver, _ = setup()
    out = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    await delete_key(env, REF, OWNER, {**SPEC, "deletionPolicy": policy}, 1, out.status)
    assert (f"gateway:delete-by-id:{ADOPTED}" in driver.journal) == (policy == "Delete")


async def test_the_adopted_key_id_survives_a_stale_status() -> None:
    # Tyk's update answer has no key hash: a handler run with an old copy of the status must not lose the id.
    env, secrets, driver, _ = setup(Credential(key="acme123"))
    await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    driver.type = "tyk"
    stale = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.RESUME)
    assert stale.status["keyId"] == ADOPTED
    rotated = await reconcile_key(env, REF, OWNER, {**SPEC, "rotation": {"generation": 1}}, 2, stale.status,
                                  Cause.UPDATE)  # fmt: skip
    assert (
        rotated.status["keyId"] != ADOPTED and "torii.dev/adopted-key-id" not in secrets.items["checkout"].annotations
    )


async def test_a_crash_while_rotating_away_still_revokes_the_adopted_key() -> None:
    # The new key is in the Secret, then the gateway write fails: the adopted key's id must not be forgotten.
    env, secrets, driver, clock = setup()
    first = await reconcile_key(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    spec = {**SPEC, "rotation": {"generation": 1, "gracePeriodSeconds": 60}}
    driver.fail = RetryableGatewayError("gateway tyk: create key: cannot reach")
    failed = await reconcile_key(env, REF, OWNER, spec, 2, first.status, Cause.UPDATE)
    assert failed.retry and "key" in secrets.items["checkout"].data
    driver.fail = None
    clock.at += timedelta(seconds=61)
    # The outcome's status was never written; what was recorded ahead of the Secret write was.
    recorded = {k: v for fields in driver.journal.records for k, v in fields.items()}
    assert recorded["previousKeyId"] == ADOPTED
    done = await reconcile_key(env, REF, OWNER, spec, 2, {**first.status, **recorded}, Cause.UPDATE)
    assert driver.revoked_ids == [ADOPTED] and done.status["previousKeyId"] is None
    assert not any(k.startswith("torii.dev/") for k in secrets.items["checkout"].annotations)


def test_a_key_known_by_id_says_what_would_give_it_a_secret() -> None:
    """A handed-over key or kid can be checked; a basic-auth password cannot (Tyk never returns it): the message
    names only what works for the key's type."""
    user = by_id_message(KeyType.BASIC_AUTH, "5eb0", "tyk", "orders")
    assert "Tyk never returns a password" in user and "spec.rotation.generation" in user
    assert "credentialSecretRef" not in user
    assert "credentialSecretRef to the consumer's kid" in by_id_message(KeyType.JWT, "77aa", "tyk", "feed")
    assert "credentialSecretRef to the key" in by_id_message(KeyType.KEY, "25fa", "tyk", "orders")
