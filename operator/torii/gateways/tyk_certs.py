"""Certificates Torii uploads to Tyk's store (`/tyk/certs`) for one API: an upstream client certificate.

Verified in Tyk 5.10.2's source (docs/research/auth-modes-tyk-5.10.2-otoroshi-17.17.md): POST takes the raw PEM
(chain, then key), stores it in the Redis every node shares, and names it `<org_id><sha256 of the first
certificate's DER>` (a duplicate answers 403); an API names it in `upstream_certificates`. The `org_id` of the
upload is only a prefix of that id, so Torii uploads an API's certificates under the API's own prefix: no other
API (of another namespace, with the same certificate) ever shares one, a renewal's old certificate is found by
listing that prefix and removed once the API names the new one, and the API's deletion removes them all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

from torii.gateways.errors import PermanentGatewayError
from torii.gateways.http import AdminClient, admin_path
from torii.pem import first_certificate_der


def prefix(api_id: str) -> str:
    return f"{api_id}-"


def cert_id(api_id: str, chain: str) -> str:
    return prefix(api_id) + hashlib.sha256(first_certificate_der(chain)).hexdigest()


def is_own(api_id: str, cid: str) -> bool:
    """Is `cid` an id Torii gives this API's certificates (not a sibling API's whose id extends this one)?"""
    return re.fullmatch(re.escape(prefix(api_id)) + "[0-9a-f]{64}", cid) is not None


class TykCertificates:
    def __init__(self, name: str, http: AdminClient) -> None:
        self.name = name
        self._http = http

    async def ensure(self, api_id: str, chain: str, key: str = "", *, what: str = "certificate") -> tuple[str, bool]:
        """(the certificate's id, whether it was uploaded now). `key`: its private key (a client certificate
        Tyk presents), or none (a certificate Tyk checks clients against)."""
        cid = cert_id(api_id, chain)
        found = await self._http.request("GET", admin_path("/tyk/certs/{}", cid), op="get certificate",
                                         params={"org_id": prefix(api_id)}, passthrough=(404,))  # fmt: skip
        if found.status_code == 200:
            return cid, False
        answer = await self._http.request("POST", "/tyk/certs", op="upload certificate",
                                          params={"org_id": prefix(api_id)}, content=(chain + key).encode(),
                                          headers={"Content-Type": "text/plain"}, passthrough=(403,))  # fmt: skip
        if answer.status_code == 403:
            # Tyk answers 403 to a duplicate (an upload whose answer was lost) and to every refusal (expired,
            # key not matching, unreadable): only a stored certificate is a success.
            again = await self._http.request("GET", admin_path("/tyk/certs/{}", cid), op="get certificate",
                                             params={"org_id": prefix(api_id)}, passthrough=(404,))  # fmt: skip
            if again.status_code != 200:
                raise PermanentGatewayError(f"gateway {self.name}: {what}: Tyk refused the certificate (expired, or "
                                            "its key does not match): fix the Secret")  # fmt: skip
        return cid, True

    async def retire(self, api_id: str, keep: Collection[str] = ()) -> int:
        """Remove the API's certificates but those in `keep`; how many were removed."""
        listed = await self._http.request("GET", "/tyk/certs", op="list certificates",
                                          params={"org_id": prefix(api_id)})  # fmt: skip
        # Exactly this API's ids: a sibling API (`<id>-v2`) has ids that start the same way.
        ids = [str(i) for i in (listed.json() or {}).get("certs") or [] if is_own(api_id, str(i))]
        removed = 0
        for cid in ids:
            if cid not in keep:
                await self._http.request("DELETE", admin_path("/tyk/certs/{}", cid), op="delete certificate",
                                         params={"org_id": prefix(api_id)}, passthrough=(404,))  # fmt: skip
                removed += 1
        return removed
