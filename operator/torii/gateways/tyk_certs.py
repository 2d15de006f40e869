"""Certificates Torii uploads to Tyk's store (`/tyk/certs`) for one API: an upstream client certificate.

Verified in Tyk 5.10.2's source (docs/research/auth-modes-tyk-5.10.2-otoroshi-17.17.md): POST takes the raw PEM
(chain, then key), stores it in the Redis every node shares, and names it `<org_id><sha256 of the first
certificate's DER>` (a duplicate answers 403); an API names it in `upstream_certificates`. The `org_id` of the
upload is only a prefix of that id, so Torii uploads an API's certificates under the API's own prefix: no other
API (of another namespace, with the same certificate) ever shares one, a renewal's old certificate is found by
listing that prefix and removed once the API names the new one, and the API's deletion removes them all.

Pinned public keys (`pinned_public_keys`) are uploaded the same way, as PEM public keys, under a prefix of their
own: Tyk resolves a pin only when its id is all hex (else it reads the id as a file path and pins nothing that
matches), so their prefix is a digest of the API id rather than the id itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

from torii.gateways.errors import PermanentGatewayError
from torii.gateways.http import AdminClient, admin_path
from torii.pem import first_certificate_der, public_key_der


def prefix(api_id: str) -> str:
    return f"{api_id}-"


def cert_id(api_id: str, chain: str) -> str:
    return prefix(api_id) + hashlib.sha256(first_certificate_der(chain)).hexdigest()


def pin_prefix(api_id: str) -> str:
    return hashlib.sha256(api_id.encode()).hexdigest()[:16]


def pin_id(api_id: str, public_pem: str) -> str:
    return pin_prefix(api_id) + hashlib.sha256(public_key_der(public_pem)).hexdigest()


def is_own(org: str, cid: str) -> bool:
    """Is `cid` an id Torii gives under this prefix (not a sibling API's whose id extends this one)?"""
    return re.fullmatch(re.escape(org) + "[0-9a-f]{64}", cid) is not None


class TykCertificates:
    def __init__(self, name: str, http: AdminClient) -> None:
        self.name = name
        self._http = http

    async def ensure(self, api_id: str, chain: str, key: str = "", *, what: str = "certificate") -> tuple[str, bool]:
        """(the certificate's id, whether it was uploaded now). `key`: its private key (a client certificate
        Tyk presents), or none (a certificate Tyk checks clients against)."""
        return await self._ensure(prefix(api_id), cert_id(api_id, chain), chain + key, what)

    async def ensure_pin(self, api_id: str, public_pem: str, *, what: str) -> tuple[str, bool]:
        """(the pinned public key's id, whether it was uploaded now)."""
        return await self._ensure(pin_prefix(api_id), pin_id(api_id, public_pem), public_pem, what)

    async def _ensure(self, org: str, cid: str, body: str, what: str) -> tuple[str, bool]:
        found = await self._http.request("GET", admin_path("/tyk/certs/{}", cid), op="get certificate",
                                         params={"org_id": org}, passthrough=(404,))  # fmt: skip
        if found.status_code == 200:
            return cid, False
        answer = await self._http.request("POST", "/tyk/certs", op="upload certificate", params={"org_id": org},
                                          content=body.encode(), headers={"Content-Type": "text/plain"},
                                          passthrough=(403,))  # fmt: skip
        if answer.status_code == 403:
            # Tyk answers 403 to a duplicate (an upload whose answer was lost) and to every refusal (expired,
            # key not matching, unreadable): only a stored certificate is a success.
            again = await self._http.request("GET", admin_path("/tyk/certs/{}", cid), op="get certificate",
                                             params={"org_id": org}, passthrough=(404,))  # fmt: skip
            if again.status_code != 200:
                raise PermanentGatewayError(f"gateway {self.name}: {what}: Tyk refused the certificate (expired, or "
                                            "its key does not match): fix the Secret")  # fmt: skip
        return cid, True

    async def retire(self, api_id: str, keep: Collection[str] = ()) -> int:
        """Remove the API's certificates and pinned keys but those in `keep`; how many were removed."""
        removed = 0
        for org in (prefix(api_id), pin_prefix(api_id)):
            listed = await self._http.request("GET", "/tyk/certs", op="list certificates", params={"org_id": org})
            # Exactly this API's ids: a sibling API (`<id>-v2`) has ids that start the same way.
            ids = [str(i) for i in (listed.json() or {}).get("certs") or [] if is_own(org, str(i))]
            for cid in ids:
                if cid not in keep:
                    await self._http.request("DELETE", admin_path("/tyk/certs/{}", cid), op="delete certificate",
                                             params={"org_id": org}, passthrough=(404,))  # fmt: skip
                    removed += 1
        return removed
