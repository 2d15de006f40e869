"""Fixtures the end-to-end modules share. A module defines `live` (its operator, configured for what it tests);
`world` is then the module namespace's objects, as the admin sees them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from support.operator import Operator
from support.stack import STACK_PY, Stack, read_env_file
from support.world import World


@pytest.fixture
def world(admin: client.ApiClient, ns: str, stack: Stack, live: Operator) -> World:
    return World(admin, ns, stack)


@pytest.fixture(scope="session")
def tyk_nodes(stack: Stack) -> list[str]:
    """The admin URLs of three Tyk nodes sharing one Redis (a running stack grows to three)."""
    stack.require("tyk")
    subprocess.run([sys.executable, str(STACK_PY), "up"], check=True, env={**os.environ, "TORII_TYK_NODES": "3"})
    urls = read_env_file(Path(stack.env["TORII_STACK_DIR"]) / "env")["TYK_NODE_URLS"].split()
    assert len(urls) >= 3, urls
    return urls[:3]
