"""Kubernetes API access outside kopf's own patching (Secrets).

The official client is synchronous: every call runs in a worker thread so it never blocks kopf's event loop.
"""

from __future__ import annotations

import asyncio
import base64
from functools import cache

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from torii.gateways.errors import ConfigurationError
from torii.settings import SecretKeyRef


@cache
def api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    if not client.Configuration.get_default_copy().verify_ssl:
        # The kubeconfig itself opted out of TLS verification (local stacks): say so once, not per request.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return client.ApiClient()


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


async def read_secret_key(ref: SecretKeyRef) -> str:
    """The decoded value of one key of a Secret; a ConfigurationError naming the Secret (never the value)."""

    def read() -> str:
        try:
            secret = core().read_namespaced_secret(ref.name, ref.namespace)
        except ApiException as exc:
            raise ConfigurationError(
                f"cannot read Secret {ref.namespace}/{ref.name}: HTTP {exc.status} {exc.reason}"
            ) from None
        data = secret.data or {}
        if ref.key not in data:
            raise ConfigurationError(f"Secret {ref.namespace}/{ref.name} has no key {ref.key!r}")
        return base64.b64decode(data[ref.key]).decode()

    return await asyncio.to_thread(read)
