#!/usr/bin/env python3
"""Benchmark: apply N GatewayAPIs on the local stack and measure the operator.

Prints: time until all Ready (and how many are served right then), p50/p95 per-object time to Ready, gateway
admin calls and Tyk reloads made, single-change latency (apply -> served by the new upstream), admin calls and
writes of one in-sync drift pass, operator peak RSS; with --keys K, K GatewayKeys to working Secrets (each
credential tried through the gateway); then the time to delete everything.

    source .stack/env && .venv/bin/python bench/gatewayapi.py --count 200 [--gateway tyk] [--keys 1000]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import urllib3
import yaml
from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.metrics import by_label, counter, writes  # noqa: E402
from support.operator import free_port, running_operator  # noqa: E402
from support.stack import Stack, read_env_file  # noqa: E402
from support.upstream import upstream  # noqa: E402
from support.world import GROUP, VERSION  # noqa: E402

PLURAL = "gatewayapis"


def peak_rss_mib(pid: int, field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


CLIENT = httpx.Client(timeout=10)  # one connection pool for the thousands of checks (not one client each)


def through_gateway_response(
    gateway: str, env: dict[str, str], path: str, headers: dict[str, str] | None = None, node: str | None = None
) -> httpx.Response:
    if gateway == "tyk":
        return CLIENT.get(f"{node or env['TYK_URL']}{path}x", headers=headers or {})
    host = {"Host": f"api.{env['OTOROSHI_DOMAIN']}"}
    return CLIENT.get(f"{env['OTOROSHI_URL']}{path}x", headers={**host, **(headers or {})})


def through_gateway(gateway: str, env: dict[str, str], path: str) -> int:
    return through_gateway_response(gateway, env, path).status_code


def bench_keys(
    args: argparse.Namespace,
    env: dict[str, str],
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    ns: str,
    target: str,
    scrape: Callable[[], str],
) -> None:
    """K GatewayKeys for one key-protected API, until each Secret's credential works through the gateway."""
    api = {"gateway": args.gateway, "listenPath": f"/{ns}/keyed/", "upstream": {"url": target}, "auth": "key"}
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "GatewayAPI", "metadata": {"name": "keyed"}, "spec": api,
    })  # fmt: skip
    while not any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "keyed").get("status", {}).get(
            "conditions", [])
    ):  # fmt: skip
        time.sleep(0.5)

    # The yardstick: `kubectl apply` of K plain Secrets on the same apiserver, in the same run.
    def kubectl_apply(docs: list[dict[str, Any]]) -> float:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(yaml.safe_dump_all(docs))  # kubectl reads a file starting with { as one JSON
            f.flush()
            began = time.monotonic()
            subprocess.run(["kubectl", "apply", "-n", ns, "-f", f.name], check=True, capture_output=True)
            return time.monotonic() - began

    label = {"bench": "plain"}
    plain = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"plain-{i:04d}", "labels": label},
              "stringData": {"key": uuid.uuid4().hex}} for i in range(args.keys)]  # fmt: skip
    secrets_took = kubectl_apply(plain)
    core.delete_collection_namespaced_secret(ns, label_selector="bench=plain")
    keys = [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "GatewayKey", "metadata": {"name": f"key-{i:04d}"},
             "spec": {"gateway": args.gateway, "apis": [{"name": "keyed"}]}} for i in range(args.keys)]  # fmt: skip
    before = scrape()
    start = time.monotonic()
    keys_applied = kubectl_apply(keys)  # all at once, as a release would
    working: set[str] = set()
    deadline = time.monotonic() + 1800
    while len(working) < args.keys and time.monotonic() < deadline:
        for secret in core.list_namespaced_secret(ns, label_selector="app.kubernetes.io/managed-by=torii").items:
            name = secret.metadata.name
            if name in working or not secret.data:
                continue
            data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
            headers = (
                {"Authorization": data["key"]} if args.gateway == "tyk"
                else {"Otoroshi-Client-Id": data["clientId"], "Otoroshi-Client-Secret": data["clientSecret"]}
            )  # fmt: skip
            if through_gateway_response(args.gateway, env, f"/{ns}/keyed/", headers).status_code == 200:
                working.add(name)
        time.sleep(1.0)
    took = time.monotonic() - start
    after = scrape()
    calls = counter(after, "torii_gateway_calls_total") - counter(before, "torii_gateway_calls_total")
    print(f"keys: {len(working)} of {args.keys} Secrets working through the gateway {took:.1f}s after the apply "
          f"began (the apply itself {keys_applied:.1f}s); kubectl apply of {args.keys} plain Secrets: "
          f"{secrets_took:.1f}s, so {took / secrets_took:.1f}x; {calls:.0f} admin calls "
          f"({calls / max(args.keys, 1):.2f} per key)")  # fmt: skip
    ops = by_label(after, "torii_gateway_calls_total", "operation")
    ops0 = by_label(before, "torii_gateway_calls_total", "operation")
    made = {op: n - ops0.get(op, 0.0) for op, n in ops.items() if n - ops0.get(op, 0.0)}
    print("  by operation: " + ", ".join(f"{op} {n:.0f}" for op, n in sorted(made.items(), key=lambda x: -x[1])))
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, "gatewaykeys")
    while custom.list_namespaced_custom_object(GROUP, VERSION, ns, "gatewaykeys")["items"]:
        time.sleep(1.0)


def running_stack() -> tuple[dict[str, str], Stack]:
    """The running local stack (`make stack-up`): its environment, also put into this process's."""
    # The local apiserver's certificate is self-signed (kubeconfig: insecure-skip-tls-verify): one warning per
    # request would bury the figures.
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    env = read_env_file(Path(os.environ.get("TORII_STACK_DIR", ROOT / ".stack")) / "env")
    os.environ.update(env)
    return env, Stack(env, started_here=False)


def bench_namespace(
    env: dict[str, str], prefix: str
) -> tuple[client.ApiClient, client.CoreV1Api, client.CustomObjectsApi, str]:
    """Torii's CRDs applied, apiserver clients, and a fresh namespace for one run."""
    subprocess.run(["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds")],
                   check=True, capture_output=True)  # fmt: skip
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    return api, core, custom, ns


def delete_through_operator(custom: client.CustomObjectsApi, ns: str) -> float:
    """Delete every GatewayAPI of `ns` while the operator runs, so the gateway is left as it was found (APIs left
    behind would slow every later reload, and every later run); the seconds until all are gone."""
    started = time.monotonic()
    while items := custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]:
        if any(not item["metadata"].get("deletionTimestamp") for item in items):
            # (again: with 10,000 objects the apiserver answers 504, and may stop deleting with some left)
            try:
                custom.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
            except client.ApiException as exc:
                if exc.status != 504:
                    raise
        time.sleep(1.0)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--gateway", choices=["tyk", "otoroshi"], default="tyk")
    parser.add_argument("--entity", choices=["routes", "services"], default="routes", help="Otoroshi: what an API is")
    parser.add_argument("--drift-interval", type=float, default=10.0)
    parser.add_argument("--changes", type=int, default=5, help="single changes to time, one after another")
    parser.add_argument("--keys", type=int, default=0, help="also measure this many GatewayKeys")
    parser.add_argument("--tyk-nodes", type=int, default=1, help="Tyk: write to this many of the stack's nodes")
    parser.add_argument("--restart", action="store_true", help="then restart the operator with every object there")
    args = parser.parse_args()
    env, stack = running_stack()
    url_key = "TYK_URL" if args.gateway == "tyk" else "OTOROSHI_URL"
    if url_key not in env:
        print(f"{args.gateway} is not running: {env.get(f'TORII_{args.gateway.upper()}_UNAVAILABLE', 'unknown')}")
        return 2
    api, core, custom, ns = bench_namespace(env, "bench")

    ref = {"namespace": "torii-system", "name": "torii-bench"}
    # Served means served by every node the APIs are written to.
    nodes = env.get("TYK_NODE_URLS", env.get("TYK_URL", "")).split()[: args.tyk_nodes] if args.gateway == "tyk" else []
    if args.gateway == "tyk" and len(nodes) < args.tyk_nodes:
        print(f"the stack runs {len(nodes)} Tyk node(s): TORII_TYK_NODES={args.tyk_nodes} make stack-up")
        return 2
    if args.gateway == "tyk":
        gateways = [{"name": "tyk", "type": "tyk", "url": env["TYK_URL"], "insecureHttp": True,
                     "secretRef": {**ref, "key": "s"}, **({"nodes": nodes} if args.tyk_nodes > 1 else {})}]  # fmt: skip
        secret = {"s": env["TYK_SECRET"]}
    else:
        gateways = [{
            "name": "otoroshi", "type": "otoroshi", "url": env["OTOROSHI_URL"], "insecureHttp": True,
            "apiHost": env["OTOROSHI_API_HOST"],
            "domain": env["OTOROSHI_DOMAIN"], "stateSyncSeconds": float(env.get("OTOROSHI_STATE_SYNC_SECONDS", "10")),
            "clientIdRef": {**ref, "key": "i"}, "clientSecretRef": {**ref, "key": "s"}, "entity": args.entity,
        }]  # fmt: skip
        secret = {"i": env["OTOROSHI_CLIENT_ID"], "s": env["OTOROSHI_CLIENT_SECRET"]}
    port = free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        upstream("bench") as up,
        upstream("changed") as changed,
        running_operator(stack, api, Path(tmp), gateways=gateways, secret_data=secret, namespaces=[ns],
                         secret_name="torii-bench", drift_interval=args.drift_interval, metrics_port=port) as op,
    ):  # fmt: skip
        scrape = lambda: httpx.get(f"http://127.0.0.1:{port}/metrics").text  # noqa: E731
        before = scrape()
        created: dict[str, float] = {}
        ready_at: dict[str, float] = {}
        start = time.monotonic()
        for i in range(args.count):
            name = f"bench-{i:04d}"
            spec = {"gateway": args.gateway, "listenPath": f"/{ns}/{name}/", "upstream": {"url": up.url}}
            body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GatewayAPI", "metadata": {"name": name}, "spec": spec}
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
            created[name] = time.monotonic()
        applied = time.monotonic() - start
        deadline = time.monotonic() + 900
        while len(ready_at) < args.count and time.monotonic() < deadline:
            for item in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]:
                name = item["metadata"]["name"]
                conds = item.get("status", {}).get("conditions", [])
                if name not in ready_at and any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                    ready_at[name] = time.monotonic()
            time.sleep(1.0)
        all_ready = time.monotonic() - start
        after_ready = scrape()
        # Ready means serving: every listen path answers through the gateway now.
        answers = {
            (n, node): through_gateway_response(args.gateway, env, f"/{ns}/{n}/", node=node)
            for n in ready_at for node in (nodes or [None])
        }  # fmt: skip
        served = sum(all(answers[(n, node)].status_code == 200 for node in (nodes or [None])) for n in ready_at)
        for n, r in [(n, r) for n, r in answers.items() if r.status_code != 200][:5]:
            print(f"  not served right after Ready: {n}: HTTP {r.status_code} {r.text[:120]!r}")
        # One full drift pass with everything in sync (awaited on the reconcile counter), then count writes.
        passes = counter(after_ready, "torii_reconciles_total", cause="drift")
        while counter(scrape(), "torii_reconciles_total", cause="drift") < passes + args.count:
            time.sleep(1.0)
        after_drift = scrape()
        steady_rss = peak_rss_mib(op.process.pid, "VmRSS")
        drift_calls = counter(after_drift, "torii_gateway_calls_total") - counter(
            after_ready, "torii_gateway_calls_total"
        )

        # Single changes with everything loaded: apply -> the gateway answers from the new upstream.
        upstreams: dict[str, str] = {}  # what each changed object points at now (the others: up)

        def single_changes(first: int) -> list[float]:
            latencies = []
            for i in range(first, first + min(args.changes, args.count)):
                name = f"bench-{i % args.count:04d}"
                # Always a real change: to the other upstream than the object's current one.
                target = up.url if upstreams.get(name, up.url) == changed.url else changed.url
                upstreams[name] = target
                started = time.monotonic()
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURAL, name, {"spec": {"upstream": {"url": target}}}
                )
                want = "changed" if target == changed.url else "bench"
                for node in nodes or [None]:  # served by every node
                    while True:
                        r = through_gateway_response(args.gateway, env, f"/{ns}/{name}/", node=node)
                        if r.status_code == 200 and r.json().get("upstream") == want:
                            break
                        time.sleep(0.05)
                latencies.append(time.monotonic() - started)
            return latencies

        latencies = single_changes(0)
        per_object = sorted(ready_at[n] - created[n] for n in ready_at)
        where = f" ({len(nodes)} nodes)" if len(nodes) > 1 else ""
        print(f"objects: {args.count} on {args.gateway}{where}; Ready: {len(ready_at)}")
        print(f"applied in {applied:.1f}s; all Ready after {all_ready:.1f}s; served right after: {served}")
        if per_object:
            p95 = per_object[max(0, int(len(per_object) * 0.95) - 1)]
            print(f"time to Ready per object: p50 {statistics.median(per_object):.2f}s, p95 {p95:.2f}s")
        calls = counter(after_ready, "torii_gateway_calls_total") - counter(before, "torii_gateway_calls_total")
        reloads = counter(after_ready, "torii_tyk_reloads_total") - counter(before, "torii_tyk_reloads_total")
        per_node = (
            f" ({calls / len(nodes):.0f} calls, {reloads / len(nodes):.0f} reloads per node)" if len(nodes) > 1 else ""
        )
        handed_off = counter(after_ready, "torii_changes_handed_off_total")
        print(f"gateway admin calls: {calls:.0f}; Tyk reloads: {reloads:.0f}{per_node}; changes handed off by kopf "
              f"(beyond maxHeldChanges): {handed_off:.0f}")  # fmt: skip
        print(f"operator peak RSS: {peak_rss_mib(op.process.pid):.0f} MiB (now {steady_rss:.0f} MiB)")
        print(
            f"in-sync drift pass: {drift_calls:.0f} admin calls, {writes(after_drift) - writes(after_ready):.0f} writes"
        )
        if latencies:
            print(f"single change, apply -> served: p50 {statistics.median(latencies):.2f}s, max {max(latencies):.2f}s")
        if args.keys:
            bench_keys(args, env, custom, core, ns, up.url, scrape)

        def delete_all() -> None:
            print(f"all deleted after {delete_through_operator(custom, ns):.1f}s")

        if not args.restart:
            delete_all()
        else:
            # A cold start: the operator stopped, a new one started with every object already there.
            op.process.terminate()
            op.process.wait(timeout=60)
            port2 = free_port()
            scrape2 = lambda: httpx.get(f"http://127.0.0.1:{port2}/metrics").text  # noqa: E731
            started = time.monotonic()
            with running_operator(stack, api, Path(tmp) / "restarted", gateways=gateways, secret_data=secret,
                                  namespaces=[ns], secret_name="torii-bench", drift_interval=args.drift_interval,
                                  metrics_port=port2) as op2:  # fmt: skip
                while counter(scrape2(), "torii_reconciles_total", cause="resume") < args.count:
                    time.sleep(0.5)
                resumed = time.monotonic() - started
                after_resume = scrape2()
                print(
                    f"cold restart with {args.count} objects: all resumed {resumed:.1f}s after the start; "
                    f"{counter(after_resume, 'torii_gateway_calls_total'):.0f} admin calls, "
                    f"{writes(after_resume):.0f} writes; peak RSS {peak_rss_mib(op2.process.pid):.0f} MiB"
                )
                again = single_changes(args.changes)
                p50 = statistics.median(again)
                print(f"single change after the restart: p50 {p50:.2f}s, max {max(again):.2f}s")
                delete_all()
    core.delete_namespace(ns)
    return 0 if len(ready_at) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
