"""reconcile_oauth_client with in-memory Secrets/APIs and a recording driver: the client's id and secret are
recorded and stored before the gateway sees them, a Secret Torii does not recognise is replaced, a gateway
without OAuth clients is Unsupported, policies come from the platform."""

from __future__ import annotations

from typing import Any

from support.fakes import OWNER, REF, FakeApis, FakeSecrets, Journal, ready, recorder
from torii.gateways.base import OAuthClientRequest, ObjectRef
from torii.gateways.registry import Gateways
from torii.kube import SecretView
from torii.reconcile.context import ReconcileContext
from torii.reconcile.oauthclient import reconcile_oauth_client
from torii.reconcile.outcome import Cause
from torii.tenancy.config import Tenancy

SPEC: dict[str, Any] = {"api": "reports", "redirectUri": "https://app.example/cb"}


class OAuthDriver:
    type = "tyk"
    admin_urls: list[str] = []  # noqa: RUF012
    neutral_fields: frozenset[str] = frozenset()

    @property
    def dialect(self) -> str:
        return str(self.type)

    def __init__(self, journal: Journal, *, oauth: bool = True) -> None:
        self.name = "tyk"
        self.journal = journal
        self.clients: dict[str, OAuthClientRequest] = {}
        self.oauth = self if oauth else None

    async def converge_oauth_client(self, request: OAuthClientRequest) -> bool:
        self.journal.append("gateway:client")
        changed = self.clients.get(request.client_id) != request
        self.clients[request.client_id] = request
        return changed


def setup(*, oauth: bool = True, tenancy: Tenancy | None = None) -> tuple[ReconcileContext, FakeSecrets, OAuthDriver]:
    journal = Journal()
    secrets, apis, driver = FakeSecrets(journal), FakeApis(), OAuthDriver(journal, oauth=oauth)
    apis.add("reports", auth="oauth2")
    gateways = Gateways({"tyk": driver}, "tyk")  # type: ignore[dict-item]
    policy = {"tyk": tenancy or Tenancy()}
    return ReconcileContext(gateways, secrets, apis, record=recorder(journal), tenancy=policy), secrets, driver


async def test_id_and_secret_are_recorded_and_stored_before_the_gateway_sees_them() -> None:
    env, secrets, driver = setup()
    out = await reconcile_oauth_client(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert ready(out)["status"] == "True"
    assert driver.journal == ["status:credentialDigest", "secret:create", "gateway:client"]
    data = secrets.items["checkout"].data
    assert (
        len(data["clientId"]) == 16 and len(data["clientSecret"]) == 64 and data["redirectUri"] == SPEC["redirectUri"]
    )
    assert driver.clients[data["clientId"]].client_secret == data["clientSecret"]
    assert out.status["clientId"] == data["clientId"] and data["clientSecret"] not in str(out.status)
    again = await reconcile_oauth_client(env, REF, OWNER, SPEC, 1, out.status, Cause.DRIFT)
    assert again.events == [] and driver.journal.count("secret:create") == 1  # nothing rewritten


async def test_a_secret_the_tenant_rewrote_is_replaced_keeping_the_client_id() -> None:
    env, secrets, driver = setup()
    out = await reconcile_oauth_client(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    issued = dict(secrets.items["checkout"].data)
    view = secrets.items["checkout"]
    tampered = {**issued, "clientSecret": "chosen-by-the-tenant"}
    secrets.items["checkout"] = SecretView("checkout", tampered, view.labels, view.annotations, view.owner_uids,
                                           view.resource_version)  # fmt: skip
    again = await reconcile_oauth_client(env, REF, OWNER, SPEC, 1, out.status, Cause.DRIFT)
    data = secrets.items["checkout"].data
    assert data["clientId"] == issued["clientId"] and data["clientSecret"] not in ("chosen-by-the-tenant",
                                                                                   issued["clientSecret"])  # fmt: skip
    assert driver.clients[data["clientId"]].client_secret == data["clientSecret"]
    assert "CredentialReplaced" in [e.reason for e in again.events]


async def test_a_gateway_without_oauth_clients_is_unsupported() -> None:
    env, _, driver = setup(oauth=False)
    out = await reconcile_oauth_client(env, ObjectRef("shop", "web"), OWNER, SPEC, 1, None, Cause.CREATE)
    assert ready(out)["reason"] == "Unsupported" and not out.retry and driver.journal == []


async def test_a_policy_needs_the_platforms_list() -> None:
    env, _, driver = setup()
    out = await reconcile_oauth_client(env, REF, OWNER, {**SPEC, "policy": "gold"}, 1, None, Cause.CREATE)
    assert ready(out)["reason"] == "PolicyViolation" and "spec.policy" in ready(out)["message"]
    env, _, driver = setup(tenancy=Tenancy.model_validate({"oauthPolicies": ["gold"]}))
    out = await reconcile_oauth_client(env, REF, OWNER, {**SPEC, "policy": "gold"}, 1, None, Cause.CREATE)
    assert ready(out)["status"] == "True" and next(iter(driver.clients.values())).policy == "gold"
