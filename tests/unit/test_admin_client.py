"""AdminClient.list_items: a JSON array parsed as it streams in, errors classified like every admin call."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from torii.gateways.errors import AuthenticationError, PermanentGatewayError, RetryableGatewayError
from torii.gateways.http import AdminClient


class Trickle(httpx.AsyncByteStream):
    """A body that arrives a few bytes at a time, cut anywhere (inside strings and numbers too)."""

    def __init__(self, body: bytes, size: int = 7) -> None:
        self._body, self._size = body, size

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self._body), self._size):
            yield self._body[i : i + self._size]


def client(handler: Any) -> AdminClient:
    return AdminClient("gw", "http://gw.test", transport=httpx.MockTransport(handler))


async def test_items_are_kept_as_they_stream_in() -> None:
    items = [{"api_id": f"a{i}", "big": "x" * 300, "n": i, "ratio": 0.5} for i in range(50)] + [{"other": 1}, 3]
    body = json.dumps(items).encode()
    admin = client(lambda request: httpx.Response(200, stream=Trickle(body)))
    kept = await admin.list_items("/list", op="list", keep=lambda d: (d["api_id"], d["n"]) if "api_id" in d else None)
    assert kept == [(f"a{i}", i) for i in range(50)]  # non-dict items and dropped ones are not kept
    assert admin.calls == 1
    floats = await admin.list_items("/list", op="list", keep=lambda d: d.get("ratio"))
    assert floats[0] == 0.5 and type(floats[0]) is float  # not Decimal: compared with rendered values


async def test_an_empty_or_null_answer_is_an_empty_list() -> None:
    for body in (b"[]", b"null"):
        admin = client(lambda request, body=body: httpx.Response(200, content=body))
        assert await admin.list_items("/list", op="list", keep=dict) == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationError), (400, PermanentGatewayError), (500, RetryableGatewayError)],
)
async def test_a_refusal_is_classified_with_the_gateways_message(status: int, error: type[Exception]) -> None:
    admin = client(lambda request: httpx.Response(status, json={"message": "nope"}))
    with pytest.raises(error):
        await admin.list_items("/list", op="list", keep=dict)


async def test_a_truncated_answer_is_retryable() -> None:
    admin = client(lambda request: httpx.Response(200, content=b'[{"api_id": "a1"}, {"api_'))
    with pytest.raises(RetryableGatewayError, match="not a JSON list"):
        await admin.list_items("/list", op="list", keep=dict)
