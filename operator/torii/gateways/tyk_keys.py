"""Tyk keys (`/tyk/keys/...`): created with the credential Torii chose, addressed by it (or, adopted, by Tyk's
hash of it), always in the org they belong to, never one whose owner record names another object."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import mmh3

from torii.gateways.base import (
    Credential,
    CredentialKind,
    KeyRequest,
    KeyResult,
    ObjectRef,
    key_owner,
    owner_claim,
    pick,
)
from torii.gateways.errors import (
    AdoptionFailed,
    PermanentGatewayError,
    PolicyViolation,
    RetryableGatewayError,
    UnsafeId,
)
from torii.gateways.http import AdminClient, admin_path
from torii.gateways.tyk_render import KEY_CORE_FIELDS, render_session
from torii.models.gatewaykey import KeyType, QuotaState

RESERVED_KEY_NAMES = frozenset({"create", "preview"})
REVOKE_TIMEOUT = 60.0  # how long a revocation deletes again a key that requests in flight write back
WRITE_BACK_SECONDS = 0.3  # a request past auth when the key was deleted writes its session back within this
EVICT_API = "torii-evict-sentinel"  # the (absent) API a cache-eviction placeholder names: it grants nothing


def key_path(key: str) -> str:
    """`/tyk/keys/<key>`: the key as one safe segment, and not a name Tyk routes elsewhere."""
    if key.lower() in RESERVED_KEY_NAMES:
        raise UnsafeId(f"a key cannot be named {key!r}: Tyk routes that name to another admin endpoint")
    return admin_path("/tyk/keys/{}", key)


PLAIN_ID_PREFIX = "sha256:"
# Session fields that identify a key and that client traffic leaves alone (counters and last_check move).
SESSION_IDENTITY = ("date_created", "org_id", "alias", "expires", "quota_max", "rate", "per")


def digest_id(stored_key: str) -> str:
    return PLAIN_ID_PREFIX + hashlib.sha256(stored_key.encode()).hexdigest()


def _key_id(answer: dict[str, Any]) -> str | None:
    """A non-secret id of a key from Tyk's write answer: Tyk's `key_hash` when the gateway hashes keys, else a
    SHA-256 of the stored key name, so a key whose Secret was lost can still be found and revoked."""
    if answer.get("key_hash"):
        return str(answer["key_hash"])
    return digest_id(str(answer["key"])) if answer.get("key") else None


# Session fields of credentials other than keys, basic-auth users and JWT consumers.
OTHER_CREDENTIAL_FIELDS = ("hmac_enabled", "hmac_string", "certificate", "rsa_certificate_id", "oauth_client_id",
                           "oauth_keys", "enable_http_signature_validation")  # fmt: skip


def session_form(session: dict[str, Any]) -> KeyType | None:
    """What a Tyk session is: a basic-auth user (Tyk answers with its password blanked, its hash type set), a
    JWT consumer (an HMAC secret), a key; None for an HMAC, certificate or OAuth credential."""
    if any(session.get(f) for f in OTHER_CREDENTIAL_FIELDS):
        return None
    basic = session.get("basic_auth_data") or {}
    if basic.get("hash_type") or basic.get("password"):
        return KeyType.BASIC_AUTH
    return KeyType.JWT if (session.get("jwt_data") or {}).get("secret") else KeyType.KEY


def _compared(session: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """What decides whether a stored session is the one Torii would write: its core fields and its APIs."""
    return pick(session, KEY_CORE_FIELDS), frozenset(session.get("access_rights") or {})


def _session_digest(key: str, session: dict[str, Any]) -> int:
    """`_compared` as one number (kept in memory only; the key is part of it, so a rotation is a change)."""
    core, apis = _compared(session)
    return hash((key, repr(core), apis))


def _key_in_sync(desired: dict[str, Any], current: dict[str, Any] | None) -> bool:
    return current is not None and _compared(desired) == _compared(current)


class TykKeys:
    """The key role of the Tyk driver (`KeyRole`): every credential is a key of its own.

    Verified on Tyk 5.10.2: a key created with a chosen value under an org is stored as `<org_id><value>` (the
    create answer's `key` says so). Reads resolve the org from `api_id`, but DELETE takes the org only from the
    `org_id` query parameter: without it Tyk looks for the bare value, answers 404 "There is no such key found"
    and the key keeps working. So every key call names the org, and a revoke is confirmed by reading the key back.

    Tyk also caches sessions on each node for 10 s (`cache.New(10, 5)` in its server.go) and, with `hash_keys`
    on, evicts the wrong cache entry on delete/update (murmur64 of the presented key is cached; the configured
    hash of the stored name is evicted). A revoked or changed key therefore keeps its old powers for up to 10 s:
    the driver waits that long (`session_cache_seconds`; 0 where the gateway's cache is disabled) before it
    reports a key revoked or updated, so "deleted" and "Active" tell the truth.
    """

    credential_kind = CredentialKind.KEY

    def __init__(self, name: str, http: AdminClient, *, org_id: str, session_cache_seconds: float) -> None:
        self.name = name
        self.org_id = org_id
        self.session_cache_seconds = session_cache_seconds
        self._http = http
        # Keys this process wrote or read in sync outside a drift pass, oldest first: object -> (when, org, digest
        # of the session). Tyk has no bulk read of sessions, so without this a drift pass during a burst of new
        # keys would GET each one just written. Each record spares at most one drift check (`_in_sync_since`).
        self._confirmed: dict[ObjectRef, tuple[float, str, int]] = {}

    # ------------------------------------------------------------------------------- the one org rule

    def org(self, request: KeyRequest, session: dict[str, Any] | None = None) -> str:
        """The org every call about a key names: the key's own (its session, once read), else its API's (an
        adopted API keeps its org, and its keys share it), else the connection's."""
        if session is not None and session.get("org_id"):
            return str(session["org_id"])
        return (request.apis[0].org_id if request.apis else None) or self.org_id

    def _params(self, request: KeyRequest, *, session: dict[str, Any] | None = None) -> dict[str, str]:
        api_id = request.apis[0].gateway_id if request.apis else None
        return {"org_id": self.org(request, session), **({"api_id": api_id} if api_id else {})}

    @staticmethod
    def _address(request: KeyRequest) -> tuple[str, dict[str, str]]:
        """How admin calls name the key: by the credential, or (an adopted key Torii has no credential for) by
        Tyk's hash of it (`?hashed=1`: verified in 5.10.2's keyHandler, GET/PUT/DELETE take a hash then)."""
        if request.credential.key or not request.key_id:
            return request.credential.key, {}
        return request.key_id, {"hashed": "1"}

    async def _get(self, request: KeyRequest, key: str, **extra: str) -> dict[str, Any] | None:
        response = await self._http.request(
            "GET", key_path(key), op="get key", params={**self._params(request), **extra}, passthrough=(404,)
        )
        return None if response.status_code == 404 else dict(response.json())

    def _desired(self, request: KeyRequest, current: dict[str, Any] | None, *, by_hash: bool) -> dict[str, Any]:
        """The session Torii writes. By hash (a key Torii knows by id only) it keeps the JWT secret Torii does not
        know: a PUT replaces the whole session, and a consumer's clients sign with that secret. (A basic-auth
        password Tyk keeps by itself: an update without one leaves it, verified in 5.10.2's handleAddOrUpdate.)"""
        desired = render_session(request, self.org(request, current))
        if by_hash and current is not None and current.get("jwt_data") and "jwt_data" not in desired:
            desired["jwt_data"] = current["jwt_data"]
        return desired

    def _claim(self, request: KeyRequest, session: dict[str, Any], *, adopting: bool | None = None) -> None:
        """OwnershipConflict unless the key is `request`'s object's (or, adopting, nobody's)."""
        adopt = request.adopting if adopting is None else adopting
        if (
            refused := owner_claim(self.name, "key", request.ref, session.get("meta_data"), adopting=adopt)
        ) is not None:
            raise refused

    async def _put(self, request: KeyRequest, key: str, session: dict[str, Any], op: str, **extra: str) -> Any:
        return await self._http.request(
            "PUT", key_path(key), op=op, json=session, params={**self._params(request, session=session), **extra},
            passthrough=(404,),
        )  # fmt: skip

    async def _revoke(self, request: KeyRequest, key: str, **extra: str) -> bool:
        """Delete a key of `request`'s object and make sure no node accepts it any more. True when it existed;
        OwnershipConflict (nothing deleted) when the key belongs to another object.

        Verified on Tyk 5.10.2 with several nodes on one Redis: each node caches a key's session under a hash
        of the key as clients send it (10 s), and the DELETE's cluster notification names the stored key, so
        other nodes keep accepting it; a request already past auth also writes the session back to Redis (a
        key with a quota comes back, on one node too). So: DELETE, evict the nodes' caches (`_evict`), look
        again; a key written back is deleted again; once gone, look once more after the cache time."""
        current = await self._get(request, key, **extra)
        if current is None:
            return False
        if EVICT_API not in (current.get("access_rights") or {}):  # else: an eviction placeholder left behind
            self._claim(request, current)
        # DELETE looks only in the org it is told: without it Tyk answers 404 and the key keeps working.
        params = {**self._params(request, session=current), **extra}
        deadline = time.monotonic() + REVOKE_TIMEOUT
        settled = False
        while True:
            deleted = await self._http.request("DELETE", key_path(key), op="delete key", params=params,
                                               passthrough=(404,))  # fmt: skip
            if deleted.status_code == 404 and await self._get(request, key, **extra) is not None:
                # A 404 for a key still accepted (another org) was the defect this check exists for.
                raise RetryableGatewayError(f"gateway {self.name}: a deleted key is still known to Tyk; retrying")
            if not extra:  # the key itself is known (not only its hash): evict it from every node's cache
                await self._evict(key)
            await asyncio.sleep(WRITE_BACK_SECONDS)
            if await self._get(request, key, **extra) is None:
                if settled:
                    return True
                await asyncio.sleep(self.session_cache_seconds)  # until no node can hold it in memory
                settled = await self._get(request, key, **extra) is None
                if settled:
                    return True
            if time.monotonic() > deadline:
                raise RetryableGatewayError(
                    f"gateway {self.name}: a deleted key keeps being written back by requests in flight; retrying"
                )

    async def _evict(self, key: str) -> None:
        """Make every node drop its cached session of `key`: a placeholder written then deleted under the hash
        the nodes cache it by (Tyk's default murmur64 of the key) notifies every node with that hash. The
        placeholder is inactive and grants nothing; it lives for one admin call."""
        cached = format(mmh3.hash64(key, signed=False)[0], "016x")
        placeholder = {"org_id": "", "is_inactive": True, "quota_max": -1,
                       "access_rights": {EVICT_API: {"api_id": EVICT_API, "versions": ["Default"]}}}  # fmt: skip
        path = admin_path("/tyk/keys/{}", cached)
        await self._http.request("POST", path, op="evict key", params={"hashed": "1"}, json=placeholder,
                                 passthrough=(400, 404))  # fmt: skip
        await self._http.request("DELETE", path, op="evict key", params={"hashed": "1", "org_id": ""},
                                 passthrough=(400, 404))  # fmt: skip

    # ------------------------------------------------------------------------------------------ the role

    def _remember(self, request: KeyRequest, key: str, session: dict[str, Any]) -> None:
        self._confirmed.pop(request.ref, None)  # re-inserted last: the dict stays oldest first
        self._confirmed[request.ref] = (time.monotonic(), str(session["org_id"]), _session_digest(key, session))

    def _in_sync_since(self, request: KeyRequest, key: str) -> bool:
        """A drift check answered without a GET: this process confirmed the key (wrote it, or read it in sync)
        since the previous pass, and the session it would write now is the same. A drift pass runs every
        2 x `max_age` (`max_age` is half the interval), so a record that old belongs to the pass before; each
        record is used once, so the next pass reads the key from the gateway again (a key deleted by hand is
        found one pass later at most)."""
        horizon = time.monotonic() - 2 * request.max_age
        while self._confirmed and next(iter(self._confirmed.values()))[0] < horizon:
            del self._confirmed[next(iter(self._confirmed))]  # records no drift check consumed (deleted keys...)
        record = self._confirmed.pop(request.ref, None)
        if record is None:
            return False
        _, org, digest = record
        return digest == _session_digest(key, render_session(request, org))

    async def converge_key(self, request: KeyRequest) -> KeyResult:
        if not request.apis:
            raise PermanentGatewayError("spec.apis/apiGroup: the key refers to no API")
        key, hashed = self._address(request)
        if request.max_age and not hashed and not request.fresh and self._in_sync_since(request, key):
            return KeyResult(None, None, changed=False)
        current = None if request.fresh and not hashed else await self._get(request, key, **hashed)
        if current is None and hashed:
            raise AdoptionFailed(
                f"gateway {self.name}: adopted key {key} no longer exists and Torii never knew its credential: set "
                "spec.rotation.generation to issue a new key"
            )
        if current is not None:
            self._claim(request, current)
        # A key keeps its org; a new one takes its API's (Tyk looks keys up per org).
        desired = self._desired(request, current, by_hash=bool(hashed))
        confirmed = not request.max_age and not hashed  # a drift check's own read spares no later pass
        if _key_in_sync(desired, current):
            if confirmed:
                self._remember(request, key, desired)
            return KeyResult(key if hashed else None, None, changed=False)  # the hash is in status already
        if current is None:
            # Create with the value Torii chose (already stored in the Secret): a retry re-creates the same key.
            response = await self._http.request("POST", key_path(key), op="create key", json=desired,
                                                params=self._params(request, session=desired))  # fmt: skip
        else:
            extra = {"suppress_reset": "1"} if request.keep_quota_counters else {}
            response = await self._put(request, key, desired, "update key", **extra, **hashed)
            await asyncio.sleep(self.session_cache_seconds)  # nodes may serve the cached old session until then
        if confirmed:
            self._remember(request, key, desired)
        answer = response.json()
        # Tyk's update answer has no key_hash: the id in status stays (a digest of the name would replace it).
        key_id = key if hashed else _key_id(answer) if current is None else (answer.get("key_hash") or None)
        return KeyResult(key_id, None, changed=True, created=current is None)

    async def adopted_credential(
        self, request: KeyRequest, key_id: str, supplied: Credential | None, *, read_allowed: bool
    ) -> Credential | None:
        named = request.spec.type != KeyType.KEY  # a basic-auth user or a JWT consumer
        if key_id.startswith(PLAIN_ID_PREFIX):
            if named:
                raise AdoptionFailed(
                    f"gateway {self.name}: spec.adopt.id: basic-auth users and JWT consumers are adopted by "
                    "Tyk's key hash, on gateways that hash keys (hash_keys, Tyk's default)"
                )
            # Tyk does not hash keys: the listing names them, so the credential is recovered from its digest.
            if not read_allowed:
                raise PolicyViolation(
                    f"refused by the tenancy policy of gateway {self.name}: spec.adopt.id: adopting a key Tyk "
                    "stores in plain means reading its credential from the gateway (tenancy.adoption.credentials)"
                )
            stored = next((k for k in await self._plain_keys(request) if digest_id(k) == key_id), None)
            if stored is None:
                raise AdoptionFailed(f"gateway {self.name}: spec.adopt.id: no key with id {key_id} exists")
            if (session := await self._get(request, stored)) is not None:
                self._claim(request, session, adopting=True)
                self._same_form(request, key_id, session)
            return Credential(key=stored)
        adopted = await self._get(request, key_id, hashed="1")
        if adopted is None:
            raise AdoptionFailed(f"gateway {self.name}: spec.adopt.id: no key with hash {key_id} exists")
        self._claim(request, adopted, adopting=True)
        self._same_form(request, key_id, adopted)
        if supplied is None:
            # Tyk keeps only the hash: the credential cannot be recovered. (A basic-auth user always ends here:
            # Tyk never returns its password, not even hashed, so it keeps the one its clients use.)
            return None
        # The supplied credential must name that very key. Tyk hashes with a non-standard murmur variant (or a
        # configured one), so compare the two sessions instead, on what live traffic does not change:
        # date_created is nanosecond-precise.
        presented = await self._get(request, supplied.key)
        if presented is None or pick(presented, SESSION_IDENTITY) != pick(adopted, SESSION_IDENTITY):
            raise AdoptionFailed(
                f"gateway {self.name}: spec.adopt.credentialSecretRef: that Secret holds another key than "
                f"spec.adopt.id {key_id} (or one Tyk does not know)"
            )
        if request.spec.type == KeyType.JWT:
            # The handed-over kid names the consumer; its HMAC secret is the gateway's to give (Tyk returns it).
            secret = str(adopted["jwt_data"]["secret"])  # a JWT consumer (_same_form): it has one
            if not read_allowed:
                raise PolicyViolation(
                    f"refused by the tenancy policy of gateway {self.name}: spec.adopt: delivering a JWT "
                    "consumer's secret means reading it from the gateway (tenancy.adoption.credentials)"
                )
            return Credential(key=supplied.key, client_secret=secret)
        return supplied

    def _same_form(self, request: KeyRequest, key_id: str, session: dict[str, Any]) -> None:
        """AdoptionFailed unless the adopted session is the credential spec.type says: adopted as another type,
        Torii's writes would drop what it is (a consumer's secret written as a key's session, for one)."""
        form = session_form(session)
        if form != request.spec.type:
            what = f"a {form.value} credential" if form else "an HMAC, certificate or OAuth credential"
            raise AdoptionFailed(f"gateway {self.name}: spec.type: key {key_id} is {what} on the gateway, not "
                                 f"{request.spec.type.value}")  # fmt: skip

    async def _plain_keys(self, request: KeyRequest) -> list[str]:
        """The stored names of the org's keys (where Tyk does not hash keys, the names are the credentials)."""
        org = self.org(request)
        response = await self._http.request("GET", "/tyk/keys/", op="list keys",
                                            params={**self._params(request), "filter": org})  # fmt: skip
        return list(response.json().get("keys") or [])

    async def expire_by_id(self, request: KeyRequest, key_id: str, at_unix: int) -> None:
        current = await self._get(request, key_id, hashed="1")
        if current is None:
            return
        self._claim(request, current, adopting=True)
        current["expires"] = at_unix
        current["meta_data"] = {**(current.get("meta_data") or {}), **key_owner(request.ref, "GatewayKey")}
        await self._put(request, key_id, current, "update key", suppress_reset="1", hashed="1")

    async def expire_previous(self, request: KeyRequest, previous: Credential, at_unix: int) -> None:
        """Let Tyk itself refuse a rotated-out key after its grace period (even if Torii is down then)."""
        current = await self._get(request, previous.key)
        if current is None:
            return
        self._claim(request, current)
        current["expires"] = at_unix
        await self._put(request, previous.key, current, "update key", suppress_reset="1")

    async def delete_key(self, request: KeyRequest) -> bool:
        self._confirmed.pop(request.ref, None)
        key, hashed = self._address(request)
        return await self._revoke(request, key, **hashed)

    async def revoke_previous(self, request: KeyRequest, previous: Credential) -> None:
        # A rotated-out Tyk key is a separate key: delete it (it has also been expiring natively since rotation).
        await self._revoke(request, previous.key)

    async def revoke_by_id(self, request: KeyRequest, key_id: str) -> None:
        if not key_id.startswith(PLAIN_ID_PREFIX):
            await self._revoke(request, key_id, hashed="1")  # Tyk's own key hash
            return
        # Tyk does not hash keys: find the stored key whose digest this is among the org's keys.
        for stored in await self._plain_keys(request):
            if digest_id(stored) == key_id:
                await self._revoke(request, stored)

    async def key_quota(self, request: KeyRequest) -> QuotaState | None:
        if not request.apis:
            return None
        key, hashed = self._address(request)
        session = await self._get(request, key, **hashed)
        if session is None or int(session.get("quota_max", -1)) < 0:
            return None
        renews = session.get("quota_renews")
        return QuotaState(
            max=session.get("quota_max"),
            remaining=session.get("quota_remaining"),
            renews_at=datetime.fromtimestamp(int(renews), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if renews else None,
            checked_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    async def reset_key_quota(self, request: KeyRequest) -> None:
        # Tyk resets the live quota when a key is written without suppress_reset.
        key, hashed = self._address(request)
        current = await self._get(request, key, **hashed)
        await self._put(request, key, self._desired(request, current, by_hash=bool(hashed)), "reset quota", **hashed)
