"""Torii's Secret layer against the real apiserver: ownership, replace semantics, optimistic concurrency."""

from __future__ import annotations

import base64

import pytest
from kubernetes import client

from support.stack import Stack
from torii import kube
from torii.kube import ConflictError, KubeSecrets, Owner


async def test_generated_secret_lifecycle(crds: Stack, admin: client.ApiClient, ns: str) -> None:
    kube.use(None)  # a client of this test's event loop
    owner_cm = client.CoreV1Api(admin).create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    owner = Owner("v1", "ConfigMap", "owner", owner_cm.metadata.uid)
    store = KubeSecrets()
    labels = {"app": "checkout", "argocd.argoproj.io/instance": "shop"}
    annotations = {"argocd.argoproj.io/tracking-id": "x", "note": "y"}
    version = await store.write(ns, "cred", owner, {"key": "k1", "previousKey": "k0"}, labels=labels,
                                annotations=annotations, create=True)  # fmt: skip
    view = await store.get(ns, "cred")
    assert view is not None and view.owned_by(owner) and view.resource_version == version
    assert view.data == {"key": "k1", "previousKey": "k0"}
    assert view.labels == {"app": "checkout", "app.kubernetes.io/managed-by": "torii"}  # Argo markers never copied
    assert view.annotations == {"note": "y"}

    # Replace, not merge: a dropped key is gone.
    await store.write(ns, "cred", owner, {"key": "k1"}, labels={}, annotations={}, create=False,
                      resource_version=version)  # fmt: skip
    raw = client.CoreV1Api(admin).read_namespaced_secret("cred", ns)
    assert {k: base64.b64decode(v).decode() for k, v in raw.data.items()} == {"key": "k1"}
    assert raw.metadata.owner_references[0].uid == owner_cm.metadata.uid

    # Optimistic concurrency: a write based on an old read fails instead of clobbering.
    with pytest.raises(ConflictError):
        await store.write(ns, "cred", owner, {"key": "k2"}, labels={}, annotations={}, create=False,
                          resource_version=version)  # fmt: skip
    # Create never replaces: an existing name (someone else's, appeared meanwhile) is a conflict to retry.
    with pytest.raises(ConflictError):
        await store.write(ns, "cred", owner, {"key": "x"}, labels={}, annotations={}, create=True)
