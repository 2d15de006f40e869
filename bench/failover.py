#!/usr/bin/env python3
"""Benchmark: failover of two replicas (hot standby through kopf peering) in the middle of a burst.

Two `torii run` processes peer on one KopfPeering (priorities 200 and 100: the first is active). N GatewayAPIs
are applied at once; when a quarter of them are Ready the active replica is killed (SIGKILL: no goodbye) and one
of the APIs is changed at once. Prints the time from the kill until the gateway serves that change (the standby
took over), the time until all N are Ready, and an audit of the gateway: exactly one API per object (no
duplicates, none missing, each listen path once), every one served; and the standby's peak RSS.

    source .stack/env && .venv/bin/python bench/failover.py --count 1000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import urllib3
import yaml
from kubernetes import client, config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from gatewayapi import peak_rss_mib, through_gateway_response  # noqa: E402
from support.operator import running_operator  # noqa: E402
from support.stack import Stack, read_env_file  # noqa: E402
from support.upstream import upstream  # noqa: E402
from support.world import GROUP, VERSION  # noqa: E402

PLURAL = "gatewayapis"
PEERING = "torii-failover"


def ready_names(custom: client.CustomObjectsApi, ns: str) -> set[str]:
    return {
        i["metadata"]["name"] for i in custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
        if any(c["type"] == "Ready" and c["status"] == "True" for c in (i.get("status") or {}).get("conditions", []))
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--kill-at", type=float, default=0.25, help="kill the active replica at this share Ready")
    args = parser.parse_args()
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    env = read_env_file(Path(os.environ.get("TORII_STACK_DIR", ROOT / ".stack")) / "env")
    if "TYK_URL" not in env:
        print("tyk is not running")
        return 2
    stack = Stack(env, started_here=False)
    os.environ.update(env)
    for path in (ROOT / "crds", ROOT / "helm" / "torii" / "crds" / "kopf-peering.yaml"):
        subprocess.run(["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(path)],
                       check=True, capture_output=True)  # fmt: skip
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    ns = f"failover-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    custom.create_namespaced_custom_object("kopf.dev", "v1", ns, "kopfpeerings", {
        "apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}})  # fmt: skip
    ref = {"namespace": "torii-system", "name": "torii-failover"}
    gateways = [{"name": "tyk", "type": "tyk", "url": env["TYK_URL"], "insecureHttp": True,
                 "secretRef": {**ref, "key": "s"}}]  # fmt: skip
    common = {"gateways": gateways, "namespaces": [ns], "secret_name": "torii-failover", "drift_interval": 30.0}
    with (
        tempfile.TemporaryDirectory() as tmp,
        upstream("bench") as up,
        upstream("changed") as changed,
        running_operator(stack, api, Path(tmp) / "a", secret_data={"s": env["TYK_SECRET"]},
                         peering=(PEERING, 200), **common) as active,
        running_operator(stack, api, Path(tmp) / "b", peering=(PEERING, 100), **common) as standby,
    ):  # fmt: skip
        docs = [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "GatewayAPI", "metadata": {"name": f"api-{i:04d}"},
                 "spec": {"gateway": "tyk", "listenPath": f"/{ns}/api-{i:04d}/", "upstream": {"url": up.url}}}
                for i in range(args.count)]  # fmt: skip
        manifest = Path(tmp) / "apis.yaml"
        manifest.write_text(yaml.safe_dump_all(docs))  # kubectl reads a file starting with { as one JSON
        start = time.monotonic()
        apply = subprocess.Popen(["kubectl", "apply", "-n", ns, "-f", str(manifest)], stdout=subprocess.DEVNULL)
        while len(ready := ready_names(custom, ns)) < args.count * args.kill_at:
            time.sleep(0.2)
        active.process.kill()  # SIGKILL, with the apply still going: no peering goodbye, no cleanup
        killed = time.monotonic()
        active.process.wait()
        if apply.wait() != 0:
            raise SystemExit("kubectl apply failed")
        applied = time.monotonic() - start
        print(f"active replica killed {killed - start:.1f}s after the apply began, {len(ready)} of {args.count} "
              "Ready")  # fmt: skip
        # A change made right after the kill: served once the standby has taken over.
        victim = "api-0000"
        custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, victim,
                                              {"spec": {"upstream": {"url": changed.url}}})  # fmt: skip
        while True:
            r = through_gateway_response("tyk", env, f"/{ns}/{victim}/")
            if r.status_code == 200 and r.json().get("upstream") == "changed":
                break
            time.sleep(0.1)
        takeover = time.monotonic() - killed
        deadline = time.monotonic() + 900
        while len(ready := ready_names(custom, ns)) < args.count and time.monotonic() < deadline:
            time.sleep(1.0)
        all_ready = time.monotonic() - start
        # The audit, from the gateway itself: one API per object, each listen path once, every one served.
        listed = httpx.get(f"{env['TYK_URL']}/tyk/apis", headers={"X-Tyk-Authorization": env["TYK_SECRET"]}).json()
        ours = [a for a in listed if str((a.get("proxy") or {}).get("listen_path", "")).startswith(f"/{ns}/")]
        paths = [a["proxy"]["listen_path"] for a in ours]
        wanted = {f"/{ns}/api-{i:04d}/" for i in range(args.count)}
        duplicates, missing = len(paths) - len(set(paths)), len(wanted - set(paths))
        unserved = sum(through_gateway_response("tyk", env, p).status_code != 200 for p in wanted)
        print(f"objects: {args.count}; applied in {applied:.1f}s; all Ready after {all_ready:.1f}s ({len(ready)})")
        print(f"standby serving a change {takeover:.1f}s after the active replica was killed")
        print(f"audit: {len(ours)} APIs on the gateway, {duplicates} duplicates, {missing} missing, "
              f"{unserved} not served")  # fmt: skip
        print(f"standby peak RSS: {peak_rss_mib(standby.process.pid):.0f} MiB")
        custom.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
        while custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]:
            time.sleep(1.0)
    core.delete_namespace(ns)
    return 0 if not (duplicates or missing or unserved) else 1


if __name__ == "__main__":
    sys.exit(main())
