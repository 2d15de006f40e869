"""Otoroshi JWT verifiers (`/api/verifiers`): what checks the tokens of a GatewayAPI with `auth: jwt`.

Verified in Otoroshi 17.17.0's source (docs/research/auth-modes-tyk-5.10.2-otoroshi-17.17.md): a verifier read
from JSON without `strict` lets a request with no token through, so Torii always sends `strict: true`; the
route's JwtVerification plugin names the verifier by id and answers 500 for an id the proxy does not know, so
the verifier is written before the route. A verifier holds the verification key: it lives under an id derived
from the route's, with the route's owner record, and Torii never writes or deletes one another object owns.
"""

from __future__ import annotations

from typing import Any

from torii.gateways.base import ObjectRef, is_subset
from torii.gateways.errors import Unsupported
from torii.gateways.http import AdminClient, admin_path
from torii.gateways.otoroshi_render import claim_owned, owner_metadata
from torii.models.gatewayapi import ApiJwt, GatewayAPISpec


def verifier_id(route_id: str) -> str:
    return f"{route_id}-jwt"


def _algo(spec: GatewayAPISpec) -> dict[str, Any]:
    jwt = spec.jwt or ApiJwt()
    algorithm = jwt.effective_algorithm
    if jwt.jwks_url is not None:
        return {"type": "JWKSAlgoSettings", "url": jwt.jwks_url, "headers": {}, "timeout": 2000, "ttl": 3_600_000,
                "kty": "RSA" if algorithm.family == "RS" else "EC"}  # fmt: skip
    if jwt.key is None:
        raise Unsupported(
            "spec.jwt: Otoroshi checks JWTs with one key per API: set spec.jwt.jwksUrl or spec.jwt.secretRef "
            "(GatewayKeys of type jwt, one secret per consumer, are Tyk's)"
        )
    if algorithm.family == "HS":
        return {"type": "HSAlgoSettings", "size": algorithm.size, "secret": jwt.key, "base64": False}
    kind = "RSAlgoSettings" if algorithm.family == "RS" else "ESAlgoSettings"
    return {"type": kind, "size": algorithm.size, "publicKey": jwt.key, "privateKey": None}


def render_verifier(ref: ObjectRef, spec: GatewayAPISpec, route_id: str) -> dict[str, Any]:
    jwt = spec.jwt or ApiJwt()
    fields = {k: v for k, v in (("iss", jwt.issuer), ("aud", jwt.audience)) if v}
    return {
        "id": verifier_id(route_id),
        "name": f"{ref} (JWT)",
        "desc": f"managed by Torii for GatewayAPI {ref}",
        "strict": True,  # a request without a token is refused (Otoroshi's default lets it through)
        "source": {"type": "InHeader", "name": jwt.header, "remove": "Bearer "},
        "algoSettings": _algo(spec),
        "strategy": {"type": "PassThrough", "verificationSettings": {"fields": fields, "arrayFields": {}}},
        "metadata": owner_metadata(ref, "GatewayAPI"),
        "tags": [],
    }


class OtoroshiVerifiers:
    """The verifiers of a connection's JWT APIs: written when they differ, deleted with their API."""

    def __init__(self, name: str, http: AdminClient) -> None:
        self.name = name
        self._http = http

    def _claim(self, ref: ObjectRef, current: dict[str, Any]) -> None:
        claim_owned(self.name, "JWT verifier", ref, current)

    async def _get(self, vid: str) -> dict[str, Any] | None:
        response = await self._http.request("GET", admin_path("/api/verifiers/{}", vid), op="get verifier",
                                            passthrough=(404,))  # fmt: skip
        return dict(response.json()) if response.status_code == 200 else None

    async def ensure(self, ref: ObjectRef, spec: GatewayAPISpec, route_id: str) -> bool:
        """Write the API's verifier unless Otoroshi holds it already; True when written."""
        desired = render_verifier(ref, spec, route_id)
        current = await self._get(desired["id"])
        if current is not None:
            self._claim(ref, current)
            if is_subset(desired, current):
                return False
            await self._http.request("PUT", admin_path("/api/verifiers/{}", desired["id"]), op="update verifier",
                                     json=desired)  # fmt: skip
            return True
        await self._http.request("POST", "/api/verifiers", op="create verifier", json=desired)
        return True

    async def delete(self, ref: ObjectRef, route_id: str) -> bool:
        vid = verifier_id(route_id)
        current = await self._get(vid)
        if current is None:
            return False
        self._claim(ref, current)
        await self._http.request("DELETE", admin_path("/api/verifiers/{}", vid), op="delete verifier",
                                 passthrough=(404,))  # fmt: skip
        return True
