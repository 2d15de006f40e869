"""The one place where gateway HTTP calls happen: error classification, timing, no secrets in messages."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import httpx
import ijson

from torii.gateways.errors import AuthenticationError, PermanentGatewayError, RetryableGatewayError

T = TypeVar("T")

# Called once per admin call with (operation, HTTP status or 0 for a transport error, seconds).
CallObserver = Callable[[str, int, float], None]


def gateway_message(response: httpx.Response) -> str:
    """The gateway's own explanation, from its JSON error body when there is one."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "Message"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])[:500]
    return str(body)[:500]


class AdminClient:
    """An httpx client for one gateway's admin API."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.calls = 0
        self._observer = observer
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        op: str,
        ok: tuple[int, ...] = (200, 201),
        passthrough: tuple[int, ...] = (),
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one admin call. Statuses in `ok` or `passthrough` are returned; others raise a typed error."""
        self.calls += 1
        started = time.perf_counter()
        try:
            response = await self._client.request(method, path, json=json, params=params, headers=headers)
        except httpx.TransportError as exc:  # timeouts included
            self._observe(op, 0, started)
            raise self._unreachable(op, exc) from None
        self._observe(op, response.status_code, started)
        if response.status_code in ok or response.status_code in passthrough:
            return response
        raise self._refusal(op, response)

    async def list_items(self, path: str, *, op: str, keep: Callable[[dict[str, Any]], T | None]) -> list[T]:
        """`GET path` answering a JSON array, parsed as it arrives, keeping `keep(item)` of each object item
        (None: dropped). A list of every API of a big gateway is tens of MB of JSON: parsed whole it costs
        several times that in memory at once; this way only the kept parts of it are ever held."""
        self.calls += 1
        started = time.perf_counter()
        kept: list[T] = []
        try:
            async with self._client.stream("GET", path) as response:
                if response.status_code != 200:
                    await response.aread()
                    self._observe(op, response.status_code, started)
                    raise self._refusal(op, response)
                async for item in ijson.items_async(_Chunks(response.aiter_bytes()), "item", use_float=True):
                    if isinstance(item, dict) and (value := keep(item)) is not None:
                        kept.append(value)
        except httpx.TransportError as exc:  # timeouts included
            self._observe(op, 0, started)
            raise self._unreachable(op, exc) from None
        except ijson.JSONError as exc:
            self._observe(op, 200, started)
            raise RetryableGatewayError(f"gateway {self.name}: {op}: the answer is not a JSON list ({exc})") from None
        self._observe(op, 200, started)
        return kept

    def _unreachable(self, op: str, exc: httpx.TransportError) -> RetryableGatewayError:
        if isinstance(exc, httpx.TimeoutException):
            return RetryableGatewayError(f"gateway {self.name}: {op}: timed out ({type(exc).__name__})")
        return RetryableGatewayError(f"gateway {self.name}: {op}: cannot reach {self.base_url} ({type(exc).__name__})")

    def _refusal(self, op: str, response: httpx.Response) -> Exception:
        status = response.status_code
        detail = gateway_message(response)
        text = f"gateway {self.name}: {op}: HTTP {status}: {detail}"
        if status in (401, 403):
            return AuthenticationError(
                f"gateway {self.name}: {op}: admin credentials refused (HTTP {status}); check the gateway's "
                "credentials Secret",
                status=status,
            )
        if status == 429 or status >= 500:
            return RetryableGatewayError(text, status=status)
        return PermanentGatewayError(text, status=status)

    def _observe(self, op: str, status: int, started: float) -> None:
        if self._observer is not None:
            self._observer(op, status, time.perf_counter() - started)


class _Chunks:
    """An async file-like view of a byte stream, as ijson's async parser reads it."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson's probe for bytes or text
            return b""
        async for chunk in self._chunks:
            if chunk:  # b"" means the end to the parser
                return chunk
        return b""
