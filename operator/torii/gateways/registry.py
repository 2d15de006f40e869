"""The configured gateway connections, as drivers, looked up by the name resources use in `spec.gateway`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

from torii.gateways.base import GatewayDriver
from torii.gateways.errors import ConfigurationError, GatewayError
from torii.gateways.http import CallObserver, tls_context
from torii.gateways.otoroshi import OtoroshiDriver
from torii.gateways.tyk import TykDriver
from torii.settings import (
    CaBundleRef,
    GatewayConnection,
    GatewayType,
    NodeServiceRef,
    OperatorSettings,
    SecretKeyRef,
)

log = logging.getLogger("torii")

SecretReader = Callable[[SecretKeyRef], Awaitable[str]]
CaReader = Callable[[CaBundleRef], Awaitable[str]]
ObserverFactory = Callable[[str], CallObserver]
# The ready endpoints of a Service as admin URLs, each time they change (kube.endpoint_urls).
EndpointFollower = Callable[[NodeServiceRef], AsyncIterator[list[str]]]


# The key of every gateway name no connection has (not a DNS label, so no connection's name).
UNKNOWN = "?"


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

    def key_of(self, name: str | None) -> str:
        """The connection `spec.gateway` reaches (None or "": the default), as the key of per-gateway state (the
        retries' waits, the handed-off queues): one key per connection however an object names it, and one for
        every name no connection has (UNKNOWN), so names a tenant makes up add no entries."""
        wanted = name or self.default
        return wanted if wanted in self._drivers or wanted in self._broken else UNKNOWN

    def __iter__(self) -> Iterator[GatewayDriver]:
        return iter(self._drivers.values())

    @property
    def broken(self) -> dict[str, GatewayError]:
        return dict(self._broken)

    async def aclose(self) -> None:
        for driver in self._drivers.values():
            await driver.aclose()


async def build_driver(
    conn: GatewayConnection,
    settings: OperatorSettings,
    read_secret: SecretReader,
    observer: CallObserver | None,
    read_ca: CaReader | None = None,
    endpoints: EndpointFollower | None = None,
) -> GatewayDriver:
    plain = [u for u in (conn.url, *conn.nodes) if u.startswith("http://")]
    if plain and not conn.insecure_http:
        raise ConfigurationError(
            f"url {plain[0]} is plain http: the admin credentials would cross the network in clear. Use https "
            "(with caBundle for a private CA), or set insecureHttp: true to accept it"
        )
    if plain:
        log.warning("gateway %s: admin API over plain http (insecureHttp: true): credentials are not encrypted",
                    conn.name)  # fmt: skip
    ca_pem = None
    if conn.ca_bundle is not None:
        if read_ca is None:
            raise ConfigurationError("caBundle is set but this command cannot read it")
        ca_pem = await read_ca(conn.ca_bundle)
    try:
        verify = tls_context(ca_pem)
    except ValueError as exc:
        raise ConfigurationError(f"caBundle {conn.ca_bundle.name if conn.ca_bundle else ''}: not a PEM bundle "
                                 f"({type(exc).__name__})") from None  # fmt: skip
    if conn.type == GatewayType.TYK:
        assert conn.secret_ref is not None  # enforced by GatewayConnection's validator
        # Commands that only read (check, import) do not follow the Service: they talk to `url`.
        service = conn.node_service
        return TykDriver(
            conn.name,
            conn.url,
            await read_secret(conn.secret_ref),
            verify=verify,
            timeout=conn.timeout_seconds or 30.0,
            org_id=conn.org_id,
            id_prefix=settings.id_prefix,
            observer=observer,
            reload_quiet=settings.reload_quiet_seconds,
            reload_max_delay=settings.reload_max_delay_seconds,
            reload_scope=conn.reload_scope,
            nodes=conn.nodes,
            node_check_seconds=conn.node_check_seconds,
            follow=(lambda: endpoints(service)) if service is not None and endpoints is not None else None,
            follow_where=f"behind Service {service.namespace}/{service.name}" if service is not None else "",
            session_cache_seconds=conn.session_cache_seconds,
            api_health=conn.api_health,
        )
    assert conn.client_id_ref is not None and conn.client_secret_ref is not None
    return OtoroshiDriver(
        conn.name,
        conn.url,
        await read_secret(conn.client_id_ref),
        await read_secret(conn.client_secret_ref),
        verify=verify,
        timeout=conn.timeout_seconds or 10.0,
        api_host=conn.api_host,
        domain=conn.domain,
        subdomain=conn.subdomain,
        group=conn.group,
        proxy_url=conn.proxy_url,
        state_sync_seconds=conn.state_sync_seconds,
        entity=conn.entity,
        id_prefix=settings.id_prefix,
        observer=observer,
    )


async def build_gateways(
    settings: OperatorSettings,
    read_secret: SecretReader,
    observers: ObserverFactory | None = None,
    read_ca: CaReader | None = None,
    endpoints: EndpointFollower | None = None,
) -> Gateways:
    drivers: dict[str, GatewayDriver] = {}
    broken: dict[str, GatewayError] = {}
    for conn in settings.gateways:
        try:
            observer = observers(conn.name) if observers else None
            drivers[conn.name] = await build_driver(conn, settings, read_secret, observer, read_ca, endpoints)
        except GatewayError as exc:
            broken[conn.name] = ConfigurationError(f"gateway {conn.name} is misconfigured: {exc.message}")
    return Gateways(drivers, settings.default_gateway_name, broken)
