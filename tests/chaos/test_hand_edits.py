"""Hand edits and deletes on the gateways, and foreign objects created there by hand: Torii repairs its own
objects at the next drift pass and never touches the foreign ones."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
from kubernetes import client

from chaos.audit import PREFIX, audit
from chaos.conftest import Clock, Operators, report, size
from chaos.population import apply, converged, credentials, population
from chaos.test_faults import assert_clean, finish, record, tally
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until


def tyk_admin(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.env["TYK_URL"], headers={"X-Tyk-Authorization": stack.env["TYK_SECRET"]})


def oto_admin(stack: Stack) -> httpx.Client:
    env = stack.env
    creds = base64.b64encode(f"{env['OTOROSHI_CLIENT_ID']}:{env['OTOROSHI_CLIENT_SECRET']}".encode()).decode()
    return httpx.Client(base_url=env["OTOROSHI_URL"], headers={"Host": env["OTOROSHI_API_HOST"],
                                                                "Authorization": f"Basic {creds}"})  # fmt: skip


def test_hand_edits_and_deletes_are_repaired_and_foreign_objects_left_alone(
    stack: Stack, crds: Stack, admin: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    stack.require("tyk")
    stack.require("otoroshi")
    with upstream("chaos-edit") as up, tyk_admin(stack) as tyk, oto_admin(stack) as oto:
        objs = population([ns], size(40, 200), up.url)
        ops = Operators(crds, admin, tmp_path, [ns])
        # Foreign objects made by hand on each gateway, before Torii starts: never Torii's to change.
        foreign_api = {"name": "by hand", "api_id": f"foreign-{ns}", "org_id": "someone", "use_keyless": True,
                       "active": True, "proxy": {"listen_path": f"/{ns}-foreign/", "target_url": up.url,
                                                 "strip_listen_path": True},
                       "version_data": {"not_versioned": True,
                                        "versions": {"Default": {"name": "Default"}}}}  # fmt: skip
        assert tyk.post("/tyk/apis/", json=foreign_api).status_code == 200
        assert tyk.get("/tyk/reload/", params={"block": "true"}).status_code == 200
        with ops.running(json_logs=True):
            apply(objs, crds.kubeconfig)
            converged(admin, [ns], len(objs), timeout=size(180, 600))
            record(credentials(admin, objs))
            # A foreign Otoroshi route made by hand from a copy of a stored one (all of Otoroshi's fields).
            model = oto.get(f"/api/routes/{PREFIX}{ns}.o-open-0").json()
            host = model["frontend"]["domains"][0].partition("/")[0]
            foreign_route = {**model, "id": f"foreign-{ns}", "name": "by hand", "metadata": {"owner": "someone"},
                             "frontend": {**model["frontend"], "domains": [f"{host}/{ns}-foreign/"]},
                             "groups": ["default"]}  # fmt: skip
            assert oto.post("/api/routes", json=foreign_route).status_code in (200, 201)
            foreign_before = (tyk.get(f"/tyk/apis/{foreign_api['api_id']}").json(),
                              oto.get(f"/api/routes/{foreign_route['id']}").json())  # fmt: skip
            tyk_ids = sorted(
                a["api_id"] for a in tyk.get("/tyk/apis/").json() if a["api_id"].startswith(f"{PREFIX}{ns}.")
            )
            oto_ids = sorted(r["id"] for r in oto.get("/api/routes").json() if r["id"].startswith(f"{PREFIX}{ns}."))
            tenth = max(1, len(tyk_ids) // 10)
            edited = tyk_ids[:tenth]
            for api_id in edited:  # pointed elsewhere by hand
                definition = tyk.get(f"/tyk/apis/{api_id}").json()
                definition["proxy"]["target_url"] = "http://127.0.0.1:9/"
                assert tyk.post("/tyk/apis/", json=definition).status_code == 200
            for api_id in tyk_ids[tenth : 2 * tenth]:  # deleted by hand
                assert tyk.delete(f"/tyk/apis/{api_id}").status_code == 200
            assert tyk.get("/tyk/reload/", params={"block": "true"}).status_code == 200
            otenth = max(1, len(oto_ids) // 10)
            for route_id in oto_ids[:otenth]:  # disabled by hand
                route = oto.get(f"/api/routes/{route_id}").json()
                assert oto.put(f"/api/routes/{route_id}", json={**route, "enabled": False}).status_code == 200
            for route_id in oto_ids[otenth : 2 * otenth]:  # opened by hand: its plugins (the API key one) dropped
                route = oto.get(f"/api/routes/{route_id}").json()
                assert oto.put(f"/api/routes/{route_id}", json={**route, "plugins": []}).status_code == 200
            for route_id in oto_ids[2 * otenth : 3 * otenth]:
                assert oto.delete(f"/api/routes/{route_id}").status_code == 200
            keys = [o for o in objs if o.kind == "GatewayKey" and o.spec["gateway"] == "tyk"]
            for key in keys[: max(1, len(keys) // 10)]:  # keys revoked by hand
                data = credentials(admin, [key])[f"{ns}/{key.name}"]
                api_id = f"{PREFIX}{ns}.{key.spec['apis'][0]['name']}"
                gone = tyk.delete(f"/tyk/keys/{data['key']}", params={"org_id": "torii", "api_id": api_id})
                assert gone.status_code == 200, gone.text
            faults = 2 * tenth + 3 * otenth + max(1, len(keys) // 10)
            clock = Clock()
            found = wait_until(lambda: (f := audit(stack, admin, [ns])).clean and f, timeout=size(120, 300),
                               what="every hand edit repaired")  # fmt: skip
            opened = oto_ids[otenth : 2 * otenth]
            wait_until(lambda: all(oto.get(f"/api/routes/{r}").json().get("plugins") for r in opened),
                       timeout=size(120, 300), what="opened routes given their plugins back")  # fmt: skip
            seconds = clock.seconds()
            for api_id in edited:
                assert tyk.get(f"/tyk/apis/{api_id}").json()["proxy"]["target_url"] == up.url
            foreign_after = (tyk.get(f"/tyk/apis/{foreign_api['api_id']}").json(),
                             oto.get(f"/api/routes/{foreign_route['id']}").json())  # fmt: skip
            assert foreign_after == foreign_before  # untouched by every write and drift pass
            assert httpx.get(f"{stack.env['TYK_URL']}/{ns}-foreign/x").status_code == 200  # and still served
            after, deleted_in = finish(stack, admin, objs, [ns])
        assert_clean(after)
        assert tyk.get(f"/tyk/apis/{foreign_api['api_id']}").status_code == 200  # Torii's deletes spared it
        assert oto.get(f"/api/routes/{foreign_route['id']}").status_code == 200
        tyk.delete(f"/tyk/apis/{foreign_api['api_id']}")
        tyk.get("/tyk/reload/", params={"block": "true"})
        oto.delete(f"/api/routes/{foreign_route['id']}")
    report("hand edits and foreign objects", objects=len(objs), faults=faults, foreign=2, converge_s=seconds,
           delete_s=deleted_in, **tally(found, after))  # fmt: skip
