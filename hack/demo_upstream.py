#!/usr/bin/env python3
"""The demo's upstream service: answers every request with JSON describing it (stdlib only).

    demo_upstream.py PORT_FILE RUN_ID

Binds a free loopback port (never a fixed one: something else may listen there) and writes it to PORT_FILE once
it listens. Every answer carries RUN_ID, so the demo can tell its own upstream's answers from anybody else's.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main(port_file: Path, run_id: str) -> None:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = json.dumps(
                {"service": "torii-demo-upstream", "run": run_id, "method": self.command, "path": self.path}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(server.server_address[1]))
    tmp.rename(port_file)  # appears whole, only once the port listens
    server.serve_forever()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
