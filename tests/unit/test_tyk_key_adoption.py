"""Adopting Tyk basic-auth users and JWT consumers (TykKeys, against a small model of Tyk's key endpoints): the
consumer's secret only with the tenancy grant, a session adopted as another type refused, and writes by hash
that keep a secret Torii does not know. (The real Tyk runs it end to end in tests/e2e/test_adoption.py.)"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from torii.gateways.base import Credential, KeyRequest, ObjectRef, ResolvedApi
from torii.gateways.errors import AdoptionFailed, PolicyViolation
from torii.gateways.http import AdminClient
from torii.gateways.tyk_keys import TykKeys
from torii.models.gatewaykey import GatewayKeySpec

REF = ObjectRef("shop", "feed-consumer", "GatewayKey", "uid-1")
CONSUMER_SECRET = "hmac-secret-of-the-consumer"


class KeyStore:
    """Tyk's `/tyk/keys/<key>`: sessions by hash; a key's name resolves to its hash (`?hashed=1` takes one)."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {}
        self.puts: list[dict[str, Any]] = []

    def add(self, name: str, key_hash: str, **fields: Any) -> None:
        self.names[name] = key_hash
        self.sessions[key_hash] = {
            "org_id": "acme", "rate": 100, "per": 1, "quota_max": -1, "expires": 0, "alias": name,
            "date_created": "2026-12-03T10:00:00.1Z", "access_rights": {"feed": {"api_id": "feed"}},
            "basic_auth_data": {"password": "", "hash_type": ""}, "jwt_data": {"secret": ""}, **fields,
        }  # fmt: skip

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = request.url.path.rsplit("/", 1)[1]
        key_hash = key if request.url.params.get("hashed") else self.names.get(key)
        if key_hash not in self.sessions:
            return httpx.Response(404, json={"status": "error", "message": "Key not found"})
        if request.method == "PUT":
            body = json.loads(request.content)
            self.puts.append(body)
            self.sessions[key_hash] = body
            return httpx.Response(200, json={"key": key, "status": "ok", "action": "modified"})
        return httpx.Response(200, json=self.sessions[key_hash])


def keys(store: KeyStore) -> TykKeys:
    http = AdminClient("tyk", "http://tyk.test", transport=httpx.MockTransport(store))
    return TykKeys("tyk", http, org_id="acme", session_cache_seconds=0)


def request(form: str, **extra: Any) -> KeyRequest:
    spec = GatewayKeySpec.model_validate({"type": form, "apis": [{"name": "feed"}], "adopt": {"id": "h1"}})
    return KeyRequest(REF, spec, (ResolvedApi("feed", "feed", (), "acme"),), None, Credential(), adopting=True,
                      **extra)  # fmt: skip


@pytest.fixture
def store() -> KeyStore:
    tyk = KeyStore()
    tyk.add("consumer-kid", "h1", jwt_data={"secret": CONSUMER_SECRET})
    tyk.add("plain-key", "h2")
    tyk.add("alice", "h3", basic_auth_data={"password": "", "hash_type": "bcrypt"})
    return tyk


async def test_a_handed_over_kid_brings_the_consumers_secret_only_with_the_grant(store: KeyStore) -> None:
    driver, kid = keys(store), Credential(key="consumer-kid")
    with pytest.raises(PolicyViolation) as refused:
        await driver.adopted_credential(request("jwt"), "h1", kid, read_allowed=False)
    assert "tenancy.adoption.credentials" in str(refused.value) and CONSUMER_SECRET not in str(refused.value)
    got = await driver.adopted_credential(request("jwt"), "h1", kid, read_allowed=True)
    assert got == Credential(key="consumer-kid", client_secret=CONSUMER_SECRET)
    # A kid naming another key is refused: the two sessions differ.
    with pytest.raises(AdoptionFailed, match="another key"):
        await driver.adopted_credential(request("jwt"), "h1", Credential(key="plain-key"), read_allowed=True)
    # Without a kid: managed by id, nothing recovered.
    assert await driver.adopted_credential(request("jwt"), "h1", None, read_allowed=True) is None


@pytest.mark.parametrize(
    ("form", "key_hash", "found"),
    [("key", "h1", "a jwt credential"), ("basicAuth", "h2", "a key credential"), ("jwt", "h3", "a basicAuth")],
)
async def test_a_session_adopted_as_another_type_is_refused(
    store: KeyStore, form: str, key_hash: str, found: str
) -> None:
    with pytest.raises(AdoptionFailed, match=f"spec.type: key {key_hash} is {found}"):
        await keys(store).adopted_credential(request(form), key_hash, None, read_allowed=True)
    assert store.puts == []


async def test_writes_by_hash_keep_the_secret_torii_does_not_know(store: KeyStore) -> None:
    """A PUT replaces the whole session: a consumer known by id only keeps the secret its clients sign with,
    through new limits and a quota reset."""
    driver = keys(store)
    by_id = request("jwt", key_id="h1")
    result = await driver.converge_key(by_id)
    assert result.changed and store.puts[-1]["jwt_data"] == {"secret": CONSUMER_SECRET}
    await driver.reset_key_quota(by_id)
    assert len(store.puts) == 2 and store.puts[-1]["jwt_data"] == {"secret": CONSUMER_SECRET}
    assert store.sessions["h1"]["jwt_data"] == {"secret": CONSUMER_SECRET}
