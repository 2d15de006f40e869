"""Torii's Event posters (torii.events): bounded, ordered per object, never waited on, never raising."""

from __future__ import annotations

import asyncio
from typing import Any

from torii.events import EventPoster
from torii.kube import KubeError


def ref(name: str) -> dict[str, Any]:
    return {"apiVersion": "torii.dev/v1alpha1", "kind": "GatewayAPI",
            "metadata": {"name": name, "namespace": "shop", "uid": f"uid-{name}"}}  # fmt: skip


async def test_events_of_one_object_keep_their_order_and_posting_is_bounded() -> None:
    sent: list[tuple[str, str]] = []
    at_once, most = 0, 0

    async def post(reference: dict[str, Any], _type: str, reason: str, _message: str) -> None:
        nonlocal at_once, most
        at_once += 1
        most = max(most, at_once)
        await asyncio.sleep(0.001)
        sent.append((reference["metadata"]["name"], reason))
        at_once -= 1

    poster = EventPoster(posters=3, depth=100, post=post)
    for i in range(20):
        for step in range(3):
            assert poster.post(ref(f"o{i}"), "Normal", f"step{step}", "m")
    await poster.drained()
    assert len(sent) == 60 and most == 3  # never more requests than posters
    for i in range(20):
        assert [r for n, r in sent if n == f"o{i}"] == ["step0", "step1", "step2"]
    poster.close()


async def test_a_full_queue_drops_the_event_instead_of_waiting_and_counts_it() -> None:
    release = asyncio.Event()
    sent: list[str] = []

    async def post(reference: dict[str, Any], *_: str) -> None:
        await release.wait()
        sent.append(reference["metadata"]["name"])

    poster = EventPoster(posters=1, depth=2, post=post)
    accepted = [poster.post(ref(f"o{i}"), "Normal", "r", "m") for i in range(5)]
    await asyncio.sleep(0)  # the poster takes the first one: one more fits
    accepted.append(poster.post(ref("late"), "Normal", "r", "m"))
    assert accepted == [True, True, False, False, False, True] and poster.dropped == 3
    release.set()
    await poster.drained()
    assert sent == ["o0", "o1", "late"]
    poster.close()


async def test_a_failing_post_is_tried_again_then_given_up_without_raising(monkeypatch: Any) -> None:
    from torii import events

    monkeypatch.setattr(events.asyncio, "sleep", _no_sleep)
    tries: dict[str, int] = {}

    async def post(reference: dict[str, Any], *_: str) -> None:
        name = reference["metadata"]["name"]
        tries[name] = tries.get(name, 0) + 1
        if name == "broken" or (name == "flaky" and tries[name] == 1):
            raise KubeError("apiserver answered 500")

    poster = EventPoster(posters=1, depth=10, post=post)
    poster.post(ref("broken"), "Warning", "r", "m")
    poster.post(ref("flaky"), "Normal", "r", "m")
    await poster.drained()
    assert tries == {"broken": events.ATTEMPTS, "flaky": 2}  # and the poster still runs
    poster.post(ref("after"), "Normal", "r", "m")
    await poster.drained()
    assert tries["after"] == 1
    poster.close()


_real_sleep = asyncio.sleep


async def _no_sleep(_seconds: float) -> None:
    await _real_sleep(0)
