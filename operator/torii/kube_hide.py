"""Keep the official `kubernetes` package (and httpx's command-line tool) out of the operator's memory.

kopf imports it whenever it is importable, only to recognise its model classes (which Torii never hands to
kopf): ~15 MiB of RSS for nothing. `torii run` hides it before kopf is imported; `torii.kube.login` brings it
back for the one case that needs it (a kubeconfig user with an exec plugin or an auth provider).
"""

from __future__ import annotations

import sys


def hide_unused_modules() -> None:
    if "kopf" not in sys.modules:  # too late otherwise: kopf has it already
        sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    if "httpx" not in sys.modules:
        # httpx imports its command-line tool (`httpx._main`: click, and rich where installed) whenever it can,
        # and falls back quietly when it cannot: 1.7 MiB of RSS (more with rich) the operator never runs.
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
