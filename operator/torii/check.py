"""`torii check`: validate configuration and connect to every gateway, with messages that say what to fix."""

from __future__ import annotations

from torii import kube
from torii.gateways.errors import GatewayError
from torii.gateways.registry import build_gateways
from torii.settings import OperatorSettings


async def check_all(settings: OperatorSettings) -> int:
    if not settings.gateways:
        print("no gateways configured (settings: gateways)")
        return 1
    gateways = await build_gateways(settings, kube.read_secret_key, read_ca=kube.read_ca_bundle)
    failures = 0
    try:
        for name, error in sorted(gateways.broken.items()):
            failures += 1
            print(f"FAIL {name}: {error.message}")
        for driver in gateways:
            try:
                print(f"ok   {driver.name} ({driver.type}): {await driver.check()}")
            except GatewayError as exc:
                failures += 1
                print(f"FAIL {driver.name} ({driver.type}): {exc.reason}: {exc.message}")
    finally:
        await gateways.aclose()
    default = settings.default_gateway_name
    print(f"default gateway: {default}")
    return 1 if failures else 0
