"""JWTs for gateway tests: signed here (HS with hmac, RS/ES with `cryptography`), and a JWKS served locally."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(sub: str = "alice", ttl: int = 300, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + ttl, **extra}


def _signing_input(alg: str, body: dict[str, Any], kid: str | None) -> bytes:
    header = {"alg": alg, "typ": "JWT", **({"kid": kid} if kid else {})}
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}".encode()


def hs256(secret: str, body: dict[str, Any], kid: str | None = None) -> str:
    signing = _signing_input("HS256", body, kid)
    return f"{signing.decode()}.{b64(hmac.new(secret.encode(), signing, hashlib.sha256).digest())}"


class RsaKey:
    def __init__(self, kid: str = "k1") -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, body: dict[str, Any], *, kid: bool = True) -> str:
        signing = _signing_input("RS256", body, self.kid if kid else None)
        signature = self.private.sign(signing, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing.decode()}.{b64(signature)}"

    def jwk(self) -> dict[str, Any]:
        numbers = self.private.public_key().public_numbers()

        def raw(n: int) -> str:
            return b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": raw(numbers.n), "e": raw(numbers.e)}


class EcKey:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())

    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, body: dict[str, Any]) -> str:
        signing = _signing_input("ES256", body, None)
        r, s = decode_dss_signature(self.private.sign(signing, ec.ECDSA(hashes.SHA256())))
        return f"{signing.decode()}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@contextmanager
def jwks_server(keys: list[RsaKey]) -> Iterator[str]:
    """A local JWKS endpoint (http) with `keys`; yields its URL. The list may be changed while it runs."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"keys": [k.jwk() for k in keys]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
