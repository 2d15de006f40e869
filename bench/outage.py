#!/usr/bin/env python3
"""Benchmark: what a gateway outage costs the operator while every object waits for it.

Tyk is stopped and N GatewayAPIs are applied while it is away: for the length of the outage the operator retries
them all. Measured: the operator's RSS during the outage, the writes to the objects during it (watch events:
status and kopf's own progress records), and, once Tyk is back, the time until every object is Ready (served).

    source .stack/env && .venv/bin/python bench/outage.py --count 1000 --outage 60
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, watch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from gatewayapi import bench_namespace, delete_through_operator, peak_rss_mib, running_stack  # noqa: E402
from support.metrics import by_label, scrape  # noqa: E402
from support.operator import free_port, running_operator  # noqa: E402
from support.upstream import upstream  # noqa: E402
from support.world import GROUP, VERSION  # noqa: E402

PLURAL = "gatewayapis"


def ready_with(item: dict[str, Any], generation: int) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" and c.get("observedGeneration") == generation
               for c in item.get("status", {}).get("conditions", []))  # fmt: skip


def wait_all(
    custom: client.CustomObjectsApi, ns: str, count: int, generation: int, timeout: float, progress: bool = False
) -> float:
    start, last = time.monotonic(), -1
    while time.monotonic() - start < timeout:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
        ready = sum(ready_with(i, generation) for i in items)
        if progress and ready != last:
            print(f"  {time.monotonic() - start:6.1f}s {ready} Ready", file=sys.stderr)
            last = ready
        if ready == count:
            return time.monotonic() - start
        time.sleep(1.0)
    raise SystemExit(f"not all {count} Ready at generation {generation} within {timeout:.0f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds Tyk stays down")
    parser.add_argument("--log", type=Path, help="keep the operator's log here")
    parser.add_argument("--progress", action="store_true", help="print the Ready count as it changes")
    args = parser.parse_args()
    env, stack = running_stack()
    api, core, custom, ns = bench_namespace(env, "outage")
    ref = {"namespace": "torii-system", "name": "torii-bench"}
    gateways = [{"name": "tyk", "type": "tyk", "url": env["TYK_URL"], "insecureHttp": True,
                 "secretRef": {**ref, "key": "s"}}]  # fmt: skip
    stack_py = [sys.executable, str(ROOT / "hack" / "stack.py")]
    port = free_port()
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            upstream("outage") as up,
            running_operator(stack, api, Path(tmp), gateways=gateways, secret_data={"s": env["TYK_SECRET"]},
                             namespaces=[ns], secret_name="torii-bench", drift_interval=60.0,
                             metrics_port=port) as op,
        ):  # fmt: skip

            def create(name: str) -> None:
                spec = {"gateway": "tyk", "listenPath": f"/{ns}/{name}/", "upstream": {"url": up.url}}
                body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GatewayAPI", "metadata": {"name": name},
                        "spec": spec}  # fmt: skip
                custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)

            create("warm")  # served before the outage: the drift pass finds the gateway gone
            wait_all(custom, ns, 1, 1, 120)
            before = peak_rss_mib(op.process.pid)

            writes, peak = 0, 0.0
            counting, stop = threading.Event(), threading.Event()

            def count_writes() -> None:
                nonlocal writes
                rv = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["metadata"]["resourceVersion"]
                listing = custom.list_namespaced_custom_object
                seconds = int(args.outage) + 600
                for event in watch.Watch().stream(listing, GROUP, VERSION, ns, PLURAL, resource_version=rv,
                                                  timeout_seconds=seconds):  # fmt: skip
                    if stop.is_set():
                        break
                    if counting.is_set() and event["type"] == "MODIFIED":
                        writes += 1

            def sample_rss() -> None:
                nonlocal peak
                while not stop.is_set():
                    if counting.is_set():
                        peak = max(peak, peak_rss_mib(op.process.pid, "VmRSS"))
                    time.sleep(0.2)

            threads = [
                threading.Thread(target=count_writes, daemon=True),
                threading.Thread(target=sample_rss, daemon=True),
            ]
            for thread in threads:
                thread.start()
            subprocess.run([*stack_py, "stop", "tyk"], check=True, capture_output=True)
            down = time.monotonic()
            counting.set()
            for i in range(args.count):  # applied while the gateway is away
                create(f"o-{i:04d}")
            created = time.monotonic() - down
            time.sleep(max(0.0, down + args.outage - time.monotonic()))
            counting.clear()
            counted = time.monotonic() - down
            started = time.monotonic()
            subprocess.run([*stack_py, "start", "tyk"], check=True, capture_output=True)
            print(f"  tyk started in {time.monotonic() - started:.1f}s", file=sys.stderr)
            wait_all(custom, ns, args.count + 1, 1, 900, args.progress)
            recovered = time.monotonic() - started
            metrics = scrape(port)
            calls = by_label(metrics, "torii_gateway_calls_total", "operation")
            reconciles = by_label(metrics, "torii_reconciles_total", "cause")
            stop.set()
            if args.log:
                args.log.write_text(op.log())
            print(
                f"outage {counted:.0f}s, {args.count} GatewayAPIs created in its first {created:.1f}s: "
                f"{writes} writes to them during it ({writes / args.count:.1f} per object, creation's own "
                f"included); operator RSS during it up to {peak:.0f} MiB (peak before: {before:.0f} MiB)"
            )
            print(
                f"Tyk back: all Ready {recovered:.1f}s after its start; operator peak RSS "
                f"{peak_rss_mib(op.process.pid):.0f} MiB"
            )
            print("gateway calls: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(calls.items())))
            print("reconciles by cause: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(reconciles.items())))
            delete_through_operator(custom, ns)
    finally:
        core.delete_namespace(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
