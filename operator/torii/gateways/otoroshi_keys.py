"""Otoroshi API keys (`/api/apikeys`, and scoped under a service or group): created with the client id and secret
Torii chose, never one whose owner record names another object, never the connection's own admin key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from torii.gateways.base import Credential, CredentialKind, KeyRequest, KeyResult, owner_claim, pick
from torii.gateways.errors import (
    AdoptionFailed,
    OwnershipConflict,
    PermanentGatewayError,
    PolicyViolation,
    RetryableGatewayError,
)
from torii.gateways.http import AdminClient, admin_path
from torii.gateways.otoroshi_render import ADMIN_ENTITIES, KEY_CORE_FIELDS, json_patch, key_scope, render_apikey, scoped
from torii.models.gatewaykey import QuotaState


class OtoroshiKeys:
    """The key role of the Otoroshi driver (`KeyRole`): a key keeps its client id, its secret changes, and a
    rotation is Otoroshi's own (clientSecret and nextSecret both valid during the grace period)."""

    credential_kind = CredentialKind.CLIENT

    def __init__(self, name: str, http: AdminClient, *, admin_client_id: str, state_sync_seconds: float) -> None:
        self.name = name
        self._http = http
        self.admin_client_id = admin_client_id  # the connection's own: never adopted, never touched
        self.state_sync_seconds = state_sync_seconds

    async def _key_synced(self) -> None:
        """Wait until the proxy has synced a key write. Unlike a service, a key cannot be confirmed through the
        proxy without sending client traffic to the upstream, so this waits out the worst case: the sync that
        starts just after the write, plus that sync's own run time (up to a second on a busy machine, measured),
        before a key is reported Active, updated or revoked."""
        await asyncio.sleep(self.state_sync_seconds * 2 + 0.5)

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
        scope = key_scope(request)
        client_id = request.credential.client_id
        desired = render_apikey(request)
        current, in_scope = await self._find_key(scope, client_id)
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
        if current is not None and pick(desired, KEY_CORE_FIELDS) == pick(current, KEY_CORE_FIELDS):
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
        await self._key_synced()
        return KeyResult(client_id, scope, changed=True, created=current is None)

    async def delete_key(self, request: KeyRequest) -> bool:
        client_id = request.credential.client_id
        scope = key_scope(request) if request.apis or request.group_id else None
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
                return True
        await self._http.request("DELETE", admin_path("/api/apikeys/{}", client_id), op="delete key",
                                 passthrough=(404,))  # fmt: skip
        if await self._get_any(client_id) is not None:
            raise RetryableGatewayError(f"gateway {self.name}: a deleted key is still known to Otoroshi; retrying")
        return True

    async def _get_any(self, client_id: str) -> dict[str, Any] | None:
        response = await self._http.request(
            "GET", admin_path("/api/apikeys/{}", client_id), op="find key", passthrough=(404,)
        )
        return response.json() if response.status_code == 200 else None

    async def revoke_previous(self, request: KeyRequest, previous: Credential) -> None:
        # Same clientId: writing the key with the new clientSecret and no nextSecret ends the old secret's grace.
        await self.converge_key(request)

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
        """Every apikey (`GET /api/apikeys`), or those of one service's group or of a group
        (`GET /api/services/{id}/apikeys`, `GET /api/groups/{id}/apikeys`)."""
        path = scoped(scope, "/apikeys") if scope else "/api/apikeys"
        response = await self._http.request("GET", path, op="list keys")
        return list(response.json())

    async def key_quota(self, request: KeyRequest) -> QuotaState | None:
        response = await self._http.request(
            "GET", scoped(key_scope(request), "/apikeys/{}/quotas", request.credential.client_id), op="get quotas",
            passthrough=(404,),
        )  # fmt: skip
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
            "DELETE", scoped(key_scope(request), "/apikeys/{}/quotas", request.credential.client_id), op="reset quota"
        )
        await self._key_synced()
