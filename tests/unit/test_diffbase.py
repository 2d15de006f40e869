"""kopf's last-handled configuration is a digest of the spec (Torii only asks whether the spec changed)."""

from __future__ import annotations

import kopf

from torii.operator import DigestDiffBaseStorage


def body(spec: dict[str, object]) -> kopf.Body:
    return kopf.Body({"apiVersion": "torii.dev/v1alpha1", "kind": "GatewayAPI",
                      "metadata": {"name": "a", "namespace": "n", "annotations": {}}, "spec": spec})  # fmt: skip


def test_the_stored_essence_is_a_small_digest_that_changes_with_the_spec() -> None:
    storage = DigestDiffBaseStorage(prefix="torii.dev", key="last-handled-configuration")
    huge = {"listenPath": "/a/", "tyk": {"description": "x" * 300_000}}
    essence = storage.build(body=body(huge))
    assert set(essence["spec"]) == {"sha256"} and len(str(essence)) < 500  # whatever the spec's size
    same = storage.build(body=body(dict(huge)))
    other = storage.build(body=body({**huge, "listenPath": "/b/"}))
    assert essence == same and essence != other
