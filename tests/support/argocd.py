"""Run the shipped Argo CD health check in a real Lua 5.1 runtime (Argo CD's gopher-lua is Lua 5.1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa.lua51 as lua51

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (ROOT / "argocd" / "torii-health.lua").read_text()


def health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return str(result["status"]), str(result["message"])
