"""reconcile_api / delete_api decisions, with a scripted driver (no kopf, no HTTP)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from torii.gateways.base import ConvergeResult, ObjectRef
from torii.gateways.errors import (
    AuthenticationError,
    GatewayError,
    ListenPathConflict,
    PermanentGatewayError,
    RetryableGatewayError,
)
from torii.gateways.registry import Gateways
from torii.kube import Owner
from torii.models.gatewayapi import ApiHealth, GatewayAPISpec
from torii.reconcile.context import ReconcileContext
from torii.reconcile.gatewayapi import delete_api, reconcile_api
from torii.reconcile.outcome import Cause
from torii.retry import RetryPolicy, backoff

REF = ObjectRef("shop", "orders")
SPEC = {"listenPath": "/orders/", "upstream": {"url": "http://orders:80"}}


class ScriptedDriver:
    """A driver whose API role is itself, answering converges from a script."""

    type = "tyk"
    admin_urls: ClassVar[list[str]] = []
    neutral_fields: frozenset[str] = frozenset()

    @property
    def dialect(self) -> str:
        return str(self.type)

    @property
    def apis(self) -> ScriptedDriver:
        return self

    def __init__(self, name: str = "tyk") -> None:
        self.name = name
        self.results: list[ConvergeResult | GatewayError] = []
        self.delete_result: bool | GatewayError = True
        self.converges = 0

    async def converge_api(self, ref: ObjectRef, spec: GatewayAPISpec, *, max_age: float = 0.0) -> ConvergeResult:
        self.converges += 1
        result = self.results.pop(0)
        if isinstance(result, GatewayError):
            raise result
        return result

    async def delete_api(self, ref: ObjectRef, gateway_id: str | None = None, **_: Any) -> bool:
        if isinstance(self.delete_result, GatewayError):
            raise self.delete_result
        return self.delete_result

    async def api_health(self, ref: ObjectRef, gateway_id: str | None = None) -> ApiHealth | None:
        return ApiHealth(average_requests_ps=3.5)

    async def check(self) -> str:
        return "ok"

    async def ping(self) -> None:
        pass

    @property
    def admin_calls(self) -> int:
        return 0

    async def ready(self) -> None:
        pass

    async def watch(self, refill: Any) -> None:
        pass

    async def aclose(self) -> None:
        pass


OWNER = Owner("torii.dev/v1alpha1", "GatewayAPI", "orders", "uid-1")


def gateways(driver: ScriptedDriver) -> ReconcileContext:
    # GatewayAPI reconciles touch only the gateways: no Secrets, no API lookups.
    return ReconcileContext(Gateways({driver.name: driver}, driver.name), None, None)  # type: ignore[dict-item,arg-type]


def ready(outcome_status: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in outcome_status["conditions"] if c["type"] == "Ready")


async def test_created_then_in_sync() -> None:
    driver = ScriptedDriver()
    driver.results = [ConvergeResult("torii.shop.orders", changed=True, created=True)]
    out = await reconcile_api(gateways(driver), REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert ready(out.status) | {"lastTransitionTime": ""} == {
        "type": "Ready", "status": "True", "reason": "Serving", "observedGeneration": 1, "lastTransitionTime": "",
        "message": "gateway tyk serves /orders/ as torii.shop.orders",
    }  # fmt: skip
    assert out.status["gatewayId"] == "torii.shop.orders" and out.status["gateway"] == "tyk"
    assert [e.reason for e in out.events] == ["Created"] and not out.retry

    driver.results = [ConvergeResult("torii.shop.orders", changed=False)]
    again = await reconcile_api(gateways(driver), REF, OWNER, SPEC, 1, out.status, Cause.DRIFT)
    assert again.events == [] and ready(again.status)["lastTransitionTime"] == ready(out.status)["lastTransitionTime"]
    assert again.status["health"]["averageRequestsPs"] == 3.5  # health refreshed with the drift check


async def test_drift_repair_event() -> None:
    driver = ScriptedDriver()
    driver.results = [ConvergeResult("id", changed=True, created=True)]
    out = await reconcile_api(gateways(driver), REF, OWNER, SPEC, 1, None, Cause.DRIFT)
    assert [e.reason for e in out.events] == ["DriftRepaired"]


async def test_retryable_failure_asks_for_retry() -> None:
    driver = ScriptedDriver()
    driver.results = [RetryableGatewayError("gateway tyk: get API: cannot reach http://x (ConnectError)")]
    out = await reconcile_api(gateways(driver), REF, OWNER, SPEC, 4, None, Cause.UPDATE)
    cond = ready(out.status)
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == ("False", "GatewayUnavailable", 4)
    assert out.retry and out.events[0].type == "Warning"


async def test_permanent_failure_is_not_retried_and_not_hammered_by_drift() -> None:
    driver = ScriptedDriver()
    driver.results = [PermanentGatewayError("gateway tyk: write API: HTTP 400: Request malformed", status=400)]
    out = await reconcile_api(gateways(driver), REF, OWNER, SPEC, 2, None, Cause.CREATE)
    assert not out.retry and ready(out.status)["reason"] == "GatewayRejected"
    assert "Request malformed" in ready(out.status)["message"]
    drift = await reconcile_api(gateways(driver), REF, OWNER, SPEC, 2, out.status, Cause.DRIFT)
    assert driver.converges == 1 and drift.events == []  # the same generation is not re-sent
    driver.results = [ConvergeResult("id", changed=True)]
    fixed = await reconcile_api(gateways(driver), REF, OWNER, SPEC, 3, out.status, Cause.UPDATE)
    assert ready(fixed.status)["status"] == "True"  # a new generation is tried again


async def test_invalid_spec_names_the_field() -> None:
    out = await reconcile_api(gateways(ScriptedDriver()), REF, OWNER, {"listenPath": "/x/"}, 1, None, Cause.CREATE)
    assert ready(out.status)["reason"] == "InvalidSpec" and "spec.upstream" in ready(out.status)["message"]


async def test_unknown_gateway() -> None:
    out = await reconcile_api(
        gateways(ScriptedDriver()), REF, OWNER, {**SPEC, "gateway": "kong"}, 1, None, Cause.CREATE
    )
    assert ready(out.status)["reason"] == "GatewayNotConfigured" and "'kong'" in ready(out.status)["message"]
    assert not out.retry


async def test_delete_paths() -> None:
    driver = ScriptedDriver()
    out = await delete_api(gateways(driver), REF, OWNER, SPEC, 1, None)
    assert [e.reason for e in out.events] == ["Deleted"] and not out.retry
    driver.delete_result = False
    out = await delete_api(gateways(driver), REF, OWNER, SPEC, 1, None)
    assert "already gone" in out.events[0].message and not out.retry
    driver.delete_result = RetryableGatewayError("gateway tyk: delete API: timed out")
    out = await delete_api(gateways(driver), REF, OWNER, SPEC, 1, None)
    assert out.retry and ready(out.status)["reason"] == "DeleteFailed" and "Orphan" in ready(out.status)["message"]
    out = await delete_api(gateways(driver), REF, OWNER, {**SPEC, "deletionPolicy": "Orphan"}, 1, None)
    assert not out.retry and out.events[0].reason == "Orphaned"
    out = await delete_api(gateways(driver), REF, OWNER, {**SPEC, "gateway": "gone"}, 1, None)
    assert not out.retry and out.events[0].reason == "GatewayNotConfigured"  # never hangs


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(r) for r in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]


@pytest.mark.parametrize(
    ("error", "delays"),
    [
        (RetryableGatewayError("down"), [5, 10, 20, 20, 20]),  # a gateway comes back: at most 20 s late
        (AuthenticationError("refused"), [5, 10, 20, 40, 80]),  # a Secret to fix: plain backoff
        (PermanentGatewayError("no"), [None] * 5),  # retrying cannot help
        (ListenPathConflict("taken"), [None] * 5),  # the drift pass looks again
    ],
)
async def test_the_retry_delay_comes_from_the_failure(error: GatewayError, delays: list[float | None]) -> None:
    driver = ScriptedDriver()
    driver.results = [error]
    env = ReconcileContext(Gateways({"tyk": driver}, "tyk"), None, None)  # type: ignore[arg-type, dict-item]
    out = await reconcile_api(env, REF, OWNER, SPEC, 1, None, Cause.CREATE)
    assert [out.retry_policy.delay(attempt) for attempt in range(5)] == delays
    assert out.retry == (delays[0] is not None)


def test_waiting_for_another_object_is_looked_at_often() -> None:
    from torii.reconcile.outcome import Blocked

    assert [Blocked("WaitingForAPI", "x", retry=True).retry_policy.delay(a) for a in range(4)] == [5, 5, 5, 5]
    assert Blocked("InvalidReference", "x", retry=False).retry_policy is RetryPolicy.NONE
