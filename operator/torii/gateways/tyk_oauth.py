"""Tyk OAuth clients (`/tyk/oauth/clients/...`): created with the id and secret Torii chose; the seed's OAuth API
has no update, so a change re-creates the client with the same id and secret (the Secret stays valid)."""

from __future__ import annotations

from typing import Any

from torii.gateways.base import OWNER_META, OAuthClientRequest, ObjectRef, key_owner, owner_claim
from torii.gateways.errors import AdoptionFailed
from torii.gateways.http import AdminClient, admin_path


class TykOAuth:
    """The OAuth role of the Tyk driver (`OAuthRole`)."""

    def __init__(self, name: str, http: AdminClient) -> None:
        self.name = name
        self._http = http

    async def clients(self, api_id: str, *, api_gone_ok: bool = False) -> list[dict[str, Any]]:
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
            (c for c in await self.clients(request.api_id) if c.get("client_id") == request.client_id), None
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
        client = next((c for c in await self.clients(api_id) if c.get("client_id") == client_id), None)
        if client is None:
            raise AdoptionFailed(f"gateway {self.name}: spec.adopt.clientId: API {api_id} has no OAuth client "
                                 f"{client_id}")  # fmt: skip
        if (refused := owner_claim(self.name, "OAuth client", ref, client.get("meta_data"), adopting=True)) is not None:
            raise refused
        return str(client.get("secret") or "")

    async def delete_oauth_client(self, request: OAuthClientRequest) -> bool:
        clients = await self.clients(request.api_id, api_gone_ok=True)  # no API, no client: gone
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
