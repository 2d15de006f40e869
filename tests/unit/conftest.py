"""Fixtures of the unit tests (no stack)."""

from __future__ import annotations

import pytest

from support.fakes import Clock, FakeApis, FakeSecrets, Journal, KeyDriver, recorder
from torii.gateways.registry import Gateways
from torii.reconcile.context import ReconcileContext


@pytest.fixture
def world() -> tuple[ReconcileContext, FakeSecrets, FakeApis, KeyDriver, Journal, Clock]:
    journal = Journal()
    secrets, apis, driver, clock = FakeSecrets(journal), FakeApis(), KeyDriver(journal), Clock()
    apis.add("orders")
    env = ReconcileContext(Gateways({"tyk": driver}, "tyk"), secrets, apis, now=clock, record=recorder(journal))  # type: ignore[dict-item]
    return env, secrets, apis, driver, journal, clock
