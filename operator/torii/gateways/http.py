"""The one place where gateway HTTP calls happen: error classification, timing, no secrets in messages."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from torii.gateways.errors import AuthenticationError, PermanentGatewayError, RetryableGatewayError

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
        except httpx.TimeoutException as exc:
            self._observe(op, 0, started)
            raise RetryableGatewayError(f"gateway {self.name}: {op}: timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            self._observe(op, 0, started)
            raise RetryableGatewayError(
                f"gateway {self.name}: {op}: cannot reach {self.base_url} ({type(exc).__name__})"
            ) from None
        self._observe(op, response.status_code, started)
        status = response.status_code
        if status in ok or status in passthrough:
            return response
        detail = gateway_message(response)
        text = f"gateway {self.name}: {op}: HTTP {status}: {detail}"
        if status in (401, 403):
            raise AuthenticationError(
                f"gateway {self.name}: {op}: admin credentials refused (HTTP {status}); check the gateway's "
                "credentials Secret",
                status=status,
            )
        if status == 429 or status >= 500:
            raise RetryableGatewayError(text, status=status)
        raise PermanentGatewayError(text, status=status)

    def _observe(self, op: str, status: int, started: float) -> None:
        if self._observer is not None:
            self._observer(op, status, time.perf_counter() - started)
