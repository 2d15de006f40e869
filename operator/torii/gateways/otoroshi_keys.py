"""Otoroshi API keys (`/api/apikeys`, and scoped under a route, service or group): created with the client id and
secret Torii chose, never one whose owner record names another object, never the connection's own admin key.

A key write is confirmed at the proxy: after the state sync, a request with the key's credential to the path
the key forbids itself (`otoroshi_render.PROBE_RESTRICTION`) on one of its APIs is answered 403 once the proxy
accepts the credential, 401 `bad apikey` while it refuses it (old secret, disabled key), 400 `invalid apikey
tuple` while it does not know the key for that API. Nothing reaches the upstream and no quota is counted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from torii.gateways.base import Credential, CredentialKind, KeyRequest, KeyResult, is_subset, owner_claim, pick
from torii.gateways.errors import (
    AdoptionFailed,
    OwnershipConflict,
    PermanentGatewayError,
    PolicyViolation,
    RetryableGatewayError,
)
from torii.gateways.http import AdminClient, admin_path
from torii.gateways.otoroshi_render import (
    ADMIN_ENTITIES,
    KEY_CORE_FIELDS,
    PROBE_SUFFIX,
    json_patch,
    key_scope,
    render_apikey,
    scoped,
)
from torii.models.gatewaykey import QuotaState

Locate = Callable[[str], Awaitable[tuple[str, str, bool] | None]]  # gateway id -> (host, path, keyed)


class Verdict(StrEnum):
    """What the proxy makes of a credential on one API."""

    ACCEPTED = "accepted"  # the secret checks out (the key's own restriction answered, or the request went on)
    REFUSED = "refused"  # the key is known there but refused: another secret, or disabled
    UNKNOWN = "unknown"  # no such key for that API (not synced yet, revoked, or the API is gone)


def verdict(response: httpx.Response) -> Verdict:
    message = response.headers.get("Otoroshi-Error-Msg", "")
    if message == "bad apikey" or message == "invalid apikey":
        return Verdict.REFUSED
    if message in ("no apikey", "invalid apikey tuple") or "no route" in message:
        return Verdict.UNKNOWN
    return Verdict.ACCEPTED


SECRET_FIELDS = ("clientSecret", "rotation.nextSecret")


def redacted(core: dict[str, Any]) -> dict[str, Any]:
    """Picked key fields with the secrets replaced by a digest (what a list view may keep in memory)."""
    return {k: (hashlib.sha256(str(v).encode()).hexdigest() if k in SECRET_FIELDS and v is not None else v)
            for k, v in core.items()}  # fmt: skip


def listed_core(key: dict[str, Any]) -> dict[str, Any] | None:
    """What the list view keeps of one listed key: its id, its redacted core fields, its metadata (owner)."""
    if not key.get("clientId"):
        return None
    meta = key.get("metadata")
    return {"clientId": key["clientId"], "core": redacted(pick(key, KEY_CORE_FIELDS)),
            "metadata": dict(meta) if isinstance(meta, dict) else {}}  # fmt: skip


class OtoroshiKeys:
    """The key role of the Otoroshi driver (`KeyRole`): a key keeps its client id, its secret changes, and a
    rotation is Otoroshi's own (clientSecret and nextSecret both valid during the grace period)."""

    credential_kind = CredentialKind.CLIENT

    def __init__(
        self, name: str, http: AdminClient, *, admin_client_id: str, state_sync_seconds: float, entity: str = "route",
        proxy: httpx.AsyncClient | None = None, locate: Locate | None = None, confirm_timeout: float = 60.0,
    ) -> None:  # fmt: skip
        self.name = name
        self._http = http
        self.admin_client_id = admin_client_id  # the connection's own: never adopted, never touched
        self.state_sync_seconds = state_sync_seconds
        self.entity = entity  # what the connection's APIs are: `route` or `service`
        self._proxy = proxy
        self._locate = locate
        self._confirm_timeout = confirm_timeout
        # The last list of every key (drift checks): redacted core fields only, never a secret in clear.
        self._view: dict[str, dict[str, Any]] = {}
        self._view_at = float("-inf")
        self._view_lock = asyncio.Lock()

    def _scope(self, request: KeyRequest) -> str:
        return key_scope(request, self.entity)

    async def _listed(self, client_id: str, max_age: float) -> dict[str, Any] | None:
        """The key as the last list of every key saw it (redacted core fields and metadata), listed again when
        that list is older than `max_age`: a drift pass over N keys costs a list or two, not N reads."""
        async with self._view_lock:
            if time.monotonic() - self._view_at > max_age:
                started = time.monotonic()  # stamped before the list: a write during it is never taken for seen
                keys = await self._http.list_items("/api/apikeys", op="list keys", keep=listed_core)
                self._view, self._view_at = {str(k["clientId"]): k for k in keys}, started
        return self._view.get(client_id)

    async def _key_synced(self) -> None:
        """Wait out the worst case of a state sync (the one that starts just after the write, plus its own run
        time: up to a second on a busy machine, measured); for a key no API of which can be probed (none asks for
        a key, or each checks a JWT before the key)."""
        await asyncio.sleep(self.state_sync_seconds * 2 + 0.5)

    async def _confirmed(self, request: KeyRequest, checks: list[tuple[Credential, Verdict]]) -> None:
        """Wait until the proxy gives each credential its expected verdict on one of the key's APIs."""
        target = await self._target(request)
        if target is None or self._proxy is None:
            await self._key_synced()
            return
        host, path = target
        await asyncio.sleep(self.state_sync_seconds)
        deadline = time.monotonic() + self._confirm_timeout
        delay = 0.1
        for credential, want in checks:
            while (got := await self._verdict(host, path, credential)) != want:
                if time.monotonic() > deadline:
                    raise RetryableGatewayError(
                        f"gateway {self.name}: the proxy still finds the key {got.value} (expected {want.value}) "
                        f"{self.state_sync_seconds + self._confirm_timeout:.0f}s after the admin write"
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _target(self, request: KeyRequest) -> tuple[str, str] | None:
        """(host, path) of the first of the key's APIs where the key alone decides the proxy's answer, so that
        its credential can be tried there (`route_keyed`)."""
        if self._locate is None:
            return None
        for api in request.apis:
            where = await self._locate(api.gateway_id)
            if where is not None and where[2]:
                return where[0], where[1].rstrip("/") + "/" + PROBE_SUFFIX
        return None

    async def _verdict(self, host: str, path: str, credential: Credential) -> Verdict:
        assert self._proxy is not None
        try:
            # Basic auth in Otoroshi's own header: the one extractor every API-key route of Torii's has on
            # (`auth: key` keeps them all, `auth: basicAuth` only this one).
            basic = base64.b64encode(f"{credential.client_id}:{credential.client_secret}".encode()).decode()
            response = await self._proxy.head(path, headers={"Host": host, "Otoroshi-Authorization": f"Basic {basic}"})
        except httpx.HTTPError as exc:
            raise RetryableGatewayError(
                f"gateway {self.name}: proxy unreachable while confirming a key ({type(exc).__name__})"
            ) from None
        return verdict(response)

    def _expected(self, request: KeyRequest) -> list[tuple[Credential, Verdict]]:
        """What the proxy must make of the key's credentials once it has the key as written."""
        expires = request.spec.expires
        expired = bool(expires) and datetime.fromisoformat(str(expires).replace("Z", "+00:00")) <= datetime.now(UTC)
        if not request.spec.enabled or expired:
            return [(request.credential, Verdict.REFUSED)]
        return [(c, Verdict.ACCEPTED) for c in (request.credential, request.next_credential) if c is not None]

    async def _find_key(self, scope: str, client_id: str) -> tuple[dict[str, Any] | None, bool]:
        """(the key, whether it was found under `scope`). Looked up under the scope it should have; a key whose
        scope changed since (spec.apis edited) is found by its clientId alone."""
        response = await self._http.request(
            "GET", scoped(scope, "/apikeys/{}", client_id), op="get key", passthrough=(404,)
        )
        if response.status_code == 200:
            return response.json(), True
        response = await self._http.request(
            "GET", admin_path("/api/apikeys/{}", client_id), op="find key", passthrough=(404,)
        )
        return (response.json() if response.status_code == 200 else None), False

    async def converge_key(self, request: KeyRequest) -> KeyResult:
        if not request.apis and not request.group_id:
            raise PermanentGatewayError("spec.apis/apiGroup: the key refers to no API")
        scope = self._scope(request)
        client_id = request.credential.client_id
        desired = render_apikey(request, self.entity)
        if request.max_age and not request.fresh:
            seen = await self._listed(client_id, request.max_age)
            if (seen is not None and owner_claim(self.name, "key", request.ref, seen.get("metadata"),
                                                 adopting=request.adopting) is None
                    and is_subset(redacted(pick(desired, KEY_CORE_FIELDS)), seen["core"])):  # fmt: skip
                return KeyResult(client_id, scope, changed=False)
            # Not seen, not ours or drifted: read it now, as a change would (a repair writes from a fresh read).
        current, in_scope = (None, False) if request.fresh else await self._find_key(scope, client_id)
        if (
            current is not None
            and (
                refused := owner_claim(
                    self.name, "key", request.ref, current.get("metadata"), adopting=request.adopting
                )
            )
            is not None
        ):
            raise refused  # fmt: skip
        if current is not None and is_subset(pick(desired, KEY_CORE_FIELDS), pick(current, KEY_CORE_FIELDS)):
            return KeyResult(client_id, scope, changed=False)
        if current is None:
            await self._http.request("POST", scoped(scope, "/apikeys"), op="create key", json=desired)
        elif in_scope:
            # Only what differs, as an RFC 6902 patch. (Under a scope, Otoroshi keeps that scope's entity.)
            await self._http.request(
                "PATCH", scoped(scope, "/apikeys/{}", client_id), op="patch key", json=json_patch(desired, current)
            )
        else:
            # Moved to another service or group (spec.apis edited). Verified on 17.17: the scoped PUT answers 404
            # for a key not yet on that service, and a scoped write keeps its scope's entity; the unscoped PUT
            # replaces the key whole, so the old service's access goes.
            await self._http.request("PUT", admin_path("/api/apikeys/{}", client_id), op="update key", json=desired)
        await self._confirmed(request, self._expected(request))
        return KeyResult(client_id, scope, changed=True, created=current is None)

    async def delete_key(self, request: KeyRequest) -> bool:
        client_id = request.credential.client_id
        scope = self._scope(request) if request.apis or request.group_id else None
        current, in_scope = await self._find_key(scope, client_id) if scope else (await self._get_any(client_id), False)
        if current is None:
            return False
        if (refused := owner_claim(self.name, "key", request.ref, current.get("metadata"),
                                   adopting=request.adopting)) is not None:  # fmt: skip
            raise refused
        # Under the scope it should have, or (moved, or no scope known) wherever it is; and confirmed: a key that
        # is still known after the scoped delete is deleted unscoped (gone means gone, as on Tyk).
        if scope and in_scope:
            await self._http.request("DELETE", scoped(scope, "/apikeys/{}", client_id), op="delete key",
                                     passthrough=(404,))  # fmt: skip
            if await self._get_any(client_id) is None:
                await self._confirmed(request, [(request.credential, Verdict.UNKNOWN)])
                return True
        await self._http.request("DELETE", admin_path("/api/apikeys/{}", client_id), op="delete key",
                                 passthrough=(404,))  # fmt: skip
        if await self._get_any(client_id) is not None:
            raise RetryableGatewayError(f"gateway {self.name}: a deleted key is still known to Otoroshi; retrying")
        await self._confirmed(request, [(request.credential, Verdict.UNKNOWN)])
        return True

    async def _get_any(self, client_id: str) -> dict[str, Any] | None:
        response = await self._http.request(
            "GET", admin_path("/api/apikeys/{}", client_id), op="find key", passthrough=(404,)
        )
        return response.json() if response.status_code == 200 else None

    async def revoke_previous(self, request: KeyRequest, previous: Credential) -> None:
        # Same clientId: writing the key with the new clientSecret and no nextSecret ends the old secret's grace.
        result = await self.converge_key(request)
        if result.changed and previous.client_secret != request.credential.client_secret:
            await self._confirmed(request, [(previous, Verdict.REFUSED)])

    async def adopted_credential(
        self, request: KeyRequest, key_id: str, supplied: Credential | None, *, read_allowed: bool
    ) -> Credential | None:
        # Otoroshi returns the clientSecret to its admin API: the existing credential is always recovered, which
        # is reading a credential from the gateway (a tenancy grant), and never the connection's own admin key.
        if key_id == self.admin_client_id:
            raise OwnershipConflict(f"gateway {self.name}: spec.adopt.id: that key is one Torii itself uses; it "
                                    "cannot be adopted")  # fmt: skip
        if not read_allowed:
            raise PolicyViolation(
                f"refused by the tenancy policy of gateway {self.name}: spec.adopt.id: adopting an Otoroshi key "
                "means reading its secret from the gateway (tenancy.adoption.credentials)"
            )
        body = await self._get_any(key_id)
        if body is None:
            raise AdoptionFailed(f"gateway {self.name}: spec.adopt.id: no apikey with clientId {key_id} exists")
        entities = {str(e) for e in body.get("authorizedEntities") or []} | {str(body.get("authorizedGroup"))}
        if entities & ADMIN_ENTITIES:
            raise OwnershipConflict(f"gateway {self.name}: spec.adopt.id: that key opens Otoroshi's own admin API; "
                                    "it cannot be adopted")  # fmt: skip
        if (refused := owner_claim(self.name, "key", request.ref, body.get("metadata"), adopting=True)) is not None:
            raise refused
        return Credential(client_id=str(body["clientId"]), client_secret=str(body["clientSecret"]))

    async def expire_by_id(self, request: KeyRequest, key_id: str, at_unix: int) -> None:
        return None  # never needed: an adopted Otoroshi key's credential is always known

    async def expire_previous(self, request: KeyRequest, previous: Credential, at_unix: int) -> None:
        return None  # the rotation is Otoroshi's own: rotation.gracePeriod ends the previous secret

    async def revoke_by_id(self, request: KeyRequest, key_id: str) -> None:
        if key_id == request.credential.client_id or (current := await self._get_any(key_id)) is None:
            return
        if (refused := owner_claim(self.name, "key", request.ref, current.get("metadata"),
                                   adopting=request.adopting)) is not None:  # fmt: skip
            raise refused
        await self._http.request("DELETE", admin_path("/api/apikeys/{}", key_id), op="delete key", passthrough=(404,))

    async def list_keys(self, scope: str | None = None) -> list[dict[str, Any]]:
        """Every apikey (`GET /api/apikeys`), or those of one route, service or group
        (`GET /api/routes/{id}/apikeys`, `/api/services/{id}/apikeys`, `/api/groups/{id}/apikeys`)."""
        path = scoped(scope, "/apikeys") if scope else "/api/apikeys"
        keys = list((await self._http.request("GET", path, op="list keys")).json())
        if scope and scope.startswith("routes/"):
            # Verified on 17.17: the route-scoped list keeps keys authorised on `service_<id>` or a group of the
            # route, not those authorised on `route_<id>` alone (Torii's): those are found in the full list.
            entity = "route_" + scope.partition("/")[2]
            listed = {k.get("clientId") for k in keys}
            keys += [k for k in await self.list_keys() if entity in (k.get("authorizedEntities") or [])
                     and k.get("clientId") not in listed]  # fmt: skip
        return keys

    async def key_quota(self, request: KeyRequest) -> QuotaState | None:
        scope = self._scope(request)
        client_id = request.credential.client_id
        # Verified on 17.17: the route-scoped quotas GET answers 404 unless the key is authorised on
        # `service_<id>` (it checks the service authorisation only); the unscoped one reads any key's quotas.
        path = (admin_path("/api/apikeys/{}/quotas", client_id) if scope.startswith("routes/")
                else scoped(scope, "/apikeys/{}/quotas", client_id))  # fmt: skip
        response = await self._http.request("GET", path, op="get quotas", passthrough=(404,))
        if response.status_code == 404:
            return None
        q = response.json()
        return QuotaState(
            max=q.get("authorizedCallsPerDay"),
            remaining=q.get("remainingCallsPerDay"),
            remaining_per_day=q.get("remainingCallsPerDay"),
            remaining_per_month=q.get("remainingCallsPerMonth"),
            checked_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    async def reset_key_quota(self, request: KeyRequest) -> None:
        await self._http.request(
            "DELETE", scoped(self._scope(request), "/apikeys/{}/quotas", request.credential.client_id), op="reset quota"
        )
        await self._key_synced()
