"""Tyk Gateway OSS driver (classic API definitions over `/tyk/...`, header `X-Tyk-Authorization`).

Verified behaviour this relies on (see shared notes): `POST /tyk/apis` is an upsert that writes the file but
does not load it; `GET /tyk/apis/` and `GET/PUT/DELETE /tyk/apis/{id}` only see loaded APIs; a reload loads
everything. GatewayAPIs are converged in bursts by `tyk_sync.TykApiSync` (list, write what differs, one reload,
list); keys and OAuth clients need no reload and are handled one by one here.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from datetime import UTC, datetime
from typing import Any

import httpx

from torii.gateways.base import (
    OWNER_META,
    ConvergeResult,
    Credential,
    Inventory,
    KeyRequest,
    KeyResult,
    OAuthClientRequest,
    ObjectRef,
    api_gateway_id,
    deep_merge,
    dotted_get,
    dotted_set,
    fingerprint,
    key_owner,
    owner_claim,
    pick,
    without_fields,
)
from torii.gateways.burst import Remove
from torii.gateways.errors import (
    AdoptionFailed,
    PermanentGatewayError,
    PolicyViolation,
    RetryableGatewayError,
    UnsafeId,
)
from torii.gateways.http import AdminClient, CallObserver, admin_path
from torii.gateways.tyk_sync import TykApiSync
from torii.models.gatewayapi import TYK_OWNED_FIELDS, ApiHealth, AuthMode, GatewayAPISpec
from torii.models.gatewaykey import TYK_KEY_OWNED_FIELDS, QuotaState

ADMIN_HEADER = "X-Tyk-Authorization"


def with_fingerprint(definition: dict[str, Any]) -> dict[str, Any]:
    out = deep_merge(definition, {"config_data": {"torii": {"fingerprint": ""}}})
    out["config_data"]["torii"]["fingerprint"] = fingerprint(definition)
    return out


# Fields Torii derives from the neutral spec (routing, auth mode, activation). `spec.tyk` may not change them:
# `use_keyless: true` there would open a key-protected API to everyone. Overridden, and said in Ready's message.
NEUTRAL_FIELDS = {
    "active": "spec.active",
    "use_keyless": "spec.auth",
    "use_standard_auth": "spec.auth",
    "use_oauth2": "spec.auth",
    "proxy.listen_path": "spec.listenPath",
    "proxy.target_url": "spec.upstream",
    "proxy.strip_listen_path": "spec.stripListenPath",
    "proxy.enable_load_balancing": "spec.upstream.targets",
    "proxy.target_list": "spec.upstream.targets",
    "config_data.torii": "(Torii's own bookkeeping)",
}


def overridden_fields(spec: GatewayAPISpec, definition: dict[str, Any]) -> list[str]:
    """The `spec.tyk` fields that Torii overrides in `definition` (each with the neutral field to use)."""
    notes = []
    for path, neutral in NEUTRAL_FIELDS.items():
        present, value = dotted_get(spec.tyk or {}, path)
        if present and value != dotted_get(definition, path)[1]:
            notes.append(f"spec.tyk.{path} is ignored: Torii sets it from {neutral}")
    return notes


def owner_record(ref: ObjectRef, kind: str) -> dict[str, str]:
    return {"kind": ref.kind or kind, "namespace": ref.namespace, "name": ref.name, "uid": ref.uid}


def render_api_definition(ref: ObjectRef, spec: GatewayAPISpec, *, api_id: str, org_id: str) -> dict[str, Any]:
    """The Tyk classic API definition for a GatewayAPI: neutral fields, `spec.tyk` merged over them, then the
    fields of NEUTRAL_FIELDS put back (they follow the neutral spec only)."""
    urls = spec.upstream.urls
    definition: dict[str, Any] = {
        "name": str(ref),
        "api_id": api_id,
        "org_id": org_id,
        "active": spec.active,
        "use_keyless": spec.auth == AuthMode.KEYLESS,
        "use_standard_auth": spec.auth == AuthMode.KEY,
        "use_oauth2": spec.auth == AuthMode.OAUTH2,
        "proxy": {
            "listen_path": spec.listen_path,
            "target_url": urls[0],
            "strip_listen_path": spec.strip_listen_path,
            "enable_load_balancing": len(urls) > 1,
            "target_list": urls if len(urls) > 1 else [],
        },
        "version_data": {
            "not_versioned": True,
            "default_version": "Default",
            "versions": {"Default": {"name": "Default", "use_extended_paths": True}},
        },
        "tags": list(spec.tags),
        # The owner record: Torii never writes or deletes an API whose record names another object.
        "config_data": {"torii": owner_record(ref, "GatewayAPI")},
    }
    if spec.auth == AuthMode.KEY:
        definition["auth"] = {"auth_header_name": "Authorization"}
        definition["auth_configs"] = {"authToken": {"auth_header_name": "Authorization"}}
    if spec.auth == AuthMode.OAUTH2:
        definition["oauth_meta"] = {
            "allowed_access_types": ["authorization_code", "refresh_token", "client_credentials"],
            "allowed_authorize_types": ["code", "token"],
            "auth_login_redirect": "",
        }
        definition["notifications"] = {"shared_secret": "", "oauth_on_keychange_url": ""}
    if spec.rate_limit is not None:
        definition["global_rate_limit"] = {"rate": spec.rate_limit.rate, "per": spec.rate_limit.per}
    if spec.cors is not None:
        definition["CORS"] = {
            "enable": spec.cors.enabled,
            "allowed_origins": spec.cors.allowed_origins,
            "allowed_methods": spec.cors.allowed_methods,
            "allowed_headers": spec.cors.allowed_headers,
            "exposed_headers": spec.cors.exposed_headers,
            "allow_credentials": spec.cors.allow_credentials,
            "max_age": spec.cors.max_age,
            "options_passthrough": False,
        }
    if spec.tyk:
        neutral = definition
        definition = deep_merge(definition, without_fields(spec.tyk, TYK_OWNED_FIELDS, fold=True), fold=True)
        for path in NEUTRAL_FIELDS:
            present, value = dotted_get(neutral, path)
            if present:
                dotted_set(definition, path, value)
    return definition


# ------------------------------------------------------------------------------------------------------ keys

# Tyk has no "unlimited" rate: a key without spec.rateLimit gets a rate no client can reach.
UNLIMITED_RATE = {"rate": 1_000_000_000, "per": 1}
QUOTA_SECONDS = {"day": 86_400, "month": 2_592_000}
KEY_CORE_FIELDS = (
    "org_id", "rate", "per", "quota_max", "quota_renewal_rate", "expires", "is_inactive",
    "meta_data.torii-fingerprint",
)  # fmt: skip


def _unix(rfc3339: str | None) -> int:
    if not rfc3339:
        return 0
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


def render_session(request: KeyRequest, org_id: str) -> dict[str, Any]:
    """The Tyk session object of a key: access rights from the referenced APIs, limits from the spec."""
    spec = request.spec
    rate = {"rate": spec.rate_limit.rate, "per": spec.rate_limit.per} if spec.rate_limit else UNLIMITED_RATE
    session: dict[str, Any] = {
        "org_id": org_id,
        "alias": str(request.ref),
        **rate,
        "allowance": rate["rate"],
        "quota_max": spec.quota.max if spec.quota else -1,
        "quota_renewal_rate": QUOTA_SECONDS[spec.quota.period.value] if spec.quota else 0,
        "expires": _unix(spec.expires),
        "is_inactive": not spec.enabled,
        "tags": list(spec.tags),
        "meta_data": dict(spec.metadata),
        "access_rights": {
            api.gateway_id: {
                "api_id": api.gateway_id,
                "api_name": api.name,
                "versions": list(api.versions) or ["Default"],
                "allowed_urls": [],
            }
            for api in request.apis
        },
    }
    if spec.tyk:
        session = deep_merge(session, without_fields(spec.tyk, TYK_KEY_OWNED_FIELDS, fold=True), fold=True)
    # The owner record last: neither spec.metadata nor spec.tyk can forge it.
    session["meta_data"] = {k: v for k, v in (session.get("meta_data") or {}).items() if not k.startswith("torii-")}
    session["meta_data"] |= key_owner(request.ref, "GatewayKey")
    session["meta_data"]["torii-fingerprint"] = fingerprint(session)
    return session


# Key names Tyk's admin router takes for other routes (`POST /tyk/keys/create`, `/tyk/keys/preview`).
RESERVED_KEY_NAMES = frozenset({"create", "preview"})


def key_path(key: str) -> str:
    """`/tyk/keys/<key>`: the key as one safe segment, and not a name Tyk routes elsewhere."""
    if key.lower() in RESERVED_KEY_NAMES:
        raise UnsafeId(f"a key cannot be named {key!r}: Tyk routes that name to another admin endpoint")
    return admin_path("/tyk/keys/{}", key)


PLAIN_ID_PREFIX = "sha256:"
# Session fields that identify a key and that client traffic leaves alone (counters and last_check move).
SESSION_IDENTITY = ("date_created", "org_id", "alias", "expires", "quota_max", "rate", "per")


def _digest(stored_key: str) -> str:
    return PLAIN_ID_PREFIX + hashlib.sha256(stored_key.encode()).hexdigest()


def _key_id(answer: dict[str, Any]) -> str | None:
    """A non-secret id of a key from Tyk's write answer: Tyk's `key_hash` when the gateway hashes keys, else a
    SHA-256 of the stored key name, so a key whose Secret was lost can still be found and revoked."""
    if answer.get("key_hash"):
        return str(answer["key_hash"])
    return _digest(str(answer["key"])) if answer.get("key") else None


def _key_in_sync(desired: dict[str, Any], current: dict[str, Any] | None) -> bool:
    if current is None:
        return False
    return pick(desired, KEY_CORE_FIELDS) == pick(current, KEY_CORE_FIELDS) and set(desired["access_rights"]) == set(
        current.get("access_rights") or {}
    )


class TykKeys:
    """Key and OAuth client operations of the Tyk driver (mixed into TykDriver).

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

    name: str
    org_id: str
    session_cache_seconds: float
    _http: AdminClient

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
        return next((k for k in response.json().get("keys") or [] if _digest(k) == digest), None)

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
            if _digest(stored) == key_id:
                await self._revoke(stored, api_id, request, org=org)

    async def expire_key(self, request: KeyRequest, key: str, api_id: str, at_unix: int) -> None:
        """Let Tyk itself refuse a rotated-out key after its grace period (even if Torii is down then)."""
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

    async def _oauth_clients(self, api_id: str, *, api_gone_ok: bool = False) -> list[dict[str, Any]]:
        """The API's OAuth clients; an API Tyk no longer has answers 404 (none, when `api_gone_ok`)."""
        response = await self._http.request(
            "GET", admin_path("/tyk/oauth/clients/{}", api_id), op="list OAuth clients",
            passthrough=(404,) if api_gone_ok else (),
        )  # fmt: skip
        return [] if response.status_code == 404 else list(response.json() or [])

    async def converge_oauth_client(self, request: OAuthClientRequest) -> bool:
        desired = {
            "client_id": request.client_id,
            "secret": request.client_secret,
            "redirect_uri": request.redirect_uri,
            "api_id": request.api_id,
            "description": request.description,
            "meta_data": {k: v for k, v in request.metadata.items() if not k.startswith("torii-")}
            | key_owner(request.ref, "OAuthClient"),
        }
        if request.policy:
            desired["policy_id"] = request.policy
        existing = next(
            (c for c in await self._oauth_clients(request.api_id) if c.get("client_id") == request.client_id), None
        )
        if existing is not None and (
            refused := owner_claim(
                self.name, "OAuth client", request.ref, existing.get("meta_data"), adopting=request.adopting
            )
        ):
            raise refused  # fmt: skip
        if existing is not None:
            same = (
                (existing.get("meta_data") or {}).get(OWNER_META) == str(request.ref)
                and existing.get("secret") == request.client_secret
                and existing.get("redirect_uri") == request.redirect_uri
                and (existing.get("policy_id") or None) == request.policy
                and existing.get("description", "") == request.description
            )
            if same:
                return False
            # The seed's OAuth API has no update: re-create with the same id and secret (the Secret stays valid).
            await self.delete_oauth_client(request)
        await self._http.request("POST", "/tyk/oauth/clients/create", op="create OAuth client", json=desired)
        return True

    async def adopted_oauth_client(self, ref: ObjectRef, api_id: str, client_id: str) -> str:
        client = next((c for c in await self._oauth_clients(api_id) if c.get("client_id") == client_id), None)
        if client is None:
            raise AdoptionFailed(f"gateway {self.name}: spec.adopt.clientId: API {api_id} has no OAuth client "
                                 f"{client_id}")  # fmt: skip
        if (refused := owner_claim(self.name, "OAuth client", ref, client.get("meta_data"), adopting=True)) is not None:
            raise refused
        return str(client.get("secret") or "")

    async def delete_oauth_client(self, request: OAuthClientRequest) -> bool:
        clients = await self._oauth_clients(request.api_id, api_gone_ok=True)  # no API, no client: gone
        existing = next((c for c in clients if c.get("client_id") == request.client_id), None)
        if existing is None:
            return False
        if (refused := owner_claim(self.name, "OAuth client", request.ref, existing.get("meta_data"),
                                   adopting=request.adopting)) is not None:  # fmt: skip
            raise refused
        response = await self._http.request(
            "DELETE", admin_path("/tyk/oauth/clients/{}/{}", request.api_id, request.client_id),
            op="delete OAuth client", passthrough=(404,),
        )  # fmt: skip
        return response.status_code != 404


class TykDriver(TykKeys):
    type = "tyk"
    neutral_fields = frozenset(NEUTRAL_FIELDS)

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        *,
        org_id: str = "torii",
        id_prefix: str = "torii",
        transport: httpx.AsyncBaseTransport | None = None,
        observer: CallObserver | None = None,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 30.0,
        reload_quiet: float = 0.25,
        reload_max_delay: float = 2.0,
        reload_scope: str = "node",
        load_timeout: float = 30.0,
        session_cache_seconds: float = 10.0,
        api_health: bool = False,
    ) -> None:
        self.name = name
        self.org_id = org_id
        self.id_prefix = id_prefix
        self.reload_scope = reload_scope
        self.session_cache_seconds = session_cache_seconds
        self.api_health_enabled = api_health
        self.load_timeout = load_timeout
        self.admin_urls = [url]
        self._http = AdminClient(
            name, url, headers={ADMIN_HEADER: secret}, transport=transport, observer=observer, timeout=timeout,
            verify=verify, secrets=[secret],
        )  # fmt: skip
        self.apis = TykApiSync(
            name, self._http, self._reload_now, quiet=reload_quiet, max_delay=reload_max_delay,
            load_timeout=load_timeout,
        )  # fmt: skip

    @property
    def admin_calls(self) -> int:
        return self._http.calls

    @property
    def reloads(self) -> int:
        return self.apis.reloads

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _reload_now(self) -> None:
        if self.reload_scope == "group":
            # Every node of the cluster (through Redis pub/sub); returns before anything reloaded, so callers
            # confirm by reading the API back until this node serves what was written (`_await_loaded`).
            await self._http.request("GET", "/tyk/reload/group", op="reload group")
            return
        # `/tyk/reload/?block=true` returns only after this node reloaded.
        await self._http.request("GET", "/tyk/reload/", op="reload", params={"block": "true"})

    async def check(self) -> str:
        await self._http.request("GET", "/tyk/apis/", op="list APIs")
        hello = await self._http.request("GET", "/hello", op="hello", passthrough=(503,))
        try:
            version = str(hello.json().get("version", "unknown"))
        except ValueError:
            version = "unknown"
        return f"Tyk Gateway {version} at {self._http.base_url}"

    async def converge_api(self, ref: ObjectRef, spec: GatewayAPISpec, *, max_age: float = 0.0) -> ConvergeResult:
        api_id = api_gateway_id(ref, spec, self.id_prefix)
        org_id = spec.adopt.org_id if spec.adopt and spec.adopt.org_id else self.org_id
        if not spec.active:
            # Verified on 5.10.2: Tyk OSS serves every loaded classic definition, `active: false` included (the
            # flag is the Dashboard's). An inactive API is therefore kept off the gateway altogether.
            removed = await self.apis.submit(api_id, Remove((ref.namespace, ref.name), settled=True))
            return ConvergeResult(api_id, changed=removed.changed)
        desired = with_fingerprint(render_api_definition(ref, spec, api_id=api_id, org_id=org_id))
        notes = tuple(overridden_fields(spec, desired))
        applied = await self.apis.put(api_id, desired, max_age=max_age, adopting=spec.adopt is not None)
        return ConvergeResult(api_id, changed=applied.changed, created=applied.created, notes=notes)

    async def delete_api(self, ref: ObjectRef, gateway_id: str | None = None) -> bool:
        return await self.apis.remove(gateway_id or ref.gateway_id(self.id_prefix), (ref.namespace, ref.name))

    async def inventory(self) -> Inventory:
        apis = (await self._http.request("GET", "/tyk/apis/", op="list APIs")).json() or []
        listed = await self._http.request("GET", "/tyk/keys/", op="list keys", passthrough=(400, 404))
        names: list[str] = listed.json().get("keys") or [] if listed.status_code == 200 else []
        orgs = sorted({str(a.get("org_id") or "") for a in apis})
        hashed = True
        if names:
            probe = await self._http.request(
                "GET",
                admin_path("/tyk/keys/{}", names[0]),
                op="get key",
                params={"hashed": "1"},
                passthrough=(400, 404),
            )
            hashed = probe.status_code != 400  # 400: this Tyk does not hash keys (names are the keys)
        if not hashed or listed.status_code == 400:
            # Plain keys are listed per org (`filter` is required then).
            names = []
            for org in orgs:
                response = await self._http.request("GET", "/tyk/keys/", op="list keys", params={"filter": org})
                names += response.json().get("keys") or []
            hashed = False
        limit = asyncio.Semaphore(16)  # Tyk has no bulk read of sessions: one GET per key, a few at a time

        async def session(name: str) -> tuple[str, dict[str, Any]] | None:
            async with limit:
                response = await self._http.request(
                    "GET", admin_path("/tyk/keys/{}", name), op="get key", params={"hashed": "1"} if hashed else {},
                    passthrough=(404,),
                )  # fmt: skip
            # A plain key's name is its credential: the importer knows it by its digest only.
            return (name if hashed else _digest(name), response.json()) if response.status_code == 200 else None

        keys = [k for k in await asyncio.gather(*(session(n) for n in names)) if k is not None]
        clients = [
            (str(a["api_id"]), c) for a in apis if a.get("use_oauth2") for c in await self._oauth_clients(a["api_id"])
        ]
        return Inventory(apis=list(apis), keys=keys, oauth_clients=clients, api_defaults={}, key_defaults={},
                         rendering={"org_id": self.org_id})  # fmt: skip

    async def api_health(self, ref: ObjectRef, gateway_id: str | None = None) -> ApiHealth | None:
        if not self.api_health_enabled:
            return None  # one admin call per API per drift pass: only when the connection asks for it
        api_id = gateway_id or ref.gateway_id(self.id_prefix)
        response = await self._http.request(
            "GET", "/tyk/health/", op="API health", params={"api_id": api_id}, passthrough=(400, 404)
        )
        if response.status_code != 200:  # health checks disabled on this gateway
            return None
        figures = response.json()
        if not isinstance(figures, dict):
            return None
        # JSON names from Tyk's HealthCheckValues (the "reqests" typo is Tyk's own).
        return ApiHealth(
            throttled_requests_ps=figures.get("throttle_reqests_per_second", 0),
            quota_violations_ps=figures.get("quota_violations_per_second", 0),
            key_failures_ps=figures.get("key_failures_per_second", 0),
            average_upstream_latency=figures.get("average_upstream_latency", 0),
            average_requests_ps=figures.get("average_requests_per_second", 0),
            checked_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
