"""What only a real Otoroshi 17.17.0 can show.

- every operation of seed 002 (the apikeys admin API), through Torii's driver, under a service and a group;
- Ready waits for the state sync: the first request after Ready is served;
- no write over two drift passes on Otoroshi's normalised JSON (services and keys);
- rotation with `rotation.nextSecret`: both secrets work in the grace period, only the new one after it;
- `enabled: false`, monthly quota exhaustion and its reset.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from kubernetes import client

from support.metrics import counter, scrape, writes
from support.operator import Operator, one_gateway_operator
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import World
from torii.gateways.base import Credential, KeyRequest, ObjectRef, ResolvedApi
from torii.gateways.otoroshi import OtoroshiDriver
from torii.models.gatewayapi import GatewayAPISpec
from torii.models.gatewaykey import GatewayKeySpec

DRIFT = 1.0


@pytest.fixture(scope="module")
def live(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[Operator]:
    tmp = tmp_path_factory.mktemp("otoroshi")
    with one_gateway_operator(crds, admin, ns, tmp, "otoroshi", metrics_port=metrics_port, drift_interval=DRIFT) as op:
        yield op


@pytest.fixture
def world(admin: client.ApiClient, ns: str, stack: Stack, live: Operator) -> Iterator[World]:
    w = World(admin, ns, stack)
    yield w
    w.delete_all()


def host(stack: Stack) -> str:
    return f"api.{stack.env['OTOROSHI_DOMAIN']}"


def call(stack: Stack, path: str, client_id: str = "", client_secret: str = "") -> httpx.Response:
    headers = {"Host": host(stack)}
    if client_id:
        headers |= {"Otoroshi-Client-Id": client_id, "Otoroshi-Client-Secret": client_secret}
    return httpx.get(f"{stack.env['OTOROSHI_URL']}{path}", headers=headers)


# ------------------------------------------------------------------------------ seed 002 through the driver


@pytest.fixture(params=["services", "routes"])
async def driver(stack: Stack, request: pytest.FixtureRequest) -> AsyncIterator[OtoroshiDriver]:
    stack.require("otoroshi")
    env = stack.env
    d = OtoroshiDriver(
        "otoroshi", env["OTOROSHI_URL"], env["OTOROSHI_CLIENT_ID"], env["OTOROSHI_CLIENT_SECRET"],
        api_host=env["OTOROSHI_API_HOST"], domain=env["OTOROSHI_DOMAIN"], subdomain="api",
        state_sync_seconds=float(env["OTOROSHI_STATE_SYNC_SECONDS"]), id_prefix=f"seed{secrets.token_hex(3)}",
        entity=request.param,
    )  # fmt: skip
    yield d
    await d.aclose()


async def test_every_seed_apikey_operation_through_the_driver(stack: Stack, driver: OtoroshiDriver) -> None:
    """The 18 operations of seed 002 (on a `services` connection: `/api/services/{id}/apikeys...`), and their
    route-scoped counterparts on a `routes` one (`/api/routes/{id}/apikeys...`), each made by Torii's driver
    against Otoroshi 17.17 and checked."""
    kind = driver.entity
    with upstream("seed") as up:
        refs = [ObjectRef("seed", f"s{i}") for i in (1, 2)]
        sids = []
        for ref in refs:
            spec = GatewayAPISpec.model_validate(
                {"listenPath": f"/{driver.apis.id_prefix}-{ref.name}/", "upstream": {"url": up.url}, "auth": "key",
                 "group": "g"}
            )  # fmt: skip
            sids.append((await driver.apis.converge_api(ref, spec)).gateway_id)
        other = driver.apis.other  # the entity this connection does not publish holds none of them
        assert not set(sids) & set(await other.list_all()) and set(sids) <= set(await driver.apis.sync.list_all())
        gid = f"{driver.apis.id_prefix}.seed.group.g"
        key_spec = GatewayKeySpec.model_validate({"apis": [{"name": "s1"}], "quota": {"max": 5, "period": "day"}})
        cred = Credential(client_id="seedkey" + secrets.token_hex(4), client_secret=secrets.token_hex(32))
        by_service = KeyRequest(ObjectRef("seed", "k"), key_spec, (ResolvedApi("s1", sids[0]),), None, cred)

        # create_api_key, api_key, api_keys, all_api_keys
        assert (await driver.keys.converge_key(by_service)).created
        found, in_scope = await driver.keys._find_key(f"{kind}/{sids[0]}", cred.client_id)
        assert in_scope and found is not None and found["clientId"] == cred.client_id
        assert cred.client_id in {k["clientId"] for k in await driver.keys.list_keys(f"{kind}/{sids[0]}")}
        assert cred.client_id in {k["clientId"] for k in await driver.keys.list_keys()}
        # the key works through the proxy, on its service only
        assert call(stack, f"/{driver.apis.id_prefix}-s1/x", cred.client_id, cred.client_secret).status_code == 200
        assert call(stack, f"/{driver.apis.id_prefix}-s2/x", cred.client_id, cred.client_secret).status_code != 200

        # patch_api_key (a JSON Patch diff), api_key_quotas, reset_api_key_quotas
        disabled = KeyRequest(by_service.ref, key_spec.model_copy(update={"enabled": False}), by_service.apis,
                              None, cred)  # fmt: skip
        assert (await driver.keys.converge_key(disabled)).changed
        assert (await driver.keys._find_key(f"{kind}/{sids[0]}", cred.client_id))[0]["enabled"] is False  # type: ignore[index]
        assert call(stack, f"/{driver.apis.id_prefix}-s1/x", cred.client_id, cred.client_secret).status_code != 200
        assert (await driver.keys.converge_key(by_service)).changed  # enabled again
        assert call(stack, f"/{driver.apis.id_prefix}-s1/x", cred.client_id, cred.client_secret).status_code == 200
        quota = await driver.keys.key_quota(by_service)
        assert quota is not None and quota.max == 5 and quota.remaining is not None and quota.remaining < 5
        await driver.keys.reset_key_quota(by_service)
        assert (await driver.keys.key_quota(by_service)).remaining == 5  # type: ignore[union-attr]

        # a key moved to the other service (unscoped PUT): the old scope no longer holds it
        moved = KeyRequest(by_service.ref, key_spec, (ResolvedApi("s2", sids[1]),), None, cred)
        assert (await driver.keys.converge_key(moved)).changed
        assert (await driver.keys._find_key(f"{kind}/{sids[1]}", cred.client_id))[1] is True
        assert (await driver.keys._find_key(f"{kind}/{sids[0]}", cred.client_id))[1] is False

        # delete_api_key
        assert await driver.keys.delete_key(moved)
        assert (await driver.keys._find_key(f"{kind}/{sids[1]}", cred.client_id))[0] is None

        # the group variants: create_api_key_from_group, api_key_from_group, api_keys_from_group, patch, quotas,
        # reset, delete_api_key_from_group
        gcred = Credential(client_id="seedgrp" + secrets.token_hex(4), client_secret=secrets.token_hex(32))
        group_spec = GatewayKeySpec.model_validate({"apiGroup": "g", "quota": {"max": 7, "period": "day"}})
        apis = tuple(ResolvedApi(f"s{i + 1}", sid) for i, sid in enumerate(sids))
        by_group = KeyRequest(ObjectRef("seed", "g"), group_spec, apis, gid, gcred)
        assert (await driver.keys.converge_key(by_group)).created
        assert (await driver.keys._find_key(f"groups/{gid}", gcred.client_id))[1] is True
        assert gcred.client_id in {k["clientId"] for k in await driver.keys.list_keys(f"groups/{gid}")}
        for sid in ("s1", "s2"):
            path = f"/{driver.apis.id_prefix}-{sid}/x"
            assert call(stack, path, gcred.client_id, gcred.client_secret).status_code == 200
        tighter = KeyRequest(by_group.ref, group_spec.model_copy(update={"rate_limit": None, "enabled": False}),
                             apis, gid, gcred)  # fmt: skip
        assert (await driver.keys.converge_key(tighter)).changed  # PATCH under the group
        assert call(stack, f"/{driver.apis.id_prefix}-s1/x", gcred.client_id, gcred.client_secret).status_code != 200
        assert (await driver.keys.key_quota(by_group)).max == 7  # type: ignore[union-attr]
        await driver.keys.reset_key_quota(by_group)
        assert await driver.keys.delete_key(by_group)
        assert (await driver.keys._find_key(f"groups/{gid}", gcred.client_id))[0] is None
        assert not await driver.keys.delete_key(by_group)  # already gone
        # a key created under a service, then moved to the group
        assert (await driver.keys.converge_key(KeyRequest(by_group.ref, key_spec, apis[:1], None, gcred))).created
        assert (await driver.keys.converge_key(by_group)).changed
        assert (await driver.keys._find_key(f"groups/{gid}", gcred.client_id))[1] is True
        assert await driver.keys.delete_key(by_group)

        for ref in refs:
            assert await driver.apis.delete_api(ref)


# ----------------------------------------------------------------------------------------- through the operator


def test_first_request_after_ready_is_served_and_nothing_is_rewritten(
    stack: Stack, world: World, metrics_port: int
) -> None:
    with upstream("o-sync") as up:
        world.apply("GatewayAPI", "api", {
            "gateway": "otoroshi", "listenPath": "/o-sync/", "auth": "key", "upstream": {"url": up.url},
            "cors": {"allowedOrigins": ["https://a.example"]},
        })  # fmt: skip
        world.ready("GatewayAPI", "api")
        assert call(stack, "/o-sync/x").status_code in (400, 401)  # routed, and the key is asked for
        world.apply("GatewayKey", "key", {"gateway": "otoroshi", "apis": [{"name": "api"}],
                                          "rateLimit": {"rate": 10, "per": 1}, "expires": "2099-01-01T00:00:00Z",
                                          "metadata": {"team": "a"}})  # fmt: skip
        world.ready("GatewayKey", "key")
        data = world.secret("key")
        assert call(stack, "/o-sync/x", data["clientId"], data["clientSecret"]).status_code == 200
        before = writes(scrape(metrics_port))
        passes = counter(scrape(metrics_port), "torii_reconciles_total", cause="drift")
        wait_until(lambda: counter(scrape(metrics_port), "torii_reconciles_total", cause="drift") >= passes + 4,
                   timeout=60, what="two drift passes over both objects")  # fmt: skip
        assert writes(scrape(metrics_port)) == before


def test_rotation_with_next_secret(stack: Stack, world: World) -> None:
    with upstream("o-rot") as up:
        world.apply("GatewayAPI", "api", {"gateway": "otoroshi", "listenPath": "/o-rot/", "auth": "key",
                                          "upstream": {"url": up.url}})  # fmt: skip
        world.ready("GatewayAPI", "api")
        spec = {"gateway": "otoroshi", "apis": [{"name": "api"}]}
        world.apply("GatewayKey", "key", spec)
        world.ready("GatewayKey", "key")
        old = world.secret("key")
        world.apply("GatewayKey", "key", {**spec, "rotation": {"generation": 1, "gracePeriodSeconds": 8}})
        world.ready("GatewayKey", "key")
        new = world.secret("key")
        assert new["clientId"] == old["clientId"] and new["clientSecret"] != old["clientSecret"]
        assert new["previousClientSecret"] == old["clientSecret"]
        assert call(stack, "/o-rot/x", new["clientId"], new["clientSecret"]).status_code == 200
        assert call(stack, "/o-rot/x", old["clientId"], old["clientSecret"]).status_code == 200  # grace
        wait_until(lambda: call(stack, "/o-rot/x", old["clientId"], old["clientSecret"]).status_code != 200,
                   timeout=60, what="the old secret refused after the grace period")  # fmt: skip
        assert call(stack, "/o-rot/x", new["clientId"], new["clientSecret"]).status_code == 200
        # The Secret drops the old secret once Torii has ended the grace period on the gateway.
        wait_until(lambda: "previousClientSecret" not in world.secret("key"), timeout=30,
                   what="previousClientSecret removed from the Secret")  # fmt: skip


def test_disabled_key_and_monthly_quota_with_reset(stack: Stack, world: World) -> None:
    with upstream("o-quota") as up:
        world.apply("GatewayAPI", "api", {"gateway": "otoroshi", "listenPath": "/o-quota/", "auth": "key",
                                          "upstream": {"url": up.url}})  # fmt: skip
        world.ready("GatewayAPI", "api")
        spec = {"gateway": "otoroshi", "apis": [{"name": "api"}], "quota": {"max": 2, "period": "month"}}
        world.apply("GatewayKey", "key", spec)
        world.ready("GatewayKey", "key")
        data = world.secret("key")
        statuses = [call(stack, "/o-quota/x", data["clientId"], data["clientSecret"]).status_code for _ in range(3)]
        assert statuses[:2] == [200, 200] and statuses[2] in (403, 429)
        wait_until(lambda: (world.ready("GatewayKey", "key")["status"].get("quota") or {}).get("remainingPerMonth")
                   == 0, timeout=30, what="quota state in status")  # fmt: skip
        world.apply("GatewayKey", "key", {**spec, "quotaResetGeneration": 1})
        world.ready("GatewayKey", "key")
        assert call(stack, "/o-quota/x", data["clientId"], data["clientSecret"]).status_code == 200
        world.apply("GatewayKey", "key", {**spec, "quotaResetGeneration": 1, "enabled": False})
        world.ready("GatewayKey", "key")
        assert call(stack, "/o-quota/x", data["clientId"], data["clientSecret"]).status_code != 200
