from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from support.kube import api_client, install_crds, namespace
from support.operator import free_port
from support.stack import STACK_PY, Stack, ensure_stack

TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/e2e talks to real processes: mark it so `-m 'not e2e'` stays fast.
    for item in items:
        if (TESTS / "e2e") in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    stack = ensure_stack()
    saved = dict(os.environ)
    os.environ.update(stack.env)
    yield stack
    os.environ.clear()
    os.environ.update(saved)
    if stack.started_here and not os.environ.get("TORII_KEEP_STACK"):
        subprocess.run([sys.executable, str(STACK_PY), "down"], check=False)


@pytest.fixture(scope="session")
def crds(stack: Stack) -> Stack:
    """The stack with Torii's CRDs installed (from the checked-in crds/ directory)."""
    install_crds(stack.kubeconfig)
    return stack


@pytest.fixture(scope="session")
def admin(crds: Stack) -> Iterator[client.ApiClient]:
    """An admin client of the stack's apiserver."""
    api = api_client(crds.kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="module")
def metrics_port() -> int:
    """A free loopback port for the module's operator metrics."""
    return free_port()


@pytest.fixture(scope="module")
def ns(admin: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test module, named after it."""
    prefix = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")[:20]
    with namespace(admin, prefix) as name:
        yield name
