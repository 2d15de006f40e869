"""Tyk policies (`/tyk/policies/{id}`) Torii makes for JWT APIs that check tokens with their own key.

Verified on Tyk 5.10.2: a JWT API with `jwt_source` builds each caller's session from a policy
(`jwt_default_policies`) and answers 403 while none is loaded. POST writes `{policy_path}/{id}.json` on the node
it reaches (per node, like API definitions) and is loaded at the next reload; GET sees loaded policies only.
The policy's id is its API's: it grants that API and nothing else, and carries the API's owner record.
"""

from __future__ import annotations

from typing import Any

from torii.gateways.base import OWNER_META, ObjectRef, is_subset
from torii.gateways.errors import OwnershipConflict
from torii.gateways.http import AdminClient, admin_path


class TykPolicies:
    def __init__(self, name: str) -> None:
        self.name = name

    def _claim(self, ref: ObjectRef, current: dict[str, Any]) -> None:
        owner = (current.get("meta_data") or {}).get(OWNER_META)
        if owner != str(ref):
            raise OwnershipConflict(f"gateway {self.name}: policy {current.get('id')} is not Torii's for GatewayAPI "
                                    f"{ref}; Torii leaves it alone")  # fmt: skip

    async def _get(self, http: AdminClient, policy_id: str) -> dict[str, Any] | None:
        response = await http.request("GET", admin_path("/tyk/policies/{}", policy_id), op="get policy",
                                      passthrough=(404,))  # fmt: skip
        return dict(response.json()) if response.status_code == 200 else None

    async def ensure(self, http: AdminClient, ref: ObjectRef, policy: dict[str, Any]) -> bool:
        """Write the policy on this node unless it is loaded as it should be; True when written."""
        current = await self._get(http, policy["id"])
        if current is not None:
            self._claim(ref, current)
            if is_subset(policy, current):
                return False
        await http.request("POST", "/tyk/policies", op="write policy", json=policy)
        return True

    async def delete(self, http: AdminClient, ref: ObjectRef, policy_id: str) -> bool:
        current = await self._get(http, policy_id)
        if current is not None:
            self._claim(ref, current)
        # Also when not loaded: a policy written just before its API was deleted is still a file. Verified on
        # 5.10.2: with no such file Tyk answers 500 "Delete failed", which then only says it is gone already.
        response = await http.request("DELETE", admin_path("/tyk/policies/{}", policy_id), op="delete policy",
                                      passthrough=(404,) if current is not None else (404, 500))  # fmt: skip
        return current is not None and response.status_code < 300
