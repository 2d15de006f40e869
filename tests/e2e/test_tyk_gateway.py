"""What only a real Tyk Gateway 5.10.2 can show: the points the documentation left open, checked against it.

- the in-sync check reads the field names `GET /tyk/apis/{id}` really returns: no write over two drift passes;
- the full API definition of seed 004 passes through `spec.tyk`, and the neutral fields cannot be overridden;
- deleting the last API stops serving it (older Tyk skipped reloads with no API left);
- CORS preflight, load-balanced targets, `active: false`, a whole-API rate limit (429);
- custom keys with `hash_keys` off (a second Tyk on the same Redis): created, refused once deleted, and a key
  whose Secret was lost is found and revoked without Tyk's key hash;
- reloads through `/tyk/reload/group`, and per-API health from `/tyk/health/`.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from support.kube import kubectl, namespace
from support.metrics import assert_no_writes_over_two_drift_passes, counter, scrape
from support.operator import (
    SINGLE_TEAM,
    Operator,
    free_port,
    one_gateway_operator,
    running_operator,
    torii_import,
)
from support.stack import ROOT, Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import World
from torii.gateways.tyk_render import AUTH_ONLY_FIELDS

SEEDS = ROOT.parent / "shared" / "seeds"
DRIFT = 1.0


@pytest.fixture(scope="module")
def live(
    crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[Operator]:
    # Full fidelity through spec.tyk (the whole seed definition) is a platform team's own choice: tenancy
    # singleTeam. What the multi-tenant default refuses is tests/e2e/test_tenancy.py's.
    with one_gateway_operator(crds, admin, ns, tmp_path_factory.mktemp("tyk"), "tyk", metrics_port=metrics_port,
                              drift_interval=DRIFT, tenancy=SINGLE_TEAM, apiHealth=True) as op:  # fmt: skip
        yield op


@pytest.fixture
def world(admin: client.ApiClient, ns: str, stack: Stack, live: Operator) -> Iterator[World]:
    w = World(admin, ns, stack)
    yield w
    w.delete_all()


def tyk_admin(stack: Stack, url: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=url or stack.env["TYK_URL"], headers={"X-Tyk-Authorization": stack.env["TYK_SECRET"]}, timeout=10
    )


# The seed is an example with placeholders ("<string>", 123). Strings become "torii-seed"; these fields get valid
# values of the same type instead, because Tyk refuses the placeholder (IP lists) or it would change what the
# test can observe (a separate listen port or domain, certificates that do not exist, an OAS marker on a
# classic definition).
SEED_VALUES: dict[str, Any] = {
    "allowed_ips": ["10.0.0.0/8"], "blacklisted_ips": ["192.0.2.0/24"], "listen_port": 0, "domain": "",
    "protocol": "", "certificates": [], "client_certificates": [], "expiration": "", "custom_middleware_bundle": "",
    "is_oas": False,
}  # fmt: skip


def seed_definition() -> dict[str, Any]:
    """The PUT body of seed 004, every field of a Tyk classic API definition, with valid values."""
    text = (SEEDS / "004_97dd84b17625d032.txt").read_text()
    start = text.index("--data '") + len("--data '")
    body: dict[str, Any] = json.loads(text[start : text.index("'", start)])

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return "torii-seed" if value == "<string>" else value

    return {**fill(body), **SEED_VALUES}


def served_as_sent(sent: Any, loaded: Any) -> bool:
    """`sent` is in `loaded`, allowing Tyk's normalisation: empty values ("", {}, [], false) may come back as
    null or absent, and Tyk adds its defaults."""
    empty = (None, "", {}, [], False)
    if sent in empty:
        return loaded in empty
    if isinstance(sent, dict):
        return isinstance(loaded, dict) and all(served_as_sent(v, loaded.get(k)) for k, v in sent.items())
    if isinstance(sent, list):
        return (isinstance(loaded, list) and len(sent) == len(loaded)
                and all(served_as_sent(a, b) for a, b in zip(sent, loaded, strict=True)))  # fmt: skip
    return bool(sent == loaded)


# ------------------------------------------------------------------------------------------------ definitions


def test_in_sync_objects_make_no_gateway_write_over_two_drift_passes(
    stack: Stack, world: World, metrics_port: int
) -> None:
    """The in-sync check compares the fields `GET /tyk/apis/{id}` and `GET /tyk/keys/{key}` really return."""
    with upstream("sync") as up:
        world.apply("GatewayAPI", "sync-keyed", {
            "gateway": "tyk", "listenPath": "/sync-keyed/", "upstream": {"url": up.url}, "auth": "key",
            "rateLimit": {"rate": 100, "per": 1}, "cors": {"allowedOrigins": ["https://a.example"]},
            "tags": ["shop"], "tyk": {"cache_options": {"enable_cache": True, "cache_timeout": 30}},
        })  # fmt: skip
        world.apply("GatewayAPI", "sync-oauth", {
            "gateway": "tyk", "listenPath": "/sync-oauth/", "upstream": {"url": up.url}, "auth": "oauth2",
        })  # fmt: skip
        world.apply("GatewayAPI", "sync-lb", {
            "gateway": "tyk", "listenPath": "/sync-lb/", "upstream": {"targets": [up.url, up.url + "/"]},
        })  # fmt: skip
        for name in ("sync-keyed", "sync-oauth", "sync-lb"):
            world.ready("GatewayAPI", name)
        world.apply("GatewayKey", "sync-key", {
            "gateway": "tyk", "apis": [{"name": "sync-keyed"}], "rateLimit": {"rate": 5, "per": 1},
            "quota": {"max": 1000, "period": "day"}, "expires": "2099-01-01T00:00:00Z", "metadata": {"team": "a"},
        })  # fmt: skip
        world.apply("OAuthClient", "sync-client", {
            "gateway": "tyk", "api": "sync-oauth", "redirectUri": "http://127.0.0.1/cb",
        })  # fmt: skip
        world.ready("GatewayKey", "sync-key")
        world.ready("OAuthClient", "sync-client")
        assert_no_writes_over_two_drift_passes(metrics_port, objects=5)


def test_seed_definition_passes_through_spec_tyk(stack: Stack, world: World, metrics_port: int) -> None:
    """Every field of seed 004's PUT body reaches Tyk 5.10.2 through spec.tyk; Torii's own fields win."""
    seed = seed_definition()
    owned = {"api_id", "org_id", "id"}  # refused by the CRD (tested in the validation suite)
    tyk = {k: v for k, v in seed.items() if k not in owned}
    with upstream("seed") as up:
        world.apply("GatewayAPI", "seed", {"gateway": "tyk", "listenPath": "/seed/", "upstream": {"url": up.url},
                                           "auth": "keyless", "tyk": tyk})  # fmt: skip
        obj = world.ready("GatewayAPI", "seed")
        loaded = tyk_admin(stack).get(f"/tyk/apis/{obj['status']['gatewayId']}").json()
        # The neutral spec decides routing and auth, and Ready's message says which spec.tyk values it ignored.
        message = World.condition(obj)["message"]
        neutral = {"use_keyless": True, "use_standard_auth": False, "use_oauth2": False}
        for field, value in neutral.items():
            assert loaded[field] is value
            assert (tyk[field] == value) != (f"spec.tyk.{field} is ignored" in message)
        assert loaded["proxy"]["listen_path"] == "/seed/" and loaded["proxy"]["target_url"] == up.url
        assert "spec.tyk.proxy.listen_path is ignored: Torii sets it from spec.listenPath" in message
        # Every other field of the seed is served as sent (version_data is merged with Torii's default version;
        # config_data gains Torii's bookkeeping under config_data.torii and keeps the rest).
        assert served_as_sent(tyk["config_data"], {k: v for k, v in loaded["config_data"].items() if k != "torii"})
        # Auth fields of other modes (JWT, basic auth, client certificates) are Torii's too: on a keyless API they
        # keep Tyk's zero values, whatever spec.tyk says (a tenant could otherwise open it to tokens it signs).
        dropped = {f for f in AUTH_ONLY_FIELDS if "." not in f} & set(tyk)
        for field in dropped:
            assert not loaded.get(field), (field, loaded.get(field))
            assert (not tyk[field]) or f"spec.tyk.{field} is ignored" in message
        others = {k: v for k, v in tyk.items() if k not in {*neutral, *dropped, "proxy", "version_data", "config_data"}}
        differing = {k: (v, loaded.get(k)) for k, v in others.items() if not served_as_sent(v, loaded.get(k))}
        assert differing == {}
        # The seed's 93 fields less the 3 owned ones, the 6 above and the other modes' auth fields.
        assert len(others) == 84 - len(dropped) and len(dropped) >= 9
        assert_no_writes_over_two_drift_passes(metrics_port, objects=1)


def test_deleting_the_last_api_stops_serving_it(stack: Stack, world: World) -> None:
    """Tyk's DoReload skipped a reload when no API was left in older versions: 5.10.2 reloads (count 0 but one
    loaded), so the last API's delete is served at once."""
    for item in world.list("GatewayAPI"):
        world.delete("GatewayAPI", item["metadata"]["name"])
    stack.stack_command("restart-tyk", "--empty")  # nothing else on this Tyk: ours is the last API
    admin = tyk_admin(stack)
    assert admin.get("/tyk/apis/").json() == []
    with upstream("last") as up:
        world.apply("GatewayAPI", "last", {"gateway": "tyk", "listenPath": "/last/", "upstream": {"url": up.url}})
        world.ready("GatewayAPI", "last")
        assert httpx.get(f"{stack.env['TYK_URL']}/last/x").status_code == 200
        world.delete("GatewayAPI", "last")
        assert httpx.get(f"{stack.env['TYK_URL']}/last/x").status_code == 404
        assert admin.get("/tyk/apis/").json() == []


def test_cors_preflight_load_balancing_and_api_rate_limit(stack: Stack, world: World) -> None:
    base = stack.env["TYK_URL"]
    with upstream("lb-a") as a, upstream("lb-b") as b:
        world.apply("GatewayAPI", "cors", {
            "gateway": "tyk", "listenPath": "/cors/", "upstream": {"url": a.url},
            "cors": {"allowedOrigins": ["https://shop.example"], "allowedMethods": ["GET", "POST"]},
        })  # fmt: skip
        world.apply(
            "GatewayAPI", "lb", {"gateway": "tyk", "listenPath": "/lb/", "upstream": {"targets": [a.url, b.url]}}
        )
        world.apply("GatewayAPI", "limited", {"gateway": "tyk", "listenPath": "/limited/", "upstream": {"url": a.url},
                                              "rateLimit": {"rate": 2, "per": 60}})  # fmt: skip
        for name in ("cors", "lb", "limited"):
            world.ready("GatewayAPI", name)

        allowed = httpx.options(f"{base}/cors/x", headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})  # fmt: skip
        assert allowed.status_code in (200, 204)
        assert allowed.headers.get("Access-Control-Allow-Origin") == "https://shop.example"
        other = httpx.options(f"{base}/cors/x", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})  # fmt: skip
        assert "Access-Control-Allow-Origin" not in other.headers

        answered_by = {httpx.get(f"{base}/lb/x").json()["upstream"] for _ in range(6)}
        assert answered_by == {"lb-a", "lb-b"}

        statuses = [httpx.get(f"{base}/limited/x").status_code for _ in range(4)]
        assert statuses[:2] == [200, 200] and 429 in statuses[2:]


def test_inactive_api_is_ready_but_not_served(stack: Stack, world: World) -> None:
    base = stack.env["TYK_URL"]
    with upstream("inactive") as up:
        spec = {"gateway": "tyk", "listenPath": "/inactive/", "upstream": {"url": up.url}}
        world.apply("GatewayAPI", "inactive", {**spec, "active": False})
        obj = world.ready("GatewayAPI", "inactive")
        assert httpx.get(f"{base}/inactive/x").status_code == 404
        assert "inactive" in World.condition(obj)["message"]
        world.apply("GatewayAPI", "inactive", {**spec, "active": True})
        world.ready("GatewayAPI", "inactive")
        assert httpx.get(f"{base}/inactive/x").status_code == 200


def test_drift_pass_reports_tyk_api_health(stack: Stack, world: World) -> None:
    """With `apiHealth: true` on the connection, `GET /tyk/health/?api_id=` (health checks on in the stack's
    tyk.conf) lands in status.health."""
    with upstream("health") as up:
        world.apply(
            "GatewayAPI", "health", {"gateway": "tyk", "listenPath": "/health-api/", "upstream": {"url": up.url}}
        )
        world.ready("GatewayAPI", "health")
        httpx.get(f"{stack.env['TYK_URL']}/health-api/x")
        health = wait_until(lambda: world.get("GatewayAPI", "health")["status"].get("health"), timeout=30,
                            what="status.health from a drift pass")  # fmt: skip
        assert "averageRequestsPs" in health and "checkedAt" in health


# --------------------------------------------------------------------------- a second Tyk: hash_keys off, group


@pytest.fixture(scope="module")
def plain_tyk(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second Tyk on the stack's Redis (another database), with `hash_keys` off. Its URL."""
    stack.require("tyk")
    tmp = tmp_path_factory.mktemp("tyk-plain")
    conf = json.loads(Path(stack.env["TORII_TYK_CONF"]).read_text())
    port = free_port()
    (tmp / "apps").mkdir()
    conf |= {
        "listen_port": port, "app_path": str(tmp / "apps"), "hash_keys": False,
        "storage": {**conf["storage"], "database": 1}, "pid_file_location": str(tmp / "tyk.pid"),
    }  # fmt: skip
    (tmp / "tyk.conf").write_text(json.dumps(conf))
    with open(tmp / "tyk.log", "wb") as log:
        # cwd: Tyk writes a default tyk.conf into its working directory.
        proc = subprocess.Popen([stack.env["TORII_TYK_BIN"], "--conf", str(tmp / "tyk.conf")], stdout=log,
                                stderr=subprocess.STDOUT, cwd=tmp)  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (tmp / "tyk.log").read_text()[-2000:]
        try:
            return httpx.get(f"{url}/hello", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, timeout=60, what="second Tyk (hash_keys off) up")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def plain_operator(
    crds: Stack, admin: client.ApiClient, plain_tyk: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Operator, str, int]]:
    port = free_port()

    ref = {"namespace": "torii-system", "name": "torii-gateways-plain"}
    gateways = [{"name": "plain", "type": "tyk", "url": plain_tyk, "insecureHttp": True,
                 "secretRef": {**ref, "key": "tyk"}, "reloadScope": "group"}]  # fmt: skip
    with namespace(admin, "tyk-plain") as ns, running_operator(
        crds, admin, tmp_path_factory.mktemp("plain-op"), gateways=gateways, namespaces=[ns],
        secret_data={"tyk": crds.env["TYK_SECRET"]}, secret_name="torii-gateways-plain", drift_interval=DRIFT,
        metrics_port=port, tenancy=SINGLE_TEAM,  # adopting plain keys reads their credential: a platform grant
    ) as op:  # fmt: skip
        yield op, ns, port
        World(admin, ns, crds).delete_all()


def test_plain_keys_group_reload_revoke_and_lost_secret(
    stack: Stack, admin: client.ApiClient, plain_tyk: str, plain_operator: tuple[Operator, str, int]
) -> None:
    """hash_keys off: Tyk stores `<org_id><key>` in clear; delete must name the org; a lost Secret's key is
    found by its digest in `GET /tyk/keys/` and revoked. Reloads go through `/tyk/reload/group` here."""
    _, ns, _ = plain_operator
    w = World(admin, ns, stack)
    tyk = tyk_admin(stack, plain_tyk)
    with upstream("plain") as up:
        w.apply("GatewayAPI", "api", {"gateway": "plain", "listenPath": "/plain/", "upstream": {"url": up.url},
                                      "auth": "key"})  # fmt: skip
        w.ready("GatewayAPI", "api")
        w.apply("GatewayKey", "key", {"gateway": "plain", "apis": [{"name": "api"}]})
        obj = w.ready("GatewayKey", "key")
        key = w.secret("key")["key"]
        assert obj["status"]["keyId"].startswith("sha256:") and key not in json.dumps(obj)
        stored = tyk.get("/tyk/keys/", params={"filter": "torii"}).json()["keys"]
        assert f"torii{key}" in stored  # Tyk's own naming of a custom key under an org
        assert httpx.get(f"{plain_tyk}/plain/x", headers={"Authorization": key}).status_code == 200

        # The Secret is lost: a new key is issued and the old one, known to nobody, is revoked on the gateway.
        w.core.delete_namespaced_secret("key", ns)
        new = wait_until(lambda: _secret_key(w, "key", other_than=key), timeout=60, what="a new key in the Secret")
        wait_until(lambda: httpx.get(f"{plain_tyk}/plain/x", headers={"Authorization": key}).status_code in (401, 403),
                   timeout=30, what="the lost key refused")  # fmt: skip
        assert httpx.get(f"{plain_tyk}/plain/x", headers={"Authorization": new}).status_code == 200

        w.delete("GatewayKey", "key")
        assert httpx.get(f"{plain_tyk}/plain/x", headers={"Authorization": new}).status_code in (401, 403)
        assert f"torii{new}" not in tyk.get("/tyk/keys/", params={"filter": "torii"}).json()["keys"]
        # Every reload of this connection went through the group endpoint.
        text = scrape(plain_operator[2])
        assert counter(text, "torii_gateway_calls_total", gateway="plain", operation="reload group") >= 1
        assert counter(text, "torii_gateway_calls_total", gateway="plain", operation="reload") == 0


def test_plain_keys_are_adopted_with_their_credential(
    stack: Stack, admin: client.ApiClient, plain_tyk: str, plain_operator: tuple[Operator, str, int], tmp_path: Path
) -> None:
    """hash_keys off: the key list names the keys themselves. `torii import` writes only a digest of each
    (never the key into a spec), and the operator recovers the credential from the list into the Secret."""
    op, ns, _ = plain_operator
    w = World(admin, ns, stack)
    tyk = tyk_admin(stack, plain_tyk)
    marker = f"plain-adopt-{uuid.uuid4().hex[:6]}"
    with upstream("plain-adopt") as up:
        tyk.post("/tyk/apis", json={
            "api_id": marker, "name": marker, "org_id": "torii", "use_standard_auth": True,
            "auth": {"auth_header_name": "Authorization"}, "proxy": {"listen_path": f"/{marker}/",
            "target_url": up.url, "strip_listen_path": True},
            "version_data": {"not_versioned": True, "versions": {"Default": {"name": "Default"}}},
        })  # fmt: skip
        tyk.get("/tyk/reload/", params={"block": "true"})
        key = tyk.post("/tyk/keys/create", json={"org_id": "torii", "alias": f"{marker}-key", "access_rights": {
            marker: {"api_id": marker, "versions": ["Default"]}}}).json()["key"]  # fmt: skip
        assert httpx.get(f"{plain_tyk}/{marker}/", headers={"Authorization": key}).status_code == 200
        out = tmp_path / "imported"
        torii_import(op, "--gateway", "plain", "--namespace", ns, "-o", str(out))
        mine = [p for p in out.glob("*.yaml") if marker in p.name]
        assert len(mine) == 2 and all(key not in p.read_text() for p in out.glob("*.yaml"))
        key_file = out / f"gatewaykey-{marker}-key.yaml"
        assert yaml.safe_load(key_file.read_text())["spec"]["adopt"]["id"].startswith("sha256:")
        for path in mine:
            done = kubectl("apply", "-f", str(path))
            assert done.returncode == 0, done.stderr
        w.ready("GatewayAPI", marker)
        obj = w.ready("GatewayKey", f"{marker}-key")
        assert w.secret(f"{marker}-key")["key"] == key and key not in json.dumps(obj)
        assert httpx.get(f"{plain_tyk}/{marker}/", headers={"Authorization": key}).status_code == 200


def _secret_key(w: World, name: str, *, other_than: str) -> str | None:
    try:
        value = w.secret(name).get("key")
    except client.ApiException:
        return None
    return value if value and value != other_than else None
