"""Prometheus metrics. Labels never carry credentials or object specs."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from torii.gateways.http import CallObserver

RECONCILES = Counter("torii_reconciles_total", "Reconciles by kind, cause and result.", ["kind", "cause", "result"])
GATEWAY_CALLS = Counter("torii_gateway_calls_total", "Gateway admin API calls.", ["gateway", "operation", "status"])
GATEWAY_LATENCY = Histogram(
    "torii_gateway_call_seconds",
    "Gateway admin API call latency.",
    ["gateway", "operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TYK_RELOADS = Counter("torii_tyk_reloads_total", "Tyk hot reloads requested by Torii.", ["gateway"])
DRIFT_REPAIRS = Counter("torii_drift_repairs_total", "Gateway objects repaired by the drift check.", ["kind"])
HANDED_OFF = Counter(
    "torii_changes_handed_off_total", "Changes converged without a kopf worker (beyond maxHeldChanges).", ["kind"]
)
RESOURCES = Gauge("torii_resources", "Resources by kind and Ready status.", ["kind", "ready"])

_ready_state: dict[tuple[str, str, str], str] = {}


def observer_for(gateway: str) -> CallObserver:
    """An AdminClient observer recording one gateway's calls."""

    def observe(operation: str, status: int, seconds: float) -> None:
        GATEWAY_CALLS.labels(gateway, operation, str(status) if status else "error").inc()
        GATEWAY_LATENCY.labels(gateway, operation).observe(seconds)
        if operation in ("reload", "reload group"):
            TYK_RELOADS.labels(gateway).inc()

    return observe


def track_ready(kind: str, namespace: str, name: str, ready: str | None) -> None:
    """Remember an object's Ready status (None = deleted) and refresh the per-state gauge."""
    key = (kind, namespace, name)
    previous = _ready_state.pop(key, None)
    if previous is not None:
        RESOURCES.labels(kind, previous).dec()
    if ready is not None:
        _ready_state[key] = ready
        RESOURCES.labels(kind, ready).inc()


def serve(port: int, addr: str = "0.0.0.0") -> None:
    start_http_server(port, addr=addr)
