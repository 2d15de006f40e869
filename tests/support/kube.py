"""Kubernetes clients for tests (the official sync client; tests are not an event loop)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes import client, config
from kubernetes.client.rest import ApiException


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
