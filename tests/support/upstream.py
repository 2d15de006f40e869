"""A real local HTTP upstream for gateway tests: answers every request with a JSON body naming itself."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Upstream:
    name: str
    url: str
    host: str
    port: int
    requests: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def upstream(name: str) -> Iterator[Upstream]:
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append({"method": self.command, "path": self.path, **dict(self.headers)})
            body = json.dumps({"upstream": name, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Upstream(name, f"http://127.0.0.1:{port}", "127.0.0.1", port, seen)
    finally:
        server.shutdown()
        server.server_close()
