"""tyk-operator v0.18.0 (the Go operator most Tyk users know) as a local process, for the side-by-side benchmark
and the migration test. Built by hack/build-tyk-operator.sh (cached by version); `hack/stack.py up` builds it and
writes its binary and CRD directory into `.stack/env`."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from support.operator import free_port

GROUP, VERSION, PLURAL = "tyk.tyk.io", "v1alpha1", "apidefinitions"
FINALIZER = "finalizers.tyk.io/apidefinition"  # its pkg/keys/keys.go


def api_definition(name: str, ns: str, target: str, listen_path: str | None = None) -> dict[str, Any]:
    """An ApiDefinition as its documentation shows them: a classic API definition in the CR's spec."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ApiDefinition", "metadata": {"name": name, "namespace": ns},
        "spec": {
            "name": name, "use_keyless": True, "protocol": "http", "active": True,
            "proxy": {"target_url": target, "listen_path": listen_path or f"/{ns}/{name}/", "strip_listen_path": True},
            "version_data": {"default_version": "Default", "not_versioned": True,
                             "versions": {"Default": {"name": "Default"}}},
        },
    }  # fmt: skip


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.2)


@contextmanager
def run_tyk_operator(
    binary: str, env: dict[str, str], admin_url: str, ns: str, tmp: Path, *, org: str = "torii"
) -> Iterator[subprocess.Popen[bytes]]:
    """tyk-operator in CE mode (the Tyk Gateway's own admin API), watching `ns`, until the block ends."""
    probe = free_port()
    conf = tmp / "manager.yaml"
    conf.write_text(yaml.safe_dump({
        "apiVersion": "controller-runtime.sigs.k8s.io/v1alpha1", "kind": "ControllerManagerConfig",
        "health": {"healthProbeBindAddress": f"127.0.0.1:{probe}"}, "metrics": {"bindAddress": "0"},
        "webhook": {"port": free_port()}, "leaderElection": {"leaderElect": False},
    }))  # fmt: skip
    proc_env = {**os.environ, "TYK_MODE": "ce", "TYK_URL": admin_url, "TYK_AUTH": env["TYK_SECRET"],
                "TYK_ORG": org, "WATCH_NAMESPACE": ns, "ENABLE_WEBHOOKS": "false",
                "KUBECONFIG": env["KUBECONFIG"]}  # fmt: skip
    with open(tmp / "tyk-operator.log", "wb") as log:
        proc = subprocess.Popen([binary, "--config", str(conf)], env=proc_env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{probe}/readyz", proc, tmp / "tyk-operator.log", "tyk-operator")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
