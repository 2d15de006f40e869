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


# What must run alone on the stack (`make test` runs everything else on two workers first: hack/test.sh), and
# why. A module, or one test of a module (`module.py::test`). Every chaos scenario too: they restart components.
SERIAL = {
    "test_tyk_nodes.py": "stops and empties Tyk nodes",
    "test_gatewayapi_gateways.py::test_tyk_restarted_empty_gets_everything_back": "restarts Tyk empty",
    "test_tyk_gateway.py::test_deleting_the_last_api_stops_serving_it": "restarts Tyk empty, expects no API left",
    "test_helm_chart.py::test_operator_runs_with_the_charts_rbac_and_nothing_more": "a cluster-wide operator",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        # Everything under tests/e2e talks to real processes: mark it so `-m 'not e2e'` stays fast.
        if (TESTS / "e2e") in path.parents:
            item.add_marker(pytest.mark.e2e)
        test = f"{path.name}::{item.name.partition('[')[0]}"
        if (TESTS / "chaos") in path.parents or path.name in SERIAL or test in SERIAL:
            item.add_marker(pytest.mark.serial)


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
