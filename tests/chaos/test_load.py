"""Load: a steady population, then a stream of changes at a fixed rate. Every change is served, the backlog
drains, and the operator's memory and open connections stay flat (sampled over the whole run)."""

from __future__ import annotations

import contextlib
import random
import statistics
import threading
import time
from pathlib import Path

import httpx
from kubernetes import client

from chaos.audit import audit
from chaos.conftest import FULL, Operators, report, size
from chaos.population import Obj, apply, converged
from chaos.test_faults import assert_clean, finish, tally
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import GROUP, VERSION


def rss_and_sockets(pid: int) -> tuple[float, int]:
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    sockets = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed while we looked
            sockets += fd.readlink().name.startswith("socket:")
    return rss, sockets


def test_steady_state_under_a_stream_of_changes(
    stack: Stack, crds: Stack, admin: client.ApiClient, ns: str, tmp_path: Path
) -> None:
    stack.require("tyk")
    stack.require("otoroshi")
    count, per_minute, minutes = size(100, 2000), size(120, 200), (5.0 if FULL else 0.5)
    with upstream("blue") as blue, upstream("green") as green:
        objs = [
            Obj("GatewayAPI", ns, f"api-{i}", {"gateway": "tyk" if i % 5 else "otoroshi", "listenPath": f"/{ns}/{i}/",
                                               "upstream": {"url": blue.url}})
            for i in range(count)
        ]  # fmt: skip
        ops = Operators(crds, admin, tmp_path, [ns])
        with ops.running() as op:
            apply(objs, crds.kubeconfig)
            converged(admin, [ns], count, timeout=size(180, 900))
            custom = client.CustomObjectsApi(admin)
            pending: dict[int, tuple[str, float]] = {}  # object -> (upstream it must reach, when asked)
            latencies: list[float] = []
            samples: list[tuple[float, float, int, int]] = []  # (t, rss MiB, sockets, backlog)
            lock = threading.Lock()
            done = threading.Event()
            started = time.monotonic()

            def served(i: int) -> str | None:
                gateway = objs[i].spec["gateway"]
                if gateway == "tyk":
                    r = httpx.get(f"{stack.env['TYK_URL']}/{ns}/{i}/x", timeout=5)
                else:
                    r = httpx.get(f"{stack.env['OTOROSHI_URL']}/{ns}/{i}/x", timeout=5,
                                  headers={"Host": f"api.{stack.env['OTOROSHI_DOMAIN']}"})  # fmt: skip
                return r.json().get("upstream") if r.status_code == 200 else None

            def checker() -> None:
                while not done.is_set() or pending:
                    with lock:
                        todo = dict(pending)
                    for i, (want, asked) in todo.items():
                        if served(i) == want:
                            with lock:
                                if pending.get(i, (None, 0.0))[1] == asked:
                                    del pending[i]
                                    latencies.append(time.monotonic() - asked)
                    time.sleep(0.2)  # a polling period, not a wait for a condition that could be awaited
                    if time.monotonic() - started > minutes * 60 + 300:
                        return

            def sampler() -> None:
                while not done.is_set() or pending:
                    rss, sockets = rss_and_sockets(op.process.pid)
                    with lock:
                        samples.append((round(time.monotonic() - started), rss, sockets, len(pending)))
                    time.sleep(5)  # the sampling period
                    if time.monotonic() - started > minutes * 60 + 300:
                        return

            threads = [threading.Thread(target=checker), threading.Thread(target=sampler)]
            for t in threads:
                t.start()
            rng = random.Random(7)
            changes = int(per_minute * minutes)
            colour = {i: blue.url for i in range(count)}
            for n in range(changes):
                i = rng.randrange(count)
                colour[i] = green.url if colour[i] == blue.url else blue.url
                with lock:
                    pending[i] = ("green" if colour[i] == green.url else "blue", time.monotonic())
                custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "gatewayapis", f"api-{i}",
                                                      {"spec": {"upstream": {"url": colour[i]}}})  # fmt: skip
                time.sleep(max(0.0, started + (n + 1) * 60 / per_minute - time.monotonic()))  # the change rate
            done.set()
            wait_until(lambda: not pending, timeout=300, what="every change served")
            for t in threads:
                t.join()
            objs = [Obj(o.kind, o.ns, o.name, {**o.spec, "upstream": {"url": colour[i]}}) for i, o in enumerate(objs)]
            found = audit(stack, admin, [ns])
            assert_clean(found)
            after, deleted_in = finish(stack, admin, objs, [ns])
    assert_clean(after)
    assert latencies  # changes superseded before they were served count once, as their last one
    rss = [s[1] for s in samples]
    sockets = [s[2] for s in samples]
    backlog = [s[3] for s in samples]
    # Flat, not growing with the number of changes: the last samples are within reach of the first ones.
    assert sockets[-1] <= max(sockets[0] * 2, sockets[0] + 40), samples
    report("load: steady state + change stream", objects=count, faults=changes, changes_per_min=per_minute,
           change_p50_s=round(statistics.median(latencies), 2), change_max_s=round(max(latencies), 2),
           backlog_max=max(backlog), rss_mib=f"{rss[0]:.0f}->{max(rss):.0f}->{rss[-1]:.0f}",
           sockets=f"{sockets[0]}->{max(sockets)}->{sockets[-1]}", delete_s=deleted_in,
           **tally(found, after))  # fmt: skip
