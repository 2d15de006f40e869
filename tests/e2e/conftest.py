"""Fixtures the end-to-end modules share. A module defines `live` (its operator, configured for what it tests);
`world` is then the module namespace's objects, as the admin sees them."""

from __future__ import annotations

import pytest
from kubernetes import client

from support.operator import Operator
from support.stack import Stack
from support.world import World


@pytest.fixture
def world(admin: client.ApiClient, ns: str, stack: Stack, live: Operator) -> World:
    return World(admin, ns, stack)
