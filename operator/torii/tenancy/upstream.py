"""Upstream rules: where a namespace's APIs may send traffic.

Checked on the URL's host (patterns) and on its addresses (CIDRs): an IP literal as written, a name as the
operator resolves it. The operator runs beside the gateway (same cluster DNS), so what it resolves is what the
gateway will reach; a name that does not resolve now is not refused (it cannot be checked, and a Service may
not exist yet), and a name whose records change later is re-checked by every drift pass.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from urllib.parse import urlsplit

from torii.tenancy.config import UpstreamRules, matches

Address = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[list[Address]]]
RESOLVE_TIMEOUT = 2.0


async def resolve(host: str, port: int) -> list[Address]:
    """The addresses `host` resolves to now ([] when it does not resolve in time)."""
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError):
        return []
    return sorted({ip_address(info[4][0]) for info in infos}, key=str)


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def literal(host: str) -> Address | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


async def addresses(host: str, port: int, resolver: Resolver) -> list[Address]:
    if (ip := literal(host)) is not None:
        return [ip]
    if host == "localhost":
        return [ip_address("127.0.0.1"), ip_address("::1")]
    return await resolver(host, port)


async def upstream_violations(
    urls: list[str],
    rules: UpstreamRules,
    namespace: str,
    admin_urls: list[str],
    *,
    field: str = "spec.upstream",
    resolver: Resolver = resolve,
) -> list[str]:
    """The rules each upstream URL breaks, as `<field>: <host> <why>` (no address of anything else is named)."""
    found: list[str] = []
    admins = [host_port(u) for u in admin_urls]
    admin_addresses = {
        (ip, port) for host, port in admins for ip in await addresses(host, port, resolver)
    } if rules.deny_gateway_admin else set()  # fmt: skip
    denied = [ip_network(c, strict=False) for c in rules.denied_cidrs]
    allowed = [ip_network(c, strict=False) for c in rules.allowed_cidrs]
    allowed_hosts = rules.allowed_host_patterns(namespace)
    for url in urls:
        host, port = host_port(url)
        where = f"{field}: {host}"
        if matches(rules.denied_hosts, host):
            found.append(f"{where} matches upstreams.deniedHosts")
            continue
        if allowed_hosts and not matches(allowed_hosts, host):
            found.append(f"{where} is not in upstreams.allowedHosts ({', '.join(allowed_hosts)})")
            continue
        ips = await addresses(host, port, resolver) if (rules.resolve_names or literal(host)) else []
        if rules.deny_gateway_admin and (
            (host, port) in admins
            or any((ip, port) in admin_addresses for ip in ips)
            or (any(ip.is_loopback for ip in ips) and port in {p for _, p in admins})
        ):
            found.append(f"{where}:{port} is the gateway's own admin endpoint")
            continue
        if any(ip in net for ip in ips for net in denied):
            found.append(f"{where} is in a denied network (upstreams.deniedCidrs: link-local and metadata by default)")
            continue
        if allowed and ips and not all(any(ip in net for net in allowed) for ip in ips):
            found.append(f"{where} is outside upstreams.allowedCidrs")
    return found
