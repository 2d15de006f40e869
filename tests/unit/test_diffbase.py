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


def test_labels_and_annotations_are_no_change_and_the_body_is_never_copied() -> None:
    storage = DigestDiffBaseStorage(prefix="torii.dev", key="last-handled-configuration")
    plain = body({"listenPath": "/a/"})
    labelled = kopf.Body({**plain, "metadata": {**plain["metadata"], "labels": {"team": "shop"}}})
    assert storage.build(body=plain) == storage.build(body=labelled)  # only the spec counts
    assert "metadata" not in storage.build(body=labelled)


async def test_watch_events_reach_kopf_without_managed_fields_or_last_applied() -> None:
    from kopf._cogs.clients import watching

    from torii import intake

    event = {"type": "ADDED", "object": {"metadata": {
        "name": "a", "finalizers": ["torii.dev/finalizer"], "managedFields": [{"manager": "kubectl"}] * 50,
        "annotations": {intake.LAST_APPLIED: "{...}", "torii.dev/last-handled-configuration": "{}", "note": "x"},
    }, "spec": {"listenPath": "/a/"}}}  # fmt: skip

    async def fake_watch(**_: object):  # type: ignore[no-untyped-def]
        yield event

    saved = watching.infinite_watch
    watching.infinite_watch = fake_watch
    try:
        intake.install()
        intake.install()  # idempotent: wrapped once
        seen = [e async for e in watching.infinite_watch()]
    finally:
        watching.infinite_watch = saved
    meta = seen[0]["object"]["metadata"]
    assert "managedFields" not in meta and intake.LAST_APPLIED not in meta["annotations"]
    # What kopf and Torii do read stays: finalizers, kopf's own annotations, the spec.
    assert meta["finalizers"] == ["torii.dev/finalizer"] and set(meta["annotations"]) == {
        "torii.dev/last-handled-configuration", "note"}  # fmt: skip
    assert seen[0]["object"]["spec"] == {"listenPath": "/a/"}
