"""Certificates Torii stores in Otoroshi (`/api/certificates`) for one route: an upstream client certificate.

Verified in Otoroshi 17.17.0's source (docs/research/auth-modes-tyk-5.10.2-otoroshi-17.17.md): a certificate
with a private key becomes a server certificate for its domain unless `client: true`; a route's target names
client certificates in `tls_config.certs`. Torii stores each under an id made of the route's id and the
certificate's SHA-256, with the route's owner record: no other route shares it, a renewal's old certificate is
found by that prefix and removed once the route names the new one, and the route's deletion removes them all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from typing import Any

from torii.gateways.base import ObjectRef
from torii.gateways.http import AdminClient, admin_path
from torii.gateways.otoroshi_render import claim_owned, owned_by, owner_metadata
from torii.pem import first_certificate_der, leaf_only


def prefix(route_id: str) -> str:
    return f"{route_id}-client-"


def cert_id(route_id: str, chain: str) -> str:
    return prefix(route_id) + hashlib.sha256(first_certificate_der(chain)).hexdigest()[:32]


def is_own(route_id: str, cid: str) -> bool:
    """Is `cid` an id Torii gives this route's certificates (not a sibling route's whose id extends it)?"""
    return re.fullmatch(re.escape(prefix(route_id)) + "[0-9a-f]{32}", cid) is not None


class OtoroshiCertificates:
    def __init__(self, name: str, http: AdminClient) -> None:
        self.name = name
        self._http = http

    def _claim(self, ref: ObjectRef, current: dict[str, Any]) -> None:
        claim_owned(self.name, "certificate", ref, current)

    async def ensure(self, ref: ObjectRef, route_id: str, chain: str, key: str) -> tuple[str, bool]:
        """(the certificate's id, whether it was stored now)."""
        chain = leaf_only(chain)  # never a CA (Otoroshi would trust it gateway-wide), nor a chain's issuers
        cid = cert_id(route_id, chain)
        found = await self._http.request("GET", admin_path("/api/certificates/{}", cid), op="get certificate",
                                         passthrough=(404,))  # fmt: skip
        if found.status_code == 200:
            self._claim(ref, found.json())
            return cid, False
        body: dict[str, Any] = {
            "id": cid, "name": f"{ref} upstream client", "description": f"managed by Torii for GatewayAPI {ref}",
            "domain": "torii-upstream-client", "chain": chain, "privateKey": key, "caRef": None, "password": None,
            "client": True, "ca": False, "exposed": False, "autoRenew": False, "revoked": False, "selfSigned": False,
            "keypair": False, "letsEncrypt": False, "subject": "", "from": 0, "to": 0, "sans": [],
            "metadata": owner_metadata(ref, "GatewayAPI"), "tags": [],
        }  # fmt: skip
        await self._http.request("POST", "/api/certificates", op="upload certificate", json=body)
        return cid, True

    async def retire(self, ref: ObjectRef, route_id: str, keep: Collection[str] = ()) -> int:
        """Remove the route's certificates but those in `keep`; how many were removed."""
        listed = await self._http.request("GET", "/api/certificates", op="list certificates")
        removed = 0
        for cert in listed.json() or []:
            cid = str(cert.get("id") or "")
            if (
                is_own(route_id, cid) and cid not in keep and owned_by(ref, cert)
            ):  # another object's (planted) one: left alone
                await self._http.request("DELETE", admin_path("/api/certificates/{}", cid), op="delete certificate",
                                         passthrough=(404,))  # fmt: skip
                removed += 1
        return removed
