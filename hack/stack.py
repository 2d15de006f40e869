#!/usr/bin/env python3
"""The local stack: kube-apiserver + etcd + kube-controller-manager, Redis, Tyk Gateway and Otoroshi.

Everything runs as plain processes bound to 127.0.0.1 on ports chosen free at start-up, the way
controller-runtime's envtest does it (no Docker, no internet). Standard library only, so it runs before
the project's virtualenv exists.

    python3 hack/stack.py up       # idempotent: a healthy stack is left alone
    python3 hack/stack.py status   # exit 0 only when every started component is healthy
    python3 hack/stack.py down     # stops exactly the processes `up` started (by PID)

State lives in `.stack/` (gitignored): `env` (shell exports for tests, demo and benchmarks), `state.json`,
`logs/<component>.log`, and the components' data directories. Binaries are built into a cache outside the
repo (`$TORII_CACHE`, default `~/.cache/torii`), keyed by the versions in `hack/versions.env`.

A gateway whose code the package registries refuse to serve is recorded as unavailable (with the registry's
exact answer) instead of failing the whole stack; tests that need it are skipped with that reason.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HACK = ROOT / "hack"
STACK_DIR = Path(os.environ.get("TORII_STACK_DIR", ROOT / ".stack")).resolve()
CACHE = Path(os.environ.get("TORII_CACHE", Path.home() / ".cache" / "torii")).resolve()
BIN = CACHE / "bin"
STATE_FILE = STACK_DIR / "state.json"
ENV_FILE = STACK_DIR / "env"
LOGS = STACK_DIR / "logs"

# Exit code of the build scripts when a registry refuses to serve a component (not a build failure).
REGISTRY_REFUSED = 3

OTOROSHI_API_HOST = "otoroshi-api.oto.tools"
OTOROSHI_DOMAIN = "oto.tools"


def pins_or_none(name: str) -> str | None:
    return versions().get(name)


def versions() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (HACK / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key.strip()] = value.strip()
    return pins


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(msg: str) -> None:
    print(f"[stack] {msg}", flush=True)


# --------------------------------------------------------------------------------------------- health checks

_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


def http_ok(url: str, headers: dict[str, str] | None = None, timeout: float = 2.0) -> bool:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_INSECURE) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def redis_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_for(name: str, check: Callable[[], bool], proc_alive: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.1
    while time.monotonic() < deadline:
        if check():
            return
        if not proc_alive():
            raise SystemExit(f"[stack] {name} exited during start-up; see {LOGS / (name + '.log')}")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise SystemExit(f"[stack] {name} not healthy after {timeout:.0f}s; see {LOGS / (name + '.log')}")


# ------------------------------------------------------------------------------------------------ processes


def pid_alive(pid: int, binary: str) -> bool:
    """True when `pid` runs and is still the process we started (guards against PID reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().split(")")[-1].split()[0] == "Z":
                return False
    except OSError:
        return False
    return any(binary.encode() in part for part in cmdline)


# Processes started by this invocation. During start-up their liveness comes from Popen.poll(): right after
# fork, /proc/<pid>/cmdline still shows this script (not the component) until exec completes.
STARTED: dict[int, subprocess.Popen[bytes]] = {}


def started_alive(pid: int) -> bool:
    proc = STARTED.get(pid)
    return proc is not None and proc.poll() is None


def spawn(name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    logfile = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        argv,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        cwd=cwd or STACK_DIR,
        start_new_session=True,  # survives the `make` that started it; stopped by PID in `down`
    )
    logfile.close()
    STARTED[proc.pid] = proc
    return proc.pid


def stop_pid(pid: int, binary: str, grace: float = 10.0) -> None:
    if not pid_alive(pid, binary):
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_alive(pid, binary):
        time.sleep(0.1)
    if pid_alive(pid, binary):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------------ the stack


@dataclass
class State:
    """Everything a running stack is: written to state.json, read by status/down."""

    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    binaries: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    argv: dict[str, list[str]] = field(default_factory=dict)  # how to start a component again (`start NAME`)
    paths: dict[str, str] = field(default_factory=dict)  # e.g. Tyk's current app directory

    def save(self) -> None:
        STATE_FILE.write_text(json.dumps(self.__dict__, indent=2))
        STATE_FILE.chmod(0o600)

    @classmethod
    def load(cls) -> State | None:
        if not STATE_FILE.exists():
            return None
        return cls(**json.loads(STATE_FILE.read_text()))


def checks(state: State) -> dict[str, Callable[[], bool]]:
    p = state.ports
    s = state.secrets
    result: dict[str, Callable[[], bool]] = {
        "etcd": lambda: http_ok(f"http://127.0.0.1:{p['etcd']}/health"),
        "kube-apiserver": lambda: http_ok(
            f"https://127.0.0.1:{p['kube-apiserver']}/readyz", {"Authorization": f"Bearer {s['admin_token']}"}
        ),
        "kube-controller-manager": lambda: http_ok(f"https://127.0.0.1:{p['kube-controller-manager']}/healthz"),
        "redis": lambda: redis_ok(p["redis"]),
    }
    for node in tyk_nodes(state):
        result[node] = lambda node=node: http_ok(f"http://127.0.0.1:{p[node]}/hello")  # type: ignore[misc]
    if "otoroshi" in p:
        result["otoroshi"] = lambda: otoroshi_admin_ok(state)
    return result


def healthy(state: State) -> dict[str, bool]:
    out = {}
    for name, check in checks(state).items():
        pid = state.pids.get(name)
        out[name] = bool(pid and pid_alive(pid, state.binaries[name]) and check())
    return out


def build(script: str, *args: str) -> tuple[bool, str]:
    """Run a build script; (False, reason) when a registry refuses the component, raise on other failures."""
    LOGS.mkdir(parents=True, exist_ok=True)
    logpath = LOGS / f"build-{Path(script).stem}{'-' + args[0] if args else ''}.log"
    started = time.monotonic()
    with open(logpath, "wb") as logfile:
        rc = subprocess.call(["bash", str(HACK / script), *args], stdout=logfile, stderr=subprocess.STDOUT)
    took = time.monotonic() - started
    if rc == 0:
        log(f"{script} {' '.join(args)} ok ({took:.1f}s)")
        return True, ""
    text = logpath.read_text(errors="replace").strip()
    if rc == REGISTRY_REFUSED:
        reason = text.splitlines()[-1] if text else "registry refused"
        return False, reason
    raise SystemExit(f"[stack] {script} {' '.join(args)} failed (exit {rc}); see {logpath}\n{text[-2000:]}")


def write_kubeconfig(path: Path, server: str, user: str, token: str) -> None:
    # JSON is valid YAML: no dependency on PyYAML here.
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "torii-local", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "torii-local", "context": {"cluster": "torii-local", "user": user}}],
        "current-context": "torii-local",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


def start_control_plane(state: State, pins: dict[str, str]) -> None:
    k8s, etcd_version = pins["K8S_VERSION"], pins["ETCD_VERSION"]
    p, s = state.ports, state.secrets
    certs = STACK_DIR / "pki"
    certs.mkdir(parents=True, exist_ok=True)
    sa_key = certs / "service-account.key"
    subprocess.run(["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True)
    # A self-signed CA the controller-manager hands to service accounts (root-ca.crt ConfigMaps).
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-new",
            "-key",
            str(sa_key),
            "-subj",
            "/CN=torii-local-ca",
            "-days",
            "365",
            "-out",
            str(certs / "ca.crt"),
        ],
        check=True,
        capture_output=True,
    )
    tokens = STACK_DIR / "tokens.csv"
    tokens.write_text(
        f'{s["admin_token"]},torii-admin,uid-admin,"system:masters"\n'
        f'{s["restricted_token"]},torii-restricted,uid-restricted,"torii:restricted"\n'
        # The controllers run with one identity (no per-controller service accounts): give it full rights.
        f'{s["kcm_token"]},system:kube-controller-manager,uid-kcm,"system:masters"\n'
    )
    tokens.chmod(0o600)

    for name in ("etcd", "kube-apiserver", "kube-controller-manager"):
        p[name] = free_port()
    p["etcd-peer"] = free_port()
    state.binaries["etcd"] = str(BIN / f"etcd-v{etcd_version}")
    state.binaries["kube-apiserver"] = str(BIN / f"kube-apiserver-v{k8s}")
    state.binaries["kube-controller-manager"] = str(BIN / f"kube-controller-manager-v{k8s}")
    alive = checks(state)

    etcd_url = f"http://127.0.0.1:{p['etcd']}"
    state.pids["etcd"] = spawn(
        "etcd",
        [
            state.binaries["etcd"],
            "--name=torii",
            f"--data-dir={STACK_DIR / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p['etcd-peer']}",
            f"--initial-cluster=torii=http://127.0.0.1:{p['etcd-peer']}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
    )
    state.save()
    wait_for("etcd", alive["etcd"], lambda: started_alive(state.pids["etcd"]), 60)

    api = f"https://127.0.0.1:{p['kube-apiserver']}"
    state.argv["kube-apiserver"] = [
            state.binaries["kube-apiserver"],
            f"--etcd-servers={etcd_url}",
            f"--cert-dir={certs}",
            f"--secure-port={p['kube-apiserver']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            f"--token-auth-file={tokens}",
            f"--service-account-issuer={api}/",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=1",
    ]  # fmt: skip
    state.pids["kube-apiserver"] = spawn("kube-apiserver", state.argv["kube-apiserver"])
    state.save()
    wait_for(
        "kube-apiserver",
        alive["kube-apiserver"],
        lambda: started_alive(state.pids["kube-apiserver"]),
        120,
    )

    write_kubeconfig(STACK_DIR / "kubeconfig", api, "torii-admin", s["admin_token"])
    write_kubeconfig(STACK_DIR / "restricted.kubeconfig", api, "torii-restricted", s["restricted_token"])
    write_kubeconfig(STACK_DIR / "kcm.kubeconfig", api, "system:kube-controller-manager", s["kcm_token"])

    # Just the controllers an operator's tests rely on: namespace deletion, ownerReference garbage collection,
    # and service accounts with tokens (for the Helm chart's RBAC test).
    state.pids["kube-controller-manager"] = spawn(
        "kube-controller-manager",
        [
            state.binaries["kube-controller-manager"],
            f"--kubeconfig={STACK_DIR / 'kcm.kubeconfig'}",
            f"--authentication-kubeconfig={STACK_DIR / 'kcm.kubeconfig'}",
            f"--authorization-kubeconfig={STACK_DIR / 'kcm.kubeconfig'}",
            "--controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token",
            f"--service-account-private-key-file={sa_key}",
            f"--root-ca-file={certs / 'ca.crt'}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={p['kube-controller-manager']}",
            f"--cert-dir={certs / 'kcm'}",
            "--concurrent-gc-syncs=5",
            "--v=1",
        ],
    )
    state.save()
    wait_for(
        "kube-controller-manager",
        alive["kube-controller-manager"],
        lambda: started_alive(state.pids["kube-controller-manager"]),
        120,
    )


def start_redis(state: State) -> None:
    redis = shutil.which("redis-server")
    if not redis:
        raise SystemExit("[stack] redis-server not found: apt-get install redis-server (hack/install-deps.sh)")
    state.ports["redis"] = free_port()
    state.binaries["redis"] = "redis-server"
    state.pids["redis"] = spawn(
        "redis",
        [
            redis,
            "--port",
            str(state.ports["redis"]),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(STACK_DIR),
        ],
    )
    state.save()
    wait_for("redis", checks(state)["redis"], lambda: started_alive(state.pids["redis"]), 30)


def tyk_nodes(state: State) -> list[str]:
    """The Tyk nodes of the stack: `tyk` (node 0, the demo's one gateway), then `tyk-1`, `tyk-2`, ..."""
    extra = sorted((k for k in state.ports if re.fullmatch(r"tyk-\d+", k)), key=lambda k: int(k.split("-")[1]))
    return (["tyk"] if "tyk" in state.ports else []) + extra


def tyk_node_name(index: int) -> str:
    return "tyk" if index == 0 else f"tyk-{index}"


def tyk_config(state: State, pins: dict[str, str], app_path: Path, node: str = "tyk") -> Path:
    home = CACHE / f"tyk-v{pins['TYK_VERSION']}"
    policies = STACK_DIR / "tyk-policies"
    policies.mkdir(parents=True, exist_ok=True)
    (policies / "policies.json").write_text("{}")
    conf = {
        "listen_address": "127.0.0.1",
        "listen_port": state.ports[node],
        "secret": state.secrets["tyk_secret"],
        # Nodes sign their cluster notifications (key evictions, group reloads) with it: one value for all.
        "node_secret": state.secrets["tyk_secret"],
        "template_path": str(home / "templates"),
        "app_path": str(app_path),
        "use_db_app_configs": False,
        "storage": {"type": "redis", "host": "127.0.0.1", "port": state.ports["redis"]},
        "policies": {"policy_source": "file", "policy_path": str(policies)},
        "enable_analytics": False,
        "hash_keys": True,
        "enable_hashed_keys_listing": True,
        "health_check": {"enable_health_checks": True, "health_check_value_timeouts": 60},
        "reload_interval": 1,
        # An API may listen on a port of its own (`listen_port`, with `protocol: https` for client certificates:
        # the mutual-TLS tests serve one API over TLS that way).
        "disable_ports_whitelist": True,
        # Default /var/run/tyk-gateway.pid would be shared by two stacks on one machine.
        "pid_file_location": str(STACK_DIR / f"{node}.pid"),
    }
    path = STACK_DIR / f"{node}.conf"
    path.write_text(json.dumps(conf, indent=2))
    path.chmod(0o600)
    return path


def start_tyk(state: State, pins: dict[str, str], app_path: Path | None = None, node: str = "tyk") -> None:
    """Start (or restart, e.g. with an empty app directory) one Tyk node on its recorded port. Every node shares
    the one Redis (keys, OAuth clients) and has an app directory of its own (API definitions are per node)."""
    apps = f"{node}-apps"
    app_path = app_path or Path(state.paths.get(apps, STACK_DIR / apps))
    app_path.mkdir(parents=True, exist_ok=True)
    state.paths[apps] = str(app_path)
    state.ports.setdefault(node, free_port())
    state.secrets.setdefault("tyk_secret", secrets.token_urlsafe(24))
    state.binaries[node] = str(BIN / f"tyk-v{pins['TYK_VERSION']}")
    conf = tyk_config(state, pins, app_path, node)
    state.pids[node] = spawn(node, [state.binaries[node], "--conf", str(conf)])
    state.save()
    wait_for(node, checks(state)[node], lambda: started_alive(state.pids[node]), 60)


def wanted_tyk_nodes() -> int:
    """`TORII_TYK_NODES` (default 1): how many Tyk nodes `up` runs."""
    value = os.environ.get("TORII_TYK_NODES", "1")
    if not value.isdigit() or not 1 <= int(value) <= 9:
        raise SystemExit(f"[stack] TORII_TYK_NODES={value!r}: a number from 1 to 9")
    return int(value)


def add_tyk_nodes(state: State, pins: dict[str, str]) -> bool:
    """Start the Tyk nodes `TORII_TYK_NODES` asks for that are not running yet (a running stack grows)."""
    added = False
    for index in range(1, wanted_tyk_nodes()):
        node = tyk_node_name(index)
        if node not in state.pids:
            shutil.rmtree(STACK_DIR / f"{node}-apps", ignore_errors=True)
            start_tyk(state, pins, node=node)
            added = True
    return added


def otoroshi_admin_ok(state: State) -> bool:
    """Otoroshi is up when its admin API answers an authenticated call (the gateway itself is up then too)."""
    creds = f"{state.secrets['otoroshi_client_id']}:{state.secrets['otoroshi_client_secret']}"
    return http_ok(
        f"http://127.0.0.1:{state.ports['otoroshi']}/api/groups",
        {"Host": OTOROSHI_API_HOST, "Authorization": "Basic " + base64.b64encode(creds.encode()).decode()},
    )


# Admin writes reach Otoroshi's proxy at its next state sync (10 s by default): 1 s keeps "Ready means serving"
# quick in tests and demos. Production users keep Otoroshi's own setting; Torii waits for serving either way.
OTOROSHI_STATE_SYNC_MS = 1000


def start_otoroshi(state: State, pins: dict[str, str]) -> None:
    home = CACHE / f"otoroshi-{pins['OTOROSHI_VERSION']}"
    state.ports.setdefault("otoroshi", free_port())
    state.secrets.setdefault("otoroshi_client_id", "torii-" + secrets.token_hex(6))
    state.secrets.setdefault("otoroshi_client_secret", secrets.token_urlsafe(32))
    java = shutil.which("java") or "java"
    state.binaries["otoroshi"] = "ProdServerStart"
    workdir = STACK_DIR / "otoroshi"
    workdir.mkdir(parents=True, exist_ok=True)
    # sbt's exact classpath order (lib/* would be unspecified, and a few classes exist twice).
    classpath = (home / "cp.txt").read_text().strip()
    state.pids["otoroshi"] = spawn(
        "otoroshi",
        [
            java,
            "-Xms256m",
            "-Xmx1g",
            "--add-opens=java.base/javax.net.ssl=ALL-UNNAMED",
            "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED",
            "--add-opens=java.base/sun.net.www.protocol.file=ALL-UNNAMED",
            "--add-exports=java.base/sun.security.x509=ALL-UNNAMED",
            "--add-opens=java.base/sun.security.ssl=ALL-UNNAMED",
            "-Dlog4j2.formatMsgNoLookups=true",
            "-Dapp.storage=inmemory",
            f"-Dapp.domain={OTOROSHI_DOMAIN}",
            f"-Dhttp.port={state.ports['otoroshi']}",
            "-Dhttps.port=disabled",
            "-Dplay.server.http.address=127.0.0.1",
            # No outside connections: no update check, no anonymous reporting.
            "-Dapp.checkForUpdates=false",
            "-Dotoroshi.anonymous-reporting.enabled=false",
            f"-Dotoroshi.next.state-sync-interval={OTOROSHI_STATE_SYNC_MS}",
            "-Dpidfile.path=/dev/null",
            "-cp",
            classpath,
            "play.core.server.ProdServerStart",
        ],
        env={
            "OTOROSHI_ADMIN_API_CLIENT_ID": state.secrets["otoroshi_client_id"],
            "OTOROSHI_ADMIN_API_CLIENT_SECRET": state.secrets["otoroshi_client_secret"],
        },
        cwd=workdir,
    )
    state.save()
    wait_for("otoroshi", checks(state)["otoroshi"], lambda: started_alive(state.pids["otoroshi"]), 240)
    # Otoroshi throttles each client IP to 500 calls per 10 s by default; every test, benchmark and probe of the
    # local stack comes from 127.0.0.1, so that limit would answer 429 to them all.
    creds = f"{state.secrets['otoroshi_client_id']}:{state.secrets['otoroshi_client_secret']}"
    patch = json.dumps([{"op": "replace", "path": "/perIpThrottlingQuota", "value": 10_000_000}]).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{state.ports['otoroshi']}/api/globalconfig", data=patch, method="PATCH",
        headers={"Host": OTOROSHI_API_HOST, "Content-Type": "application/json",
                 "Authorization": "Basic " + base64.b64encode(creds.encode()).decode()},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as resp:
        if resp.status != 200:
            raise SystemExit(f"[stack] otoroshi: could not raise the per-IP throttling quota (HTTP {resp.status})")


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def write_env(state: State) -> None:
    p, s = state.ports, state.secrets
    env = {
        "KUBECONFIG": str(STACK_DIR / "kubeconfig"),
        "TORII_RESTRICTED_KUBECONFIG": str(STACK_DIR / "restricted.kubeconfig"),
        "TORII_STACK_DIR": str(STACK_DIR),
        "TORII_HELM": str(BIN / f"helm-v{versions()['HELM_VERSION']}"),
    }
    if "etcd" in p:
        env["TORII_ETCD_URL"] = f"http://127.0.0.1:{p['etcd']}"
    if "redis" in p:
        env["TORII_REDIS_URL"] = f"redis://127.0.0.1:{p['redis']}"
    if "tyk" in p:
        env |= {
            "TYK_URL": f"http://127.0.0.1:{p['tyk']}",
            # Every node's admin URL (the first is TYK_URL), space-separated.
            "TYK_NODE_URLS": " ".join(f"http://127.0.0.1:{p[n]}" for n in tyk_nodes(state)),
            "TYK_SECRET": s["tyk_secret"],
            # For tests that start a second, differently configured Tyk (e.g. hash_keys off) on the same Redis.
            "TORII_TYK_CONF": str(STACK_DIR / "tyk.conf"),
            "TORII_TYK_BIN": state.binaries["tyk"],
        }
    tykop = pins_or_none("TYK_OPERATOR_VERSION")
    if tykop and "tyk-operator" not in state.unavailable and (BIN / f"tyk-operator-v{tykop}").exists():
        env |= {
            "TORII_TYK_OPERATOR_BIN": str(BIN / f"tyk-operator-v{tykop}"),
            "TORII_TYK_OPERATOR_CRDS": str(CACHE / f"tyk-operator-v{tykop}" / "crds"),
        }
    if "otoroshi" in p:
        env |= {
            "OTOROSHI_URL": f"http://127.0.0.1:{p['otoroshi']}",
            "OTOROSHI_API_HOST": OTOROSHI_API_HOST,
            "OTOROSHI_DOMAIN": OTOROSHI_DOMAIN,
            "OTOROSHI_CLIENT_ID": s["otoroshi_client_id"],
            "OTOROSHI_CLIENT_SECRET": s["otoroshi_client_secret"],
            "OTOROSHI_STATE_SYNC_SECONDS": str(OTOROSHI_STATE_SYNC_MS / 1000),
        }
    for name, reason in state.unavailable.items():
        env[f"TORII_{name.upper().replace('-', '_')}_UNAVAILABLE"] = reason
    lines = ["# Written by hack/stack.py for the running local stack. `source` it."]
    lines += [f"export {k}={shell_quote(v)}" for k, v in env.items()]
    ENV_FILE.write_text("\n".join(lines) + "\n")
    ENV_FILE.chmod(0o600)


def cmd_up(_: argparse.Namespace) -> int:
    started = time.monotonic()
    state = State.load()
    if state is not None:
        health = healthy(state)
        if all(health.values()):
            if "tyk" in state.pids and add_tyk_nodes(state, versions()):
                write_env(state)
                log(f"Tyk nodes now: {len(tyk_nodes(state))}")
            log(f"already running and healthy; env: {ENV_FILE}")
            return 0
        log(f"stack unhealthy ({', '.join(n for n, ok in health.items() if not ok)}): restarting")
        cmd_down(argparse.Namespace())

    pins = versions()
    build("build-k8s.sh", "all")
    tyk_built, tyk_reason = build("build-tyk.sh")
    oto_built, oto_reason = build("fetch-otoroshi.sh")
    # tyk-operator only runs in tests (the migration from it) and the side-by-side benchmark: built, not started.
    try:
        tykop_built, tykop_reason = build("build-tyk-operator.sh")
    except SystemExit as exc:  # not part of the stack itself: its tests fail (CI) or skip, with this reason
        tykop_built, tykop_reason = False, str(exc).splitlines()[0]

    STACK_DIR.mkdir(parents=True, exist_ok=True)
    for stale in ("etcd", "otoroshi", *(f"{tyk_node_name(i)}-apps" for i in range(10))):
        shutil.rmtree(STACK_DIR / stale, ignore_errors=True)
    state = State(
        secrets={
            "admin_token": secrets.token_urlsafe(32),
            "restricted_token": secrets.token_urlsafe(32),
            "kcm_token": secrets.token_urlsafe(32),
        }
    )
    if not tyk_built:
        state.unavailable["tyk"] = tyk_reason
    if not oto_built:
        state.unavailable["otoroshi"] = oto_reason
    if not tykop_built:
        state.unavailable["tyk-operator"] = tykop_reason
    state.save()
    try:
        start_control_plane(state, pins)
        start_redis(state)
        if tyk_built:
            start_tyk(state, pins)
            add_tyk_nodes(state, pins)
        if oto_built:
            start_otoroshi(state, pins)
    except BaseException:
        write_env(state)
        raise
    write_env(state)
    for name, reason in state.unavailable.items():
        log(f"WARNING {name} is UNAVAILABLE on this machine: {reason}")
    log(f"up in {time.monotonic() - started:.1f}s; `source {ENV_FILE}`")
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    state = State.load()
    if state is None:
        log("no stack state: nothing to stop")
        return 0
    # Reverse start order: gateways first, etcd last.
    for name in reversed(list(state.pids)):
        stop_pid(state.pids[name], Path(state.binaries[name]).name)
        log(f"stopped {name} (pid {state.pids[name]})")
    STATE_FILE.unlink(missing_ok=True)
    ENV_FILE.unlink(missing_ok=True)
    return 0


def describe(state: State, name: str) -> str:
    """What a healthy component says it is (the version it reports itself where it does)."""
    pins = versions()
    if name == "tyk" or re.fullmatch(r"tyk-\d+", name):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{state.ports[name]}/hello", timeout=2) as resp:
                return f"Tyk Gateway {json.loads(resp.read()).get('version', '?')}"
        except (urllib.error.URLError, OSError, ValueError):
            return "Tyk Gateway (version unknown)"
    return {
        "otoroshi": f"Otoroshi {pins['OTOROSHI_VERSION']} (state sync {OTOROSHI_STATE_SYNC_MS} ms)",
        "kube-apiserver": f"v{pins['K8S_VERSION']}",
        "kube-controller-manager": f"v{pins['K8S_VERSION']}",
        "etcd": f"v{pins['ETCD_VERSION']}",
    }.get(name, "")


def cmd_status(args: argparse.Namespace) -> int:
    state = State.load()
    if state is None:
        print("stack: not running")
        return 1
    health = healthy(state)
    for name, ok in health.items():
        port = state.ports.get(name)
        what = describe(state, name) if ok else ""
        print(f"{name:<24} {'healthy' if ok else 'DOWN':<8} pid={state.pids.get(name)} 127.0.0.1:{port}  {what}")
    for name, reason in state.unavailable.items():
        print(f"{name:<24} UNAVAILABLE  {reason}")
    rss = 0
    for pid in state.pids.values():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
        except OSError:
            pass
    print(f"memory (RSS of all components): {rss / 1024:.0f} MiB")
    print(f"env: {ENV_FILE}")
    return 0 if all(health.values()) else 1


def cmd_restart_tyk(args: argparse.Namespace) -> int:
    """Restart Tyk on the same port; with --empty, on a fresh empty app directory (a gateway that lost state);
    with --flush-redis, Redis is emptied while Tyk is down (every key gone)."""
    state = State.load()
    node = tyk_node_name(args.node)
    if state is None or node not in state.pids:
        raise SystemExit(f"[stack] no running Tyk node {args.node}")
    stop_pid(state.pids[node], Path(state.binaries[node]).name)
    if args.flush_redis:
        redis_command(state, "FLUSHALL")
    app_path = None
    if args.empty:
        app_path = STACK_DIR / f"{node}-apps-{int(time.time() * 1000)}"
    start_tyk(state, versions(), app_path, node)
    return 0


def redis_command(state: State, *words: str) -> bytes:
    with socket.create_connection(("127.0.0.1", state.ports["redis"]), timeout=5) as conn:
        conn.sendall((f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)).encode())
        return conn.recv(1024)


# Components a fault-injection test may stop and start again (same ports, same data unless said otherwise);
# Tyk nodes also as `tyk-1`, `tyk-2`, ... (or `tyk --node N`).
RESTARTABLE = ("tyk", "otoroshi", "kube-apiserver")


def component(args: argparse.Namespace) -> str:
    name: str = args.name
    if name == "tyk" and args.node:
        return tyk_node_name(args.node)
    if name not in RESTARTABLE and not re.fullmatch(r"tyk-\d", name):
        raise SystemExit(f"[stack] {name}: one of {', '.join(RESTARTABLE)} or tyk-N")
    return name


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop one component (a gateway outage, an apiserver restart); `start NAME` brings it back."""
    state = State.load()
    name = component(args)
    if state is None or name not in state.pids:
        raise SystemExit(f"[stack] {name} is not running")
    binary = state.binaries[name]
    stop_pid(state.pids.pop(name), Path(binary).name)
    state.save()
    log(f"stopped {name}")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """Start a stopped component on its recorded port. Otoroshi's storage is in memory: it comes back empty."""
    state = State.load()
    if state is None:
        raise SystemExit("[stack] no stack")
    name = component(args)
    if name in checks(state) and checks(state)[name]():
        raise SystemExit(f"[stack] {name} is already running")
    if name == "tyk" or name.startswith("tyk-"):
        start_tyk(state, versions(), node=name)
    elif name == "otoroshi":
        start_otoroshi(state, versions())
    else:
        state.pids[name] = spawn(name, state.argv[name])
        state.save()
        wait_for(name, checks(state)[name], lambda: started_alive(state.pids[name]), 120)
    log(f"started {name}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up").set_defaults(func=cmd_up)
    sub.add_parser("down").set_defaults(func=cmd_down)
    sub.add_parser("status").set_defaults(func=cmd_status)
    restart = sub.add_parser("restart-tyk")
    restart.add_argument("--empty", action="store_true", help="start on an empty app directory")
    restart.add_argument("--flush-redis", action="store_true", help="empty Redis (every key) while Tyk is down")
    restart.add_argument("--node", type=int, default=0, help="which Tyk node (0: the first)")
    restart.set_defaults(func=cmd_restart_tyk)
    for command, func in (("stop", cmd_stop), ("start", cmd_start)):
        one = sub.add_parser(command, help=f"{command} one component: {', '.join(RESTARTABLE)}")
        one.add_argument("name", help=f"{', '.join(RESTARTABLE)}, or a Tyk node tyk-N")
        one.add_argument("--node", type=int, default=0, help="with `tyk`: which node (0: the first)")
        one.set_defaults(func=func)
    args = parser.parse_args()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
