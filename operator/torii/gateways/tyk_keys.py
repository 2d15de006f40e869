"""Tyk keys (`/tyk/keys/...`): created with the credential Torii chose, addressed by it (or, adopted, by Tyk's
hash of it), always in the org they belong to, never one whose owner record names another object."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

from torii.gateways.base import (
    Credential,
    CredentialKind,
    KeyRequest,
    KeyResult,
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
from torii.models.gatewaykey import QuotaState

RESERVED_KEY_NAMES = frozenset({"create", "preview"})


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


def _key_in_sync(desired: dict[str, Any], current: dict[str, Any] | None) -> bool:
    if current is None:
        return False
    return pick(desired, KEY_CORE_FIELDS) == pick(current, KEY_CORE_FIELDS) and set(desired["access_rights"]) == set(
        current.get("access_rights") or {}
    )


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

    def _key_params(self, api_id: str | None = None, *, org: str | None = None, **extra: str) -> dict[str, str]:
        return {"org_id": org or self.org_id, **({"api_id": api_id} if api_id else {}), **extra}

    def _org(self, request: KeyRequest) -> str:
        """The org of a request's keys: its API's (an adopted API keeps its own org), else the connection's."""
        return (request.apis[0].org_id if request.apis else None) or self.org_id

    async def _get_key(self, key: str, api_id: str | None = None, *, hashed: bool = False) -> dict[str, Any] | None:
        params = self._key_params(api_id, **({"hashed": "1"} if hashed else {}))
        response = await self._http.request("GET", key_path(key), op="get key", params=params, passthrough=(404,))
        if response.status_code == 404:
            return None
        body: dict[str, Any] = response.json()
        return body

    async def _revoke(
        self, key: str, api_id: str | None, request: KeyRequest, *, hashed: bool = False, org: str | None = None
    ) -> bool:
        """Delete a key of `request`'s object and make sure Tyk no longer knows it. True when it existed;
        OwnershipConflict (nothing deleted) when the key belongs to another object."""
        current = await self._get_key(key, api_id, hashed=hashed)
        if current is None:
            return False
        if (refused := owner_claim(self.name, "key", request.ref, current.get("meta_data"),
                                   adopting=request.adopting)) is not None:  # fmt: skip
            raise refused
        # DELETE looks only in the org it is told: the key's own (an adopted API's may differ from Torii's).
        in_org = str(current.get("org_id") or org or self.org_id)
        await self._http.request(
            "DELETE", key_path(key), op="delete key", params=self._key_params(api_id, org=in_org, **(
                {"hashed": "1"} if hashed else {})), passthrough=(404,),
        )  # fmt: skip
        # A 404 is "gone" only if the key really is unknown now (a 404 for a key still accepted was the defect
        # this check exists for).
        if await self._get_key(key, api_id, hashed=hashed) is not None:
            raise RetryableGatewayError(f"gateway {self.name}: a deleted key is still known to Tyk; retrying")
        await asyncio.sleep(self.session_cache_seconds)  # until no node's session cache accepts it
        return True

    @staticmethod
    def _address(request: KeyRequest) -> tuple[str, bool]:
        """How admin calls name the key: by the credential, or (an adopted key Torii has no credential for) by
        Tyk's hash of it (`?hashed=1`: verified in 5.10.2's keyHandler, GET/PUT/DELETE take a hash then)."""
        if request.credential.key or not request.key_id:
            return request.credential.key, False
        return request.key_id, True

    async def converge_key(self, request: KeyRequest) -> KeyResult:
        if not request.apis:
            raise PermanentGatewayError("spec.apis/apiGroup: the key refers to no API")
        key, hashed = self._address(request)
        first_api = request.apis[0].gateway_id
        current = await self._get_key(key, first_api, hashed=hashed)
        if current is None and hashed:
            raise AdoptionFailed(
                f"gateway {self.name}: adopted key {key} no longer exists and Torii never knew its credential: set "
                "spec.rotation.generation to issue a new key"
            )
        if (
            current is not None
            and (
                refused := owner_claim(
                    self.name, "key", request.ref, current.get("meta_data"), adopting=request.adopting
                )
            )
            is not None
        ):
            raise refused  # fmt: skip
        # A key keeps its org; a new one takes its API's (an adopted API may have another org than Torii's own,
        # and Tyk looks keys up per org).
        api_org = self._org(request)
        org_id = str(current.get("org_id") or api_org) if current is not None else api_org
        desired = render_session(request, org_id)
        if _key_in_sync(desired, current):
            return KeyResult(key if hashed else None, None, changed=False)  # the hash is in status already
        hashed_param = {"hashed": "1"} if hashed else {}
        if current is None:
            # Create with the value Torii chose (already stored in the Secret): a retry re-creates the same key.
            response = await self._http.request(
                "POST", key_path(key), op="create key", json=desired, params=self._key_params()
            )
        else:
            extra = {"suppress_reset": "1"} if request.keep_quota_counters else {}
            response = await self._http.request(
                "PUT", key_path(key), op="update key", json=desired,
                params=self._key_params(**extra, **hashed_param),
            )  # fmt: skip
            await asyncio.sleep(self.session_cache_seconds)  # nodes may serve the cached old session until then
        answer = response.json()
        # Tyk's update answer has no key_hash: the id in status stays (a digest of the name would replace it).
        key_id = key if hashed else _key_id(answer) if current is None else (answer.get("key_hash") or None)
        return KeyResult(key_id, None, changed=True, created=current is None)

    async def adopted_credential(
        self, request: KeyRequest, key_id: str, supplied: Credential | None, *, read_allowed: bool
    ) -> Credential | None:
        api_id = request.apis[0].gateway_id if request.apis else None
        if key_id.startswith(PLAIN_ID_PREFIX):
            # Tyk does not hash keys: the listing names them, so the credential is recovered from its digest.
            if not read_allowed:
                raise PolicyViolation(
                    f"refused by the tenancy policy of gateway {self.name}: spec.adopt.id: adopting a key Tyk "
                    "stores in plain means reading its credential from the gateway (tenancy.adoption.credentials)"
                )
            stored = await self._find_plain(api_id, self._org(request), key_id)
            if stored is None:
                raise AdoptionFailed(f"gateway {self.name}: spec.adopt.id: no key with id {key_id} exists")
            session = await self._get_key(stored, api_id)
            if (
                session is not None
                and (refused := owner_claim(self.name, "key", request.ref, session.get("meta_data"), adopting=True))
                is not None
            ):
                raise refused  # fmt: skip
            return Credential(key=stored)
        adopted = await self._get_key(key_id, api_id, hashed=True)
        if adopted is None:
            raise AdoptionFailed(f"gateway {self.name}: spec.adopt.id: no key with hash {key_id} exists")
        if (refused := owner_claim(self.name, "key", request.ref, adopted.get("meta_data"), adopting=True)) is not None:
            raise refused
        if supplied is None:
            return None  # Tyk keeps only the hash: the credential cannot be recovered
        # The supplied credential must name that very key. Tyk hashes with a non-standard murmur variant (or a
        # configured one), so compare the two sessions instead, on what live traffic does not change:
        # date_created is nanosecond-precise.
        presented = await self._get_key(supplied.key, api_id)
        if presented is None or pick(presented, SESSION_IDENTITY) != pick(adopted, SESSION_IDENTITY):
            raise AdoptionFailed(
                f"gateway {self.name}: spec.adopt.credentialSecretRef: that Secret holds another key than "
                f"spec.adopt.id {key_id} (or one Tyk does not know)"
            )
        return supplied

    async def _find_plain(self, api_id: str | None, org: str, digest: str) -> str | None:
        response = await self._http.request(
            "GET", "/tyk/keys/", op="list keys", params=self._key_params(api_id, org=org, filter=org)
        )
        return next((k for k in response.json().get("keys") or [] if digest_id(k) == digest), None)

    async def expire_by_id(self, request: KeyRequest, key_id: str, at_unix: int) -> None:
        api_id = request.apis[0].gateway_id if request.apis else None
        current = await self._get_key(key_id, api_id, hashed=True)
        if current is None:
            return
        if (refused := owner_claim(self.name, "key", request.ref, current.get("meta_data"), adopting=True)) is not None:
            raise refused
        current["expires"] = at_unix
        current["meta_data"] = {**(current.get("meta_data") or {}), **key_owner(request.ref, "GatewayKey")}
        await self._http.request(
            "PUT", key_path(key_id), op="update key", json=current,
            params=self._key_params(suppress_reset="1", hashed="1"), passthrough=(404,),
        )  # fmt: skip

    async def delete_key(self, request: KeyRequest) -> bool:
        key, hashed = self._address(request)
        api_id = request.apis[0].gateway_id if request.apis else None
        return await self._revoke(key, api_id, request, hashed=hashed, org=self._org(request))

    async def revoke_previous(self, request: KeyRequest, previous: Credential) -> None:
        # A rotated-out Tyk key is a separate key: delete it (it has also been expiring natively since rotation).
        api_id = request.apis[0].gateway_id if request.apis else None
        await self._revoke(previous.key, api_id, request, org=self._org(request))

    async def revoke_by_id(self, request: KeyRequest, key_id: str) -> None:
        api_id = request.apis[0].gateway_id if request.apis else None
        if not key_id.startswith(PLAIN_ID_PREFIX):
            await self._revoke(key_id, api_id, request, hashed=True)  # Tyk's own key hash
            return
        # Tyk does not hash keys: find the stored key whose digest this is among the org's keys.
        org = self._org(request)
        response = await self._http.request(
            "GET", "/tyk/keys/", op="list keys", params=self._key_params(api_id, org=org, filter=org)
        )
        for stored in response.json().get("keys") or []:
            if digest_id(stored) == key_id:
                await self._revoke(stored, api_id, request, org=org)

    async def expire_previous(self, request: KeyRequest, previous: Credential, at_unix: int) -> None:
        """Let Tyk itself refuse a rotated-out key after its grace period (even if Torii is down then)."""
        key, api_id = previous.key, request.apis[0].gateway_id if request.apis else None
        current = await self._get_key(key, api_id)
        if current is None:
            return
        if (refused := owner_claim(self.name, "key", request.ref, current.get("meta_data"),
                                   adopting=request.adopting)) is not None:  # fmt: skip
            raise refused
        current["expires"] = at_unix
        await self._http.request(
            "PUT", key_path(key), op="update key", json=current,
            params=self._key_params(suppress_reset="1"), passthrough=(404,),
        )  # fmt: skip

    async def key_quota(self, request: KeyRequest) -> QuotaState | None:
        if not request.apis:
            return None
        key, hashed = self._address(request)
        session = await self._get_key(key, request.apis[0].gateway_id, hashed=hashed)
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
        current = await self._get_key(key, request.apis[0].gateway_id if request.apis else None, hashed=hashed)
        session = render_session(request, str((current or {}).get("org_id") or self.org_id))
        await self._http.request(
            "PUT", key_path(key), op="reset quota", json=session,
            params=self._key_params(**({"hashed": "1"} if hashed else {})),
        )  # fmt: skip

    # ------------------------------------------------------------------------------------------- OAuth
