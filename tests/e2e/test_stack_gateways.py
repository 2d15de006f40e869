"""The local gateways are real ones: Tyk Gateway (+ Redis) and Otoroshi proxy to a local upstream.

These talk to the admin APIs directly (no Torii code), to prove the stack itself works. When a gateway could
not be built or downloaded on this machine, its tests are skipped with the registry's exact answer.
"""

from __future__ import annotations

import socket
import uuid

import httpx

from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until


def test_redis_answers(stack: Stack) -> None:
    port = int(stack.env["TORII_REDIS_URL"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(16) == b"+PONG\r\n"


def test_tyk_proxies_an_api_to_a_local_upstream(stack: Stack) -> None:
    stack.require("tyk")
    base = stack.env["TYK_URL"]
    admin = httpx.Client(base_url=base, headers={"X-Tyk-Authorization": stack.env["TYK_SECRET"]}, timeout=30)
    api_id = f"stacktest-{uuid.uuid4().hex[:8]}"
    with upstream("tyk-upstream") as up:
        definition = {
            "name": api_id,
            "api_id": api_id,
            "org_id": "torii",
            "use_keyless": True,
            "active": True,
            "version_data": {"not_versioned": True, "versions": {"Default": {"name": "Default"}}},
            "proxy": {"listen_path": f"/{api_id}/", "target_url": up.url, "strip_listen_path": True},
        }
        created = admin.post("/tyk/apis", json=definition)
        assert created.status_code == 200, created.text
        assert created.json()["key"] == api_id
        assert admin.get("/tyk/reload", params={"block": "true"}).status_code == 200
        wait_until(lambda: admin.get(f"/tyk/apis/{api_id}").status_code == 200, what="Tyk loaded the API")
        try:
            resp = httpx.get(f"{base}/{api_id}/hello")
            assert resp.status_code == 200
            assert resp.json() == {"upstream": "tyk-upstream", "path": "/hello"}
            assert httpx.get(f"{base}/no-such-api-{uuid.uuid4().hex[:6]}/x").status_code == 404
        finally:
            admin.delete(f"/tyk/apis/{api_id}")
            admin.get("/tyk/reload", params={"block": "true"})


def test_otoroshi_proxies_with_an_api_key(stack: Stack) -> None:
    stack.require("otoroshi")
    base = stack.env["OTOROSHI_URL"]
    admin = httpx.Client(
        base_url=base,
        headers={"Host": stack.env["OTOROSHI_API_HOST"]},
        auth=(stack.env["OTOROSHI_CLIENT_ID"], stack.env["OTOROSHI_CLIENT_SECRET"]),
        timeout=30,
    )
    sid = f"stacktest-{uuid.uuid4().hex[:8]}"
    host = f"{sid}.{stack.env['OTOROSHI_DOMAIN']}"
    with upstream("oto-upstream") as up:
        service = {
            "id": sid,
            "name": sid,
            "env": "prod",
            "domain": stack.env["OTOROSHI_DOMAIN"],
            "subdomain": sid,
            "groups": ["default"],
            "targets": [{"host": f"127.0.0.1:{up.port}", "scheme": "http"}],
            "root": "/",
            "enabled": True,
            "forceHttps": False,
            "enforceSecureCommunication": False,
            "publicPatterns": [],
            "privatePatterns": ["/.*"],
        }
        resp = admin.post("/api/services", json=service)
        assert resp.status_code in (200, 201), resp.text
        key = {
            "clientId": f"k{uuid.uuid4().hex[:15]}",
            "clientSecret": uuid.uuid4().hex * 2,
            "clientName": sid,
            "authorizedEntities": [f"service_{sid}"],
        }
        resp = admin.post(f"/api/services/{sid}/apikeys", json=key)
        assert resp.status_code in (200, 201), resp.text
        try:
            with_key = {
                "Host": host,
                "Otoroshi-Client-Id": key["clientId"],
                "Otoroshi-Client-Secret": key["clientSecret"],
            }
            ok = wait_until(
                lambda: (r := httpx.get(f"{base}/hello", headers=with_key)).status_code == 200 and r,
                what="Otoroshi serving the service with the key",
            )
            assert ok.json() == {"upstream": "oto-upstream", "path": "/hello"}
            before = len(up.requests)
            refused = httpx.get(f"{base}/hello", headers={"Host": host})
            assert refused.status_code in (400, 401, 403)
            assert len(up.requests) == before
        finally:
            admin.delete(f"/api/services/{sid}/apikeys/{key['clientId']}")
            admin.delete(f"/api/services/{sid}")
