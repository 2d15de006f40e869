"""No credential reaches a log line, even with the HTTP client's own request logging."""

from __future__ import annotations

import logging

import httpx
import pytest

from torii.gateways.base import Credential, KeyRequest, ObjectRef, ResolvedApi
from torii.gateways.tyk import TykDriver
from torii.logs import secure_logging
from torii.models.gatewaykey import GatewayKeySpec

KEY = "0123456789abcdef0123456789abcdef0123456789abcdef"


async def test_tyk_key_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return (
            httpx.Response(404, json={"message": "not found"})
            if request.method == "GET"
            else httpx.Response(200, json={"key": KEY, "status": "ok", "action": "added", "key_hash": "h"})
        )

    secure_logging()
    caplog.handler.addFilter(logging.getLogger().filters[-1])
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    driver = TykDriver("tyk", "http://tyk.test", "admin", transport=httpx.MockTransport(handler))
    spec = GatewayKeySpec.model_validate({"apis": [{"name": "a"}]})
    request = KeyRequest(ObjectRef("ns", "k"), spec, (ResolvedApi("a", "torii.ns.a"),), None, Credential(key=KEY))
    await driver.keys.converge_key(request)
    # Even if something logs the URL, the filter redacts it.
    logging.getLogger("torii.test").info("DELETE http://tyk/tyk/keys/%s?api_id=x", KEY)
    assert KEY not in caplog.text
    assert "/tyk/keys/<redacted>" in caplog.text
    assert KEY not in repr(request) and KEY not in repr(request.credential)
