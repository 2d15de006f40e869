"""Kubernetes clients for tests (the official sync client; tests are not an event loop)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


def api_client(kubeconfig: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig)


def status_of(call: object, *args: object, **kwargs: object) -> int:
    """HTTP status of a client call: 200 when it succeeds, else the ApiException's status."""
    try:
        call(*args, **kwargs)  # type: ignore[operator]
    except ApiException as exc:
        return int(exc.status)
    return 200


def gone(call: object, *args: object, **kwargs: object) -> bool:
    return status_of(call, *args, **kwargs) == 404


@contextmanager
def namespace(api: client.ApiClient, prefix: str = "t") -> Iterator[str]:
    """A fresh namespace, deleted afterwards (without waiting for it to finish terminating)."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def kubectl(*args: str, stdin: str | None = None, kubeconfig: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl (as users do) and return the completed process."""
    env = dict(os.environ)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    return subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)


def install_crds(kubeconfig: str) -> None:
    done = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR), kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr
    done = kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(CRD_DIR), kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr
