"""Client traffic in a loop through a gateway: what its users see while something changes underneath."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field

import httpx

from support.wait import wait_until


@dataclass
class Traffic:
    """Client requests in a loop, round robin over `targets` (URL, headers), until stopped: what the gateway's
    users see during the switch."""

    targets: list[tuple[str, dict[str, str]]]
    verify: ssl.SSLContext | bool = True  # a context with a client certificate, for an mTLS listener
    total: int = 0
    failures: list[str] = field(default_factory=list)
    first_at: float = 0.0
    last_at: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        wait_until(lambda: self.total >= len(self.targets), timeout=60, what="traffic loop going")
        return self

    def _run(self) -> None:
        with httpx.Client(timeout=10, verify=self.verify) as http:
            while not self._stop.is_set():
                for url, headers in self.targets:
                    if self._stop.is_set():
                        break
                    try:
                        status = http.get(url, headers=headers).status_code
                    except httpx.HTTPError as exc:
                        status, url = 0, f"{url} ({type(exc).__name__})"
                    self.first_at = self.first_at or time.monotonic()
                    self.last_at = time.monotonic()
                    self.total += 1
                    if status != 200:
                        self.failures.append(f"{status} {url}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
