"""Logging set-up: credentials never reach a log line.

Tyk addresses keys by value in URL paths (`/tyk/keys/<key>`), and HTTP client libraries log request URLs at
INFO. So the HTTP loggers are kept at WARNING, and every handler also redacts key paths as a second line.
"""

from __future__ import annotations

import logging
import re

REDACT = re.compile(r"(/tyk/keys/|/tyk/oauth/refresh/|/tyk/oauth/clients/[^/\s]+/)([^/?\s\"']+)")


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = REDACT.sub(r"\1<redacted>", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def secure_logging() -> None:
    for noisy in ("httpx", "httpcore", "urllib3", "kubernetes.client.rest"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    redact = RedactCredentials()
    root = logging.getLogger()
    root.addFilter(redact)
    for handler in root.handlers:
        handler.addFilter(redact)
