"""Chaos scenarios: faults injected into the real stack while Torii converges, each ended by a full audit.

`make test` runs the short version of every scenario; `make chaos` (bench/chaos_report.py) runs them at full
size with TORII_CHAOS_SCALE=full and prints the table of figures written to TORII_CHAOS_REPORT.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from chaos.audit import tyk_node_urls
from support.kube import namespace
from support.operator import Operator, running_operator, stack_gateways
from support.stack import Stack

FULL = os.environ.get("TORII_CHAOS_SCALE") == "full"
DRIFT_INTERVAL = 5.0


def size(short: int, full: int) -> int:
    return full if FULL else short


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.e2e)


@dataclass
class Run:
    """What the chaos run saw: every operator log, every credential handed out (for the leak scan)."""

    logs: list[Path] = field(default_factory=list)
    credentials: set[str] = field(default_factory=set)
    namespaces: list[str] = field(default_factory=list)


RUN = Run()


@pytest.fixture(scope="session")
def run() -> Run:
    return RUN


@pytest.fixture
def ns(admin: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one scenario, remembered for the leak scan."""
    prefix = "chaos-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")[:12]
    with namespace(admin, prefix) as name:
        RUN.namespaces.append(name)
        yield name


def report(scenario: str, **figures: Any) -> None:
    """One row of the chaos table (bench/chaos_report.py prints them)."""
    path = os.environ.get("TORII_CHAOS_REPORT")
    row = {"scenario": scenario, "scale": "full" if FULL else "short", **figures}
    print(f"\n[chaos] {json.dumps(row)}")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(row) + "\n")


class Operators:
    """Start, SIGKILL and restart Torii for one scenario; every log is kept for the leak scan."""

    def __init__(self, stack: Stack, api: client.ApiClient, tmp: Path, namespaces: list[str]) -> None:
        self.stack, self.api, self.tmp, self.namespaces = stack, api, tmp, namespaces
        self.gateways, self.secret = stack_gateways(stack, "torii-gateways-chaos")
        nodes = tyk_node_urls(stack.env)
        if len(nodes) > 1:  # every node gets every API, and the audit checks each node
            self.gateways = [g | {"nodes": nodes} if g["name"] == "tyk" else g for g in self.gateways]
        self.starts = 0

    @contextmanager
    def running(self, *, json_logs: bool = False) -> Iterator[Operator]:
        """A Torii on the scenario's namespaces; `json_logs`: its log in JSON (the leak scan reads both)."""
        self.starts += 1
        directory = self.tmp / f"operator-{self.starts}"
        RUN.logs.append(directory / "operator.log")
        # The safe multi-tenant policy, with adoption granted to the scenario's namespaces (the catalogue's
        # adoption mistakes are about the adopted object, not about the grant).
        tenancy = {"adoption": {"namespaces": self.namespaces, "credentials": True}}
        config = {"gateways": self.gateways, "driftIntervalSeconds": DRIFT_INTERVAL, "namespaces": self.namespaces,
                  "tenancy": tenancy, **({"logFormat": "json"} if json_logs else {})}  # fmt: skip
        with running_operator(
            self.stack, self.api, directory, secret_data=self.secret, secret_name="torii-gateways-chaos",
            config_text=yaml.safe_dump(config),
        ) as op:  # fmt: skip
            yield op


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 1)
