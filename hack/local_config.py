#!/usr/bin/env python3
"""Operator configuration for the running local stack: `.stack/torii.yaml` + the credentials Secret.

Gateways are named `tyk` and `otoroshi` (`tyk` the default), as the examples expect. A gateway the stack could
not start is left out, with a warning: objects naming it get Ready=False/GatewayNotConfigured.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / ".stack"
NAMESPACE = "torii-system"
SECRET = "torii-gateways"


def read_env() -> dict[str, str]:
    env = {}
    for line in (STACK / "env").read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[7:].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def main() -> int:
    env = read_env()
    gateways: list[dict[str, object]] = []
    secret: dict[str, str] = {}
    ref = {"namespace": NAMESPACE, "name": SECRET}
    if "TYK_URL" in env:
        tyk_ref = {**ref, "key": "tyk-secret"}
        # The local stack's admin APIs are plain http on loopback: accepted explicitly (insecureHttp).
        gateways.append(
            {"name": "tyk", "type": "tyk", "url": env["TYK_URL"], "insecureHttp": True, "secretRef": tyk_ref}
        )
        secret["tyk-secret"] = env["TYK_SECRET"]
    else:
        print(f"[local-config] WARNING tyk not configured: {env.get('TORII_TYK_UNAVAILABLE', 'not running')}")
    if "OTOROSHI_URL" in env:
        gateways.append({
            "name": "otoroshi", "type": "otoroshi", "url": env["OTOROSHI_URL"], "insecureHttp": True,
            "apiHost": env["OTOROSHI_API_HOST"], "domain": env["OTOROSHI_DOMAIN"], "subdomain": "api",
            "stateSyncSeconds": float(env["OTOROSHI_STATE_SYNC_SECONDS"]),
            "clientIdRef": {**ref, "key": "otoroshi-client-id"},
            "clientSecretRef": {**ref, "key": "otoroshi-client-secret"},
        })  # fmt: skip
        secret["otoroshi-client-id"] = env["OTOROSHI_CLIENT_ID"]
        secret["otoroshi-client-secret"] = env["OTOROSHI_CLIENT_SECRET"]
    else:
        print(f"[local-config] WARNING otoroshi not configured: {env.get('TORII_OTOROSHI_UNAVAILABLE', 'not running')}")

    config = {"defaultGateway": "tyk" if "TYK_URL" in env else None, "gateways": gateways}
    config = {k: v for k, v in config.items() if v is not None}
    (STACK / "torii.yaml").write_text(json.dumps(config, indent=2) + "\n")  # JSON is YAML

    manifests = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET, "namespace": NAMESPACE},
             "stringData": secret},
        ],
    }  # fmt: skip
    # Keep HOME: without it kubectl writes its discovery cache into the working directory.
    kube_env = {**os.environ, "KUBECONFIG": env["KUBECONFIG"]}
    done = subprocess.run(
        ["kubectl", "apply", "-f", "-"], input=json.dumps(manifests), text=True, capture_output=True, env=kube_env
    )
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return done.returncode
    print(f"[local-config] wrote {STACK / 'torii.yaml'} ({', '.join(g['name'] for g in gateways) or 'no gateways'})")  # type: ignore[misc]
    return 0


if __name__ == "__main__":
    sys.exit(main())
