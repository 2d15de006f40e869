#!/usr/bin/env python3
"""Side by side on the same real Tyk: tyk-operator v0.18.0 (Go, controller-runtime) and Torii.

For each operator in turn, on a Tyk restarted with no APIs: apply N equivalent objects at once (one `kubectl
apply`) and measure until EVERY listen path answers 200 through Tyk; change one object and measure apply ->
served (several times); delete all and measure until every path answers 404. For each phase: wall time, Tyk
reloads (Tyk logs "API reload complete" per cycle), admin calls (both operators talk to Tyk through one
counting proxy), the operator's CPU seconds and peak RSS. One operator at a time.

    make bench-compare N=1000        # or: .venv/bin/python bench/compare_tyk_operator.py --count 1000 [--json]

tyk-operator is built by hack/build-tyk-operator.sh (cached by version); its CRDs are installed from its module.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import urllib3
import yaml
from kubernetes import config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.operator import free_port, put_secret  # noqa: E402
from support.stack import read_env_file  # noqa: E402
from support.tyk_operator import api_definition, wait_healthy  # noqa: E402
from support.tyk_operator import run_tyk_operator as tyk_operator  # noqa: E402

CACHE = Path(os.environ.get("TORII_CACHE", Path.home() / ".cache" / "torii"))


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "hack" / "versions.env").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key] = value
    return out


# ------------------------------------------------------------------------------------ counting admin proxy


METHODS = ("GET", "POST", "PUT", "DELETE")


class Counts:
    """Admin calls by method, counted by the proxy process (shared memory)."""

    def __init__(self, shared: Any) -> None:
        self._shared = shared

    def values(self) -> list[int]:
        return list(self._shared[:])


def serve_counting_proxy(target: str, shared: Any, port: int) -> None:
    """The proxy's own process: a pass-through HTTP proxy in front of Tyk's admin API that counts requests by
    method. It used to run as threads of the benchmark itself, whose probe loop (every pending listen path,
    again and again) then held the GIL: each admin call waited for it, and the operator under test looked slow."""
    host, tport = target.removeprefix("http://").split(":")
    local = threading.local()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The answer's headers and body go out as two writes: with Nagle on, the body waited for the client's
        # delayed ACK of the headers (40 ms), so every admin call through the proxy took ~49 ms and capped an
        # operator at ~80 calls/s on 4 connections (Tyk alone: 650-825 writes/s). Both operators paid it.
        disable_nagle_algorithm = True

        def forward(self) -> None:
            with shared.get_lock():
                shared[METHODS.index(self.command)] += 1
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            conn = getattr(local, "conn", None) or http.client.HTTPConnection(host, int(tport), timeout=60)
            local.conn = conn
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                answer = conn.getresponse()
            except (OSError, http.client.HTTPException):
                local.conn = None
                self.send_error(502)
                return
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


@contextmanager
def counting_proxy(target: str) -> Iterator[tuple[str, Counts, int]]:
    """The counting proxy in its own process: (its URL, the counts, its pid for its CPU seconds)."""
    shared = multiprocessing.get_context("spawn").Array("q", len(METHODS))
    with serving(serve_counting_proxy, (target, shared), "the counting proxy") as (url, pid):
        with shared.get_lock():
            shared[:] = [0] * len(METHODS)
        yield url, Counts(shared), pid


@contextmanager
def serving(target: Any, args: tuple[Any, ...], what: str) -> Iterator[tuple[str, int]]:
    """`target(*args, port)` in a process of its own, once it answers HTTP: (its URL, its pid)."""
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(target=target, args=(*args, port), daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/hello", timeout=2)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or not proc.is_alive():
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.1)
    try:
        yield url, int(proc.pid or 0)
    finally:
        proc.terminate()
        proc.join(10)


def serve_upstream(name: str, port: int) -> None:
    """An upstream's own process: answers every request with {"upstream": name}, keeping connections alive."""
    body = json.dumps({"upstream": name}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


@dataclass(frozen=True)
class Upstream:
    url: str


@contextmanager
def upstream_process(name: str) -> Iterator[Upstream]:
    """An upstream the gateway proxies to, in its own process. In the benchmark's process (a thread per
    connection, one connection per request) every served path answered in ~200 ms while the probe loop held the
    GIL: a round of 1000 probes took 6.5 s, which counted as the operator's time beyond the apply."""
    with serving(serve_upstream, (name,), f"the upstream {name}") as (url, _):
        yield Upstream(url)


# ------------------------------------------------------------------------------------------- measurements


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reloads_logged(log: Path, offset: int) -> int:
    with open(log, "rb") as f:
        f.seek(offset)
        return f.read().count(b"API reload complete")


RELOADED = b"API reload complete"
ROUND_AT_LEAST_EVERY = 3.0  # seconds: a round of probes even without a reload logged


def log_size(log: Path) -> int:
    return log.stat().st_size


def reloaded_since(log: Path, offset: int) -> tuple[bool, int]:
    """Has Tyk logged a reload after `offset`? And the log's size now (a local file: read at once)."""
    size = log.stat().st_size
    if size <= offset:
        return False, size
    with open(log, "rb") as f:
        f.seek(offset)
        return RELOADED in f.read(), size


async def next_reload(log: Path, offset: int, limit: float) -> int:
    """Wait until Tyk logs a reload after `offset` (or `limit` seconds pass); the log's new size."""
    deadline = time.monotonic() + limit
    while True:
        reloaded, size = reloaded_since(log, offset)
        if reloaded or time.monotonic() >= deadline:
            return size
        await asyncio.sleep(0.05)


async def until_all(
    base: str, paths: list[str], want: int, check_body: str | None, limit_s: float, tyk_log: Path
) -> float:
    """Seconds until every path answers `want` (and, if given, a body containing `check_body`).

    Tyk changes what it serves only when it reloads, so a round of probes follows each reload it logs (and at
    least one round every ROUND_AT_LEAST_EVERY seconds). Probing every pending path again and again instead took
    as much CPU as the operator under test (8.6 s during a 30 s apply of 1000, on the same 2 cores), slowing
    what it measured."""
    start = time.monotonic()
    pending = set(paths)
    limit = asyncio.Semaphore(32)
    offset = log_size(tyk_log)
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:

        async def probe(path: str) -> None:
            async with limit:
                try:
                    r = await http.get(path + "x")
                except httpx.HTTPError:
                    return
            if r.status_code == want and (check_body is None or check_body in r.text):
                pending.discard(path)

        while pending:
            if time.monotonic() - start > limit_s:
                raise SystemExit(f"timed out: {len(pending)} of {len(paths)} paths not at {want}")
            await asyncio.gather(*(probe(p) for p in list(pending)))
            if pending:
                offset = await next_reload(tyk_log, offset, ROUND_AT_LEAST_EVERY)
    return time.monotonic() - start


def until_gone(resource: str, ns: str, limit_s: float) -> None:
    """Until no object of `resource` is left in `ns` (`kubectl wait --for=delete --all` waits for each object
    in turn, one watch after another: minutes for a thousand)."""
    deadline = time.monotonic() + limit_s
    while subprocess.run(["kubectl", "get", resource, "-n", ns, "-o", "name"], capture_output=True, text=True,
                         check=True).stdout.strip():  # fmt: skip
        if time.monotonic() > deadline:
            raise SystemExit(f"{resource} still in {ns} after {limit_s} s")
        time.sleep(1)


def kubectl(*args: str, stdin: str | None = None) -> float:
    started = time.monotonic()
    subprocess.run(["kubectl", *args], input=stdin, text=True, check=True, capture_output=True)
    return time.monotonic() - started


# ----------------------------------------------------------------------------------------------- operators


def tyk_operator_object(name: str, ns: str, target: str) -> dict[str, Any]:
    return api_definition(name, ns, target)


def torii_object(name: str, ns: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "torii.dev/v1alpha1", "kind": "GatewayAPI", "metadata": {"name": name, "namespace": ns},
        "spec": {"gateway": "tyk", "listenPath": f"/{ns}/{name}/", "upstream": {"url": target}},
    }  # fmt: skip


@contextmanager
def run_tyk_operator(env: dict[str, str], admin_url: str, ns: str, tmp: Path) -> Iterator[subprocess.Popen[bytes]]:
    binary = CACHE / "bin" / f"tyk-operator-v{pins()['TYK_OPERATOR_VERSION']}"
    with tyk_operator(str(binary), env, admin_url, ns, tmp) as proc:
        yield proc


@contextmanager
def run_torii(env: dict[str, str], admin_url: str, ns: str, tmp: Path) -> Iterator[subprocess.Popen[bytes]]:
    api = config.new_client_from_config(config_file=env["KUBECONFIG"])
    put_secret(api, "torii-system", "torii-compare", {"tyk": env["TYK_SECRET"]})
    conf = tmp / "torii.yaml"
    conf.write_text(yaml.safe_dump({
        "gateways": [{"name": "tyk", "type": "tyk", "url": admin_url, "insecureHttp": True,
                      "secretRef": {"namespace": "torii-system", "name": "torii-compare", "key": "tyk"}}],
        "namespaces": [ns], "driftIntervalSeconds": 60, **({"logFormat": "json"} if TORII_LOG else {}),
    }))  # fmt: skip
    health = free_port()
    with open(tmp / "torii.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "torii", "run", "--standalone", "--config", str(conf),
             "--liveness", f"http://127.0.0.1:{health}/healthz", *(["--verbose"] if TORII_LOG else [])],
            env={**os.environ, "KUBECONFIG": env["KUBECONFIG"]}, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{health}/healthz", proc, tmp / "torii.log", "torii")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if TORII_LOG:
            shutil.copyfile(tmp / "torii.log", TORII_LOG)


TORII_LOG: Path | None = None  # --torii-log


OPERATORS = {
    "tyk-operator": (run_tyk_operator, tyk_operator_object, "apidefinitions.tyk.tyk.io"),
    "torii": (run_torii, torii_object, "gatewayapis.torii.dev"),
}


def measure(which: str, count: int, changes: int, env: dict[str, str]) -> dict[str, Any]:
    runner, render, resource = OPERATORS[which]
    tyk_log = Path(env["TORII_STACK_DIR"]) / "logs" / "tyk.log"
    subprocess.run([sys.executable, str(ROOT / "hack" / "stack.py"), "restart-tyk", "--empty"], check=True,
                   capture_output=True)  # fmt: skip
    ns = f"cmp-{which.split('-')[0]}-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", ns)
    figures: dict[str, Any] = {"operator": which, "objects": count}
    names = [f"api-{i:04d}" for i in range(count)]
    paths = [f"/{ns}/{n}/" for n in names]
    base = env["TYK_URL"]
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        upstream_process("first") as first,
        upstream_process("second") as second,
        counting_proxy(env["TYK_URL"]) as (admin_url, calls, proxy_pid),
        runner(env, admin_url, ns, Path(tmpdir)) as proc,
    ):
        manifest = yaml.safe_dump_all([render(n, ns, first.url) for n in names])

        def phase(name: str, action: Any) -> None:
            offset, cpu, before = tyk_log.stat().st_size, cpu_seconds(proc.pid), sum(calls.values())
            harness = own_cpu_seconds() + cpu_seconds(proxy_pid)
            started = time.monotonic()
            extra = action()
            figures[name] = {
                "seconds": round(time.monotonic() - started, 1), "reloads": reloads_logged(tyk_log, offset),
                "admin_calls": sum(calls.values()) - before, "cpu_seconds": round(cpu_seconds(proc.pid) - cpu, 1),
                "peak_rss_mib_so_far": round(peak_rss_mib(proc.pid)),  # the apply's own peak, before the deletion's
                # what measuring cost (probe loop and proxy) on the same 2 cores: not the operator's
                "harness_cpu_seconds": round(own_cpu_seconds() + cpu_seconds(proxy_pid) - harness, 1),
                **(extra or {}),
            }  # fmt: skip

        def apply_all() -> dict[str, Any]:
            started = time.time()
            apply_s = kubectl("apply", "-f", "-", stdin=manifest)
            applied = time.time()
            asyncio.run(until_all(base, paths, 200, None, 900, tyk_log))
            # With --torii-log: when (wall clock) the apply began, kubectl returned and all served, to line up with
            # the operator's log.
            timeline = {"timeline": [started, applied, time.time()]} if TORII_LOG else {}
            return {"kubectl_apply_seconds": round(apply_s, 1), **timeline}

        def change_one() -> dict[str, Any]:
            latencies = []
            for i in range(changes):
                target = second.url if i % 2 == 0 else first.url
                obj = render(names[i], ns, target)
                started = time.monotonic()
                kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))
                want = '"second"' if target == second.url else '"first"'
                asyncio.run(until_all(base, [paths[i]], 200, want, 900, tyk_log))
                latencies.append(time.monotonic() - started)
            return {"p50_seconds": round(statistics.median(latencies), 2), "max_seconds": round(max(latencies), 2)}

        def delete_all() -> dict[str, Any]:
            kubectl("delete", resource, "--all", "-n", ns, "--wait=false")
            asyncio.run(until_all(base, paths, 404, None, 900, tyk_log))
            return {}

        phase("apply", apply_all)
        phase("change", change_one)
        phase("delete", delete_all)
        figures["cpu_seconds_total"] = round(cpu_seconds(proc.pid), 1)
        figures["peak_rss_mib"] = round(peak_rss_mib(proc.pid))
        # Untimed: the operator releases every object's finalizer before it stops (served 404 is not gone yet);
        # objects left with a finalizer would hold the namespace, and the apiserver busy, through later runs.
        until_gone(resource, ns, 300)
    kubectl("delete", "namespace", ns, "--wait=false")
    return figures


def install_crds() -> None:
    version = pins()["TYK_OPERATOR_VERSION"]
    crds = CACHE / f"tyk-operator-v{version}" / "crds"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crds))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")


def table(results: list[dict[str, Any]]) -> str:
    rows = [
        "| operator | N | apply: all serving (kubectl apply) | reloads | admin calls | change p50 | delete: all 404 "
        "| CPU s | peak RSS MiB: apply (all) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        a, c, d = r["apply"], r["change"], r["delete"]
        rows.append(
            f"| {r['operator']} | {r['objects']} | {a['seconds']} s ({a['kubectl_apply_seconds']} s) | "
            f"{a['reloads'] + c['reloads'] + d['reloads']} | "
            f"{a['admin_calls'] + c['admin_calls'] + d['admin_calls']} | "
            f"{c['p50_seconds']} s | {d['seconds']} s | {r['cpu_seconds_total']} | "
            f"{a['peak_rss_mib_so_far']} ({r['peak_rss_mib']}) |"
        )
    if len(results) == 2:
        ours, theirs = results[1], results[0]
        rows.append(
            f"| ratio tyk-operator / torii | | {theirs['apply']['seconds'] / ours['apply']['seconds']:.1f}x | | | "
            f"{theirs['change']['p50_seconds'] / ours['change']['p50_seconds']:.1f}x | "
            f"{theirs['delete']['seconds'] / max(ours['delete']['seconds'], 0.1):.1f}x | "
            f"{theirs['cpu_seconds_total'] / max(ours['cpu_seconds_total'], 0.1):.1f}x | "
            f"{theirs['peak_rss_mib'] / max(ours['peak_rss_mib'], 1):.1f}x |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--only", choices=list(OPERATORS))
    parser.add_argument("--json", action="store_true", help="raw figures as JSON")
    parser.add_argument("--torii-log", type=Path, help="keep Torii's log here, with its debug lines (burst timings)")
    args = parser.parse_args()
    global TORII_LOG
    TORII_LOG = args.torii_log
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    env = read_env_file(Path(os.environ.get("TORII_STACK_DIR", ROOT / ".stack")) / "env")
    if "TYK_URL" not in env:
        print(f"tyk is not running: {env.get('TORII_TYK_UNAVAILABLE', 'unknown')}")
        return 2
    os.environ.update(env)
    built = subprocess.run(["bash", str(ROOT / "hack" / "build-tyk-operator.sh")], capture_output=True, text=True)
    if built.returncode != 0:
        print(built.stdout + built.stderr)
        return 2
    install_crds()
    results = [measure(op, args.count, args.changes, env) for op in OPERATORS if args.only in (None, op)]
    if args.json:
        print(json.dumps(results, indent=2))
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()} {os.cpu_count()} cores, Tyk {pins()['TYK_VERSION']}, "
          f"tyk-operator {pins()['TYK_OPERATOR_VERSION']}, Torii {'(this checkout)'}")  # fmt: skip
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
