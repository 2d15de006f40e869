"""The one place where gateway HTTP calls happen: error classification, timing, no secrets in messages."""

from __future__ import annotations

import functools
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import ijson

from torii.acyclic import Client
from torii.gateways.errors import AuthenticationError, PermanentGatewayError, RetryableGatewayError, UnsafeId

T = TypeVar("T")

# Called once per admin call with (operation, HTTP status or 0 for a transport error, seconds).
CallObserver = Callable[[str, int, float], None]


# ------------------------------------------------------------------------------------------- admin paths

# One path segment of an admin URL: an id, a key hash, a client id. Whatever goes into a path is either Torii's
# own derivation or comes from a tenant (spec.adopt, a Secret's data): either way it must stay ONE segment. A
# `/`, a `..` or a percent-escape would let it climb to another admin endpoint (httpx resolves dot segments
# before sending: `/tyk/keys/../apis/x` is sent as `/tyk/apis/x`).
SEGMENT_CHARS = "._~:@+=-"
SEGMENT = re.compile(rf"[A-Za-z0-9{re.escape(SEGMENT_CHARS)}]{{1,256}}")
# Every path sent, whatever built it: segments of those characters (and their escapes), no dot segments.
SAFE_PATH = re.compile(rf"(/[A-Za-z0-9%{re.escape(SEGMENT_CHARS)}]*)+")


def segment(value: str) -> str:
    """`value` as one encoded path segment; UnsafeId (never echoing it: it may be a credential) otherwise."""
    if not isinstance(value, str) or not SEGMENT.fullmatch(value) or value in (".", ".."):
        raise UnsafeId(
            "an id, key or client id that is not a single safe path segment was refused (allowed: letters, "
            f"digits and {SEGMENT_CHARS}; not '.' or '..'; at most 256 characters)"
        )
    return quote(value, safe=SEGMENT_CHARS)


def admin_path(template: str, *values: str) -> str:
    """An admin path with each `{}` filled by one validated segment: `admin_path("/tyk/keys/{}", key)`."""
    return template.format(*(segment(v) for v in values))


def safe_path(path: str) -> bool:
    return bool(SAFE_PATH.fullmatch(path)) and not any(part in (".", "..") for part in path.split("/"))


# ----------------------------------------------------------------------------------------- error text

# Gateway answers reach conditions and Events that every reader of the namespace sees: at most this much of it.
MESSAGE_LIMIT = 200
# Runs that look like a credential, a key hash or a token (long, no spaces, no dots): never repeated.
TOKEN_LIKE = re.compile(r"[A-Za-z0-9+/=_-]{24,}")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Gateway text fit for a status or an Event: known secrets and token-like runs removed, whitespace folded,
    cut to MESSAGE_LIMIT characters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = TOKEN_LIKE.sub("***", " ".join(text.split()))
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def gateway_message(response: httpx.Response, secrets: Iterable[str] = ()) -> str:
    """The gateway's own explanation, from its JSON error body when there is one, scrubbed."""
    try:
        body = response.json()
    except ValueError:
        return scrub(response.text[:4096], secrets) or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "Message"):
            if isinstance(body.get(key), str) and body[key]:
                return scrub(str(body[key])[:4096], secrets)
    return scrub(str(body)[:4096], secrets)


@functools.cache
def tls_context(ca_pem: str | None) -> ssl.SSLContext:
    """How admin https is verified: the usual CAs (certifi's, as httpx), or only those of a given bundle (PEM).
    One context per bundle, shared by every client: each context holds its own parsed copy of the CAs (~1 MiB of
    OpenSSL memory), and a client made without one makes its own."""
    if not ca_pem:
        return httpx.create_ssl_context()
    return ssl.create_default_context(cadata=ca_pem)


def verification(verify: ssl.SSLContext | bool | None) -> ssl.SSLContext | bool:
    """`verify` for an httpx client: True (or None) means the one shared default context."""
    return tls_context(None) if verify is None or verify is True else verify


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
        verify: ssl.SSLContext | bool | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.calls = 0
        self._observer = observer
        self._secrets = tuple(s for s in secrets if s)  # never repeated in an error message
        self._client = Client(
            base_url=self.base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=timeout,
            transport=transport,
            verify=verification(verify),
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
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send one admin call (`json` or a raw `content` body). Statuses in `ok` or `passthrough` are returned;
        others raise a typed error."""
        if not safe_path(path):  # the last line of defence: drivers build paths with admin_path()
            raise UnsafeId(f"gateway {self.name}: {op}: refused to send a path that is not made of safe segments")
        self.calls += 1
        started = time.perf_counter()
        try:
            response = await self._client.request(method, path, json=json, params=params, headers=headers,
                                                  content=content)  # fmt: skip
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
        if not safe_path(path):
            raise UnsafeId(f"gateway {self.name}: {op}: refused to send a path that is not made of safe segments")
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
        if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return RetryableGatewayError(
                f"gateway {self.name}: {op}: the admin API's TLS certificate is not trusted; give the CA that "
                "signed it in the connection's caBundle"
            )
        return RetryableGatewayError(f"gateway {self.name}: {op}: cannot reach {self.base_url} ({type(exc).__name__})")

    def _refusal(self, op: str, response: httpx.Response) -> Exception:
        status = response.status_code
        detail = gateway_message(response, self._secrets)
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
