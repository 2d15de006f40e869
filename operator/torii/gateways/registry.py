"""The configured gateway connections, as drivers, looked up by the name resources use in `spec.gateway`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

from torii.gateways.base import GatewayDriver
from torii.gateways.errors import ConfigurationError, GatewayError
from torii.gateways.http import CallObserver
from torii.gateways.otoroshi import OtoroshiDriver
from torii.gateways.tyk import TykDriver
from torii.settings import GatewayConnection, GatewayType, OperatorSettings, SecretKeyRef

SecretReader = Callable[[SecretKeyRef], Awaitable[str]]
ObserverFactory = Callable[[str], CallObserver]


class Gateways:
    def __init__(
        self,
        drivers: dict[str, GatewayDriver],
        default: str | None,
        broken: dict[str, GatewayError] | None = None,
    ) -> None:
        self._drivers = drivers
        self._broken = broken or {}  # connections whose set-up failed: only their objects are affected
        self.default = default

    def get(self, name: str | None) -> GatewayDriver:
        """The driver for `spec.gateway` (None = the default); ConfigurationError names what to fix."""
        wanted = name or self.default
        if wanted is None:
            raise ConfigurationError("spec.gateway is empty and the operator has no default gateway configured")
        if wanted in self._broken:
            raise self._broken[wanted]
        try:
            return self._drivers[wanted]
        except KeyError:
            known = ", ".join(sorted([*self._drivers, *self._broken])) or "none"
            raise ConfigurationError(
                f"spec.gateway: no gateway connection named {wanted!r} is configured (configured: {known})"
            ) from None

    def __iter__(self) -> Iterator[GatewayDriver]:
        return iter(self._drivers.values())

    @property
    def broken(self) -> dict[str, GatewayError]:
        return dict(self._broken)

    async def aclose(self) -> None:
        for driver in self._drivers.values():
            await driver.aclose()


async def build_driver(
    conn: GatewayConnection, settings: OperatorSettings, read_secret: SecretReader, observer: CallObserver | None
) -> GatewayDriver:
    if conn.type == GatewayType.TYK:
        assert conn.secret_ref is not None  # enforced by GatewayConnection's validator
        return TykDriver(
            conn.name,
            conn.url,
            await read_secret(conn.secret_ref),
            org_id=conn.org_id,
            id_prefix=settings.id_prefix,
            observer=observer,
            reload_quiet=settings.reload_quiet_seconds,
            reload_max_delay=settings.reload_max_delay_seconds,
            reload_scope=conn.reload_scope,
            session_cache_seconds=conn.session_cache_seconds,
            api_health=conn.api_health,
        )
    assert conn.client_id_ref is not None and conn.client_secret_ref is not None
    return OtoroshiDriver(
        conn.name,
        conn.url,
        await read_secret(conn.client_id_ref),
        await read_secret(conn.client_secret_ref),
        api_host=conn.api_host,
        domain=conn.domain,
        subdomain=conn.subdomain,
        group=conn.group,
        proxy_url=conn.proxy_url,
        state_sync_seconds=conn.state_sync_seconds,
        id_prefix=settings.id_prefix,
        observer=observer,
    )


async def build_gateways(
    settings: OperatorSettings, read_secret: SecretReader, observers: ObserverFactory | None = None
) -> Gateways:
    drivers: dict[str, GatewayDriver] = {}
    broken: dict[str, GatewayError] = {}
    for conn in settings.gateways:
        try:
            observer = observers(conn.name) if observers else None
            drivers[conn.name] = await build_driver(conn, settings, read_secret, observer)
        except GatewayError as exc:
            broken[conn.name] = ConfigurationError(f"gateway {conn.name} is misconfigured: {exc.message}")
    return Gateways(drivers, settings.default_gateway_name, broken)
