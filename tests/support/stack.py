"""Access to the running local stack described by `.stack/env` (or any cluster named by the environment)."""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK_PY = ROOT / "hack" / "stack.py"


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


@dataclass(frozen=True)
class Stack:
    env: dict[str, str]
    started_here: bool

    @property
    def kubeconfig(self) -> str:
        return self.env["KUBECONFIG"]

    @property
    def restricted_kubeconfig(self) -> str:
        if "TORII_RESTRICTED_KUBECONFIG" not in self.env:
            pytest.skip("TORII_RESTRICTED_KUBECONFIG (a user without rights) is not set for this cluster")
        return self.env["TORII_RESTRICTED_KUBECONFIG"]

    def require(self, gateway: str) -> None:
        """Skip (never pass) a test whose gateway this machine could not build or download; where the gateway
        is required (`TORII_REQUIRE_GATEWAYS=tyk,otoroshi`, set by CI) that skip is a failure instead."""
        reason = self.env.get(f"TORII_{gateway.upper()}_UNAVAILABLE")
        if not reason and gateway.upper() + "_URL" not in self.env:
            reason = f"{gateway.upper()}_URL is not set for this cluster"
        if reason:
            message = f"{gateway} unavailable on this machine: {reason}"
            if gateway in required_gateways():
                pytest.fail(f"{message} (and TORII_REQUIRE_GATEWAYS requires it)", pytrace=False)
            pytest.skip(message)

    def require_any(self) -> None:
        """For fixtures that serve tests of either gateway: fail for a required one that is missing, skip when
        this machine has none at all."""
        for gateway in sorted(required_gateways()):
            self.require(gateway)
        if not any(f"{g}_URL" in self.env for g in ("TYK", "OTOROSHI")):
            pytest.skip("no gateway runs on this machine: " + "; ".join(
                f"{g}: {self.env.get(f'TORII_{g.upper()}_UNAVAILABLE', '?')}" for g in ("tyk", "otoroshi")
            ))  # fmt: skip

    def stack_command(self, *args: str) -> None:
        subprocess.run([sys.executable, str(STACK_PY), *args], check=True, env={**os.environ, **self.env})


def required_gateways() -> set[str]:
    return {g.strip() for g in os.environ.get("TORII_REQUIRE_GATEWAYS", "").split(",") if g.strip()}


def ensure_stack() -> Stack:
    """Reuse a healthy running stack; otherwise start one (and remember to stop it).

    `TORII_STACK_ENV=<file>` runs the suite against an existing cluster instead: the file has the same
    `export` lines as `.stack/env` (at least KUBECONFIG; gateways optional), and nothing is started or stopped.
    """
    external = os.environ.get("TORII_STACK_ENV")
    if external:
        env = read_env_file(Path(external))
        for gateway, url in (("tyk", "TYK_URL"), ("otoroshi", "OTOROSHI_URL")):
            if url not in env:
                env.setdefault(f"TORII_{gateway.upper()}_UNAVAILABLE", f"{url} not set in {external}")
        return Stack(env, started_here=False)
    stack_dir = Path(os.environ.get("TORII_STACK_DIR", ROOT / ".stack"))
    env_file = stack_dir / "env"
    stack_dir.mkdir(exist_ok=True)
    # pytest-xdist workers each come here: one at a time, so a second `up` only finds the first one's stack.
    with open(stack_dir / "suite.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running = (
            env_file.exists()
            and subprocess.run([sys.executable, str(STACK_PY), "status"], capture_output=True).returncode == 0
        )
        # Three Tyk nodes by default for the suite (the chaos audit checks each; a running stack grows to them).
        nodes = os.environ.get("TORII_TYK_NODES", "3")
        env = {**os.environ, "TORII_TYK_NODES": nodes}
        subprocess.run([sys.executable, str(STACK_PY), "up"], check=True, env=env)
    return Stack(read_env_file(env_file), started_here=not running)
