#!/usr/bin/env python3
"""Benchmark: adopt N APIs and N keys made by hand on a gateway of the local stack.

Creates N key-protected APIs and N keys through the admin API, starts a client loop with the original keys
(a sample of 50 of them), then measures `torii import`, `kubectl apply` of its manifests, the time until all
are Ready, the admin calls, writes and Tyk reloads of the adoption, the writes of the drift passes after it, and
the client loop's failed requests. Finally deletes everything through the operator.

    source .stack/env && .venv/bin/python bench/adoption.py --count 1000 [--gateway otoroshi]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import urllib3
from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.metrics import counter, writes  # noqa: E402
from support.operator import free_port, running_operator, stack_gateways, torii_import  # noqa: E402
from support.stack import Stack, read_env_file  # noqa: E402
from support.traffic import Traffic  # noqa: E402
from support.upstream import upstream  # noqa: E402
from support.wait import wait_until  # noqa: E402

SAMPLE = 50


async def create_tyk(env: dict[str, str], marker: str, count: int, target: str) -> list[tuple[str, dict[str, str]]]:
    """N APIs (org acme) and one key each, as a script would make them; the client requests that use them."""
    async with httpx.AsyncClient(base_url=env["TYK_URL"], headers={"X-Tyk-Authorization": env["TYK_SECRET"]},
                                 timeout=60) as tyk:  # fmt: skip
        limit = asyncio.Semaphore(16)

        async def api(i: int) -> None:
            async with limit:
                await tyk.post("/tyk/apis", json={
                    "api_id": f"{marker}-{i}", "name": f"{marker} api {i}", "org_id": "acme", "active": True,
                    "use_standard_auth": True, "auth": {"auth_header_name": "Authorization"},
                    "proxy": {"listen_path": f"/{marker}/{i}/", "target_url": target, "strip_listen_path": True},
                    "version_data": {"not_versioned": True, "versions": {"Default": {"name": "Default"}}},
                })  # fmt: skip

        await asyncio.gather(*(api(i) for i in range(count)))
        await tyk.get("/tyk/reload/", params={"block": "true"})

        async def key(i: int) -> str:
            async with limit:
                answer = await tyk.post("/tyk/keys/create", json={
                    "org_id": "acme", "alias": f"{marker}-key-{i}", "rate": 100000, "per": 60,
                    "access_rights": {f"{marker}-{i}": {"api_id": f"{marker}-{i}", "versions": ["Default"]}},
                })  # fmt: skip
            return str(answer.json()["key"])

        keys = await asyncio.gather(*(key(i) for i in range(count)))
    return [(f"{env['TYK_URL']}/{marker}/{i}/", {"Authorization": keys[i]}) for i in range(count)]


async def create_otoroshi(env: dict[str, str], marker: str, count: int, port: int) -> list[tuple[str, dict[str, str]]]:
    auth = (env["OTOROSHI_CLIENT_ID"], env["OTOROSHI_CLIENT_SECRET"])
    async with httpx.AsyncClient(base_url=env["OTOROSHI_URL"], auth=auth, headers={"Host": env["OTOROSHI_API_HOST"]},
                                 timeout=60) as oto:  # fmt: skip
        template = (await oto.get("/api/routes/_template")).json()
        limit = asyncio.Semaphore(16)
        host = f"api.{env['OTOROSHI_DOMAIN']}"

        async def service(i: int) -> tuple[str, str]:
            async with limit:
                await oto.post("/api/routes", json={
                    **template, "id": f"{marker}-{i}", "name": f"{marker} api {i}",
                    "frontend": {**template["frontend"], "domains": [f"{host}/{marker}/{i}/"]},
                    "backend": {**template["backend"], "root": "/",
                                "targets": [{"hostname": "127.0.0.1", "port": port, "tls": False}]},
                    "plugins": [*template["plugins"], {"plugin": "cp:otoroshi.next.plugins.ApikeyCalls"}],
                })  # fmt: skip
                key = (await oto.post(f"/api/routes/{marker}-{i}/apikeys",
                                      json={"clientName": f"{marker}-key-{i}"})).json()  # fmt: skip
            return key["clientId"], key["clientSecret"]

        creds = await asyncio.gather(*(service(i) for i in range(count)))
    host = f"api.{env['OTOROSHI_DOMAIN']}"
    return [
        (f"{env['OTOROSHI_URL']}/{marker}/{i}/",
         {"Host": host, "Authorization": "Basic " + base64.b64encode(f"{c}:{s}".encode()).decode()})
        for i, (c, s) in enumerate(creds)
    ]  # fmt: skip


def count_ready(custom: client.CustomObjectsApi, ns: str) -> tuple[int, int]:
    """(GatewayAPIs, GatewayKeys) Ready at their current generation."""
    counts = []
    for plural in ("gatewayapis", "gatewaykeys"):
        items = custom.list_namespaced_custom_object("torii.dev", "v1alpha1", ns, plural)["items"]
        counts.append(sum(
            any(c["type"] == "Ready" and c["status"] == "True"
                and c.get("observedGeneration") == i["metadata"]["generation"]
                for c in i.get("status", {}).get("conditions", []))
            for i in items
        ))  # fmt: skip
    return counts[0], counts[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--gateway", choices=("tyk", "otoroshi"), default="tyk")
    parser.add_argument("--drift-interval", type=float, default=60.0, help="the production default")
    args = parser.parse_args()
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    env = read_env_file(ROOT / ".stack" / "env")
    os.environ.update(env)
    stack = Stack(env, started_here=False)
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    ns = f"bench-adopt-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    marker = f"adopt-{uuid.uuid4().hex[:6]}"
    gateways, secret = stack_gateways(stack, "torii-bench-adoption")
    port = free_port()
    n = args.count
    with tempfile.TemporaryDirectory() as tmp, upstream("bench-adopt") as up, running_operator(
        stack, api, Path(tmp), gateways=gateways, secret_data=secret, namespaces=[ns],
        secret_name="torii-bench-adoption", drift_interval=args.drift_interval, metrics_port=port,
    ) as op:  # fmt: skip
        scrape = lambda: httpx.get(f"http://127.0.0.1:{port}/metrics").text  # noqa: E731
        started = time.monotonic()
        if args.gateway == "tyk":
            targets = asyncio.run(create_tyk(env, marker, n, up.url))
        else:
            targets = asyncio.run(create_otoroshi(env, marker, n, up.port))
        print(f"created {n} APIs + {n} keys on {args.gateway} in {time.monotonic() - started:.1f} s (admin API)")
        sample = targets[:: max(1, n // SAMPLE)][:SAMPLE]
        # Otoroshi serves admin writes at its next state sync: start once the hand-made objects serve.
        wait_until(lambda: all(httpx.get(u, headers=h).status_code == 200 for u, h in sample), timeout=120,
                   what="the hand-made objects serving")  # fmt: skip
        traffic = Traffic(sample).start()
        out = Path(tmp) / "imported"
        t0 = time.monotonic()
        said = torii_import(op, "--gateway", args.gateway, "--namespace", ns, "-o", str(out))
        import_s = time.monotonic() - t0
        for path in out.glob("*.yaml"):
            if marker not in path.name:
                path.unlink()  # the gateway is shared with other objects: adopt only this run's
        files = len(list(out.glob("*.yaml")))
        before = scrape()
        t0 = time.monotonic()
        subprocess.run(["kubectl", "apply", "-f", str(out)], check=True, capture_output=True)
        apply_s = time.monotonic() - t0
        shown = 0.0
        while sum(ready := count_ready(custom, ns)) < 2 * n:
            if time.monotonic() - shown > 10:
                shown = time.monotonic()
                print(f"  {shown - t0:5.0f} s: {ready[0]} APIs and {ready[1]} keys Ready of {n} each", flush=True)
            time.sleep(0.5)
        ready_s = time.monotonic() - t0
        after = scrape()
        calls = counter(after, "torii_gateway_calls_total") - counter(before, "torii_gateway_calls_total")
        written = writes(after) - writes(before)
        reloads = counter(after, "torii_tyk_reloads_total") - counter(before, "torii_tyk_reloads_total")
        passes = counter(after, "torii_reconciles_total", cause="drift")
        while counter(scrape(), "torii_reconciles_total", cause="drift") < passes + 4 * n:
            time.sleep(0.5)
        drift_writes = writes(scrape()) - writes(after)
        traffic.stop()
        t0 = time.monotonic()
        for plural in ("gatewaykeys", "gatewayapis"):
            custom.delete_collection_namespaced_custom_object("torii.dev", "v1alpha1", ns, plural)
        while any(custom.list_namespaced_custom_object("torii.dev", "v1alpha1", ns, p)["items"]
                  for p in ("gatewaykeys", "gatewayapis")):  # fmt: skip
            time.sleep(0.5)
        delete_s = time.monotonic() - t0
    core.delete_namespace(ns)
    skipped = said.count("not imported: ")
    print(
        f"| {args.gateway} | {n} + {n} | import {import_s:.1f} s ({files} files, {skipped} other objects listed as "
        f"not imported) | kubectl apply {apply_s:.1f} s | all Ready {ready_s:.1f} s | adoption: {calls:.0f} admin "
        f"calls, {written:.0f} writes, {reloads:.0f} reloads | two drift passes: {drift_writes:.0f} writes | "
        f"client loop: {traffic.total} requests, {len(traffic.failures)} failed | delete {delete_s:.1f} s |"
    )
    if traffic.failures:
        print("failures:", traffic.failures[:10])
    return 1 if traffic.failures else 0


if __name__ == "__main__":
    sys.exit(main())
