"""Faults injected into the real stack while Torii converges; every scenario ends with the full audit.

Sizes: the short version (in `make test`) or the full one (`make chaos`, TORII_CHAOS_SCALE=full). A random
moment or a fixed outage length is the fault being injected, not a wait for a condition: those are the only
sleeps here.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from chaos.audit import Findings, audit
from chaos.conftest import DRIFT_INTERVAL, RUN, Clock, Operators, report, size
from chaos.population import (
    Obj,
    all_gone,
    apply,
    converged,
    credentials,
    delete,
    deleted_records,
    listed,
    population,
)
from support.kube import namespace
from support.stack import STACK_PY, Stack
from support.upstream import upstream
from support.wait import wait_until


@pytest.fixture(scope="module")
def up() -> Iterator[str]:
    with upstream("chaos") as server:
        yield server.url


@pytest.fixture
def namespaces(admin: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Fresh namespaces for one scenario (indirect parameter: how many)."""
    with ExitStack() as contexts:
        names = [contexts.enter_context(namespace(admin, "chaos")) for _ in range(getattr(request, "param", 1))]
        RUN.namespaces.extend(names)
        yield names


def stack_cmd(*args: str) -> None:
    done = subprocess.run([sys.executable, str(STACK_PY), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]


def record(run_creds: dict[str, dict[str, str]]) -> None:
    for data in run_creds.values():
        RUN.credentials.update(v for k, v in data.items() if k in ("key", "clientSecret", "previousKey") and v)


def finish(stack: Stack, admin: client.ApiClient, objs: list[Obj], namespaces: list[str]) -> tuple[Findings, float]:
    """Delete everything through the running operator, then prove it is gone upstream too."""
    gone = deleted_records(admin, objs)
    delete(admin, [o for o in objs if o.kind != "GatewayAPI"])
    delete(admin, [o for o in objs if o.kind == "GatewayAPI"])
    seconds = all_gone(admin, namespaces, timeout=240)
    return audit(stack, admin, namespaces, gone), seconds


def assert_clean(found: Findings) -> None:
    assert found.clean, found.summary()


# ------------------------------------------------------------------------------------------ 1. SIGKILL storm


@pytest.mark.parametrize("namespaces", [size(2, 5)], indirect=True)
def test_operator_sigkill_storm(stack: Stack, crds: Stack, admin: client.ApiClient, up: str,
                                namespaces: list[str], tmp_path: Path) -> None:  # fmt: skip
    stack.require("tyk")
    stack.require("otoroshi")
    objs = population(namespaces, size(40, 500), up)
    ops = Operators(crds, admin, tmp_path, namespaces)
    kills = size(4, 20)
    rng = random.Random(os.environ.get("TORII_CHAOS_SEED", "11"))
    clock = Clock()
    applier = threading.Thread(target=apply, args=(objs, crds.kubeconfig))
    for i in range(kills):
        with ops.running() as op:
            if i == 0:
                applier.start()
            time.sleep(rng.uniform(0.5, 4.0))  # the kill lands at a random moment of the convergence
            os.kill(op.process.pid, signal.SIGKILL)
            op.process.wait()
    applier.join()
    with ops.running():
        seconds = converged(admin, namespaces, len(objs), timeout=size(240, 900))
        found = audit(stack, admin, namespaces)
        assert_clean(found)
        record(credentials(admin, objs))
        after, deleted_in = finish(stack, admin, objs, namespaces)
    assert_clean(after)
    report("operator SIGKILL storm", objects=len(objs), faults=kills, converge_s=seconds, total_s=clock.seconds(),
           delete_s=deleted_in, **tally(found, after))  # fmt: skip


def tally(*found: Findings) -> dict[str, int]:
    return {k: sum(len(getattr(f, k)) for f in found) for k in ("duplicates", "orphans", "missing", "untrue")}


# ----------------------------------------------------------------------------------------- 2. gateway outage


def reasons(admin: client.ApiClient, namespaces: list[str]) -> set[str]:
    return {
        c.get("reason", "")
        for o in listed(admin, namespaces)
        for c in o.get("status", {}).get("conditions", [])
        if c["type"] == "Ready" and c["status"] == "False"
    }


def test_gateway_outage_during_apply_and_delete(stack: Stack, crds: Stack, admin: client.ApiClient, up: str,
                                                namespaces: list[str], tmp_path: Path) -> None:  # fmt: skip
    stack.require("tyk")
    stack.require("otoroshi")
    first = population(namespaces, size(30, 200), up)
    ops = Operators(crds, admin, tmp_path, namespaces)
    outage = size(15, 60)
    with ops.running(json_logs=True):
        apply(first, crds.kubeconfig)
        converged(admin, namespaces, len(first), timeout=size(180, 600))
        doomed = first[: size(10, 50)]  # whole units: APIs with their keys and clients
        gone = deleted_records(admin, doomed)
        second = [Obj(o.kind, o.ns, f"{o.name}-n", _renamed(o.spec)) for o in population(namespaces, size(20, 200), up)]
        applier = threading.Thread(target=apply, args=(second, crds.kubeconfig))
        applier.start()  # the gateways go away in the middle of this apply
        stopped = time.monotonic()
        stack_cmd("stop", "tyk")
        stack_cmd("stop", "otoroshi")
        delete(admin, doomed)
        applier.join()
        try:
            wait_until(lambda: "GatewayUnavailable" in reasons(admin, namespaces), timeout=60,
                       what="a status saying the gateway is unavailable")  # fmt: skip
            time.sleep(max(0.0, stopped + outage - time.monotonic()))  # the rest of the outage
        finally:
            stack_cmd("start", "tyk")
            stack_cmd("start", "otoroshi")  # in-memory storage: Otoroshi comes back empty
        print(f"[chaos] gateways back at {time.time():.1f}")
        expected = len(first) - len(doomed) + len(second)
        seconds = converged(admin, namespaces, expected, timeout=size(180, 600))
        found = audit(stack, admin, namespaces, gone)
        assert_clean(found)
        record(credentials(admin, first + second))
        remaining = [o for o in first if o not in doomed] + second
        after, deleted_in = finish(stack, admin, remaining, namespaces)
    assert_clean(after)
    report("gateway outage (Tyk + Otoroshi)", objects=len(first) + len(second), faults=2, outage_s=outage,
           converge_s=seconds, delete_s=deleted_in,
           **tally(found, after))  # fmt: skip


def _renamed(spec: dict[str, Any]) -> dict[str, Any]:
    """The same spec for a '-n' copy of an object: its own listen path and references."""
    out = dict(spec)
    if "listenPath" in out:
        out["listenPath"] = out["listenPath"].rstrip("/") + "-n/"
    if "apis" in out:
        out["apis"] = [{"name": f"{a['name']}-n"} for a in out["apis"]]
    if "api" in out:
        out["api"] = f"{out['api']}-n"
    return out


# ------------------------------------------------------------------------------- 3. gateway restarted empty


def test_gateways_restarted_empty_get_everything_back_with_the_same_credentials(
    stack: Stack, crds: Stack, admin: client.ApiClient, up: str, namespaces: list[str], tmp_path: Path
) -> None:
    stack.require("tyk")
    stack.require("otoroshi")
    objs = population(namespaces, size(20, 200), up)
    ops = Operators(crds, admin, tmp_path, namespaces)
    with ops.running():
        apply(objs, crds.kubeconfig)
        converged(admin, namespaces, len(objs), timeout=size(180, 600))
        before = credentials(admin, objs)
        fault = Clock()
        stack_cmd("stop", "otoroshi")
        stack_cmd("start", "otoroshi")  # in-memory storage: back with no service and no key
        stack_cmd("restart-tyk", "--empty", "--flush-redis")  # no API definition, no key, no OAuth client
        back = Clock()
        # Nothing changes in the cluster: only the drift passes can bring the gateways' contents back.
        found = wait_until(lambda: (f := audit(stack, admin, namespaces)).clean and f, timeout=size(120, 300),
                           what="everything served again")  # fmt: skip
        seconds, since_fault = back.seconds(), fault.seconds()
        assert credentials(admin, objs) == before  # the same credentials, no Secret rewritten
        record(before)
        after, deleted_in = finish(stack, admin, objs, namespaces)
    assert_clean(after)
    report("gateways restarted empty", objects=len(objs), faults=2, drift_interval_s=DRIFT_INTERVAL,
           converge_s=seconds, since_first_fault_s=since_fault, delete_s=deleted_in, **tally(found, after))  # fmt: skip


# ------------------------------------------------------------------------------------ 4. apiserver restart


def test_apiserver_restart(stack: Stack, crds: Stack, admin: client.ApiClient, up: str, namespaces: list[str],
                           tmp_path: Path) -> None:  # fmt: skip
    stack.require("tyk")
    objs = population(namespaces, size(20, 100), up, otoroshi=False)
    ops = Operators(crds, admin, tmp_path, namespaces)
    with ops.running() as op:
        apply(objs, crds.kubeconfig)
        converged(admin, namespaces, len(objs), timeout=size(180, 600))
        stack_cmd("stop", "kube-apiserver")
        try:
            time.sleep(size(5, 20))  # the apiserver stays away this long (etcd keeps running)
        finally:
            stack_cmd("start", "kube-apiserver")
        # Changes right after the restart: a new API and an edited one must be picked up by the watches.
        moved = next(o for o in objs if o.kind == "GatewayAPI" and o.spec["auth"] == "keyless")
        edited = Obj(moved.kind, moved.ns, moved.name, {**moved.spec, "listenPath": moved.spec["listenPath"] + "v2/"})
        path = f"/{namespaces[0]}/after-restart/"
        fresh = Obj("GatewayAPI", namespaces[0], "after-restart", {"gateway": "tyk", "listenPath": path,
                                                                   "upstream": {"url": up}})  # fmt: skip
        apply([edited, fresh], crds.kubeconfig)
        objs = [edited if o == moved else o for o in objs] + [fresh]
        seconds = converged(admin, namespaces, len(objs), timeout=120)
        assert op.process.poll() is None, "the operator exited when the apiserver went away"
        found = audit(stack, admin, namespaces)
        assert_clean(found)
        assert httpx.get(f"{stack.env['TYK_URL']}{moved.spec['listenPath']}").status_code == 404  # old path dropped
        record(credentials(admin, objs))
        after, deleted_in = finish(stack, admin, objs, namespaces)
    assert_clean(after)
    report("apiserver restart", objects=len(objs), faults=1, converge_s=seconds, delete_s=deleted_in,
           **tally(found, after))  # fmt: skip
