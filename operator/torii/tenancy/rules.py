"""The tenancy checks of each kind, run before anything reaches a gateway. Each raises PolicyViolation naming
the field and the rule; none names another namespace or its objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torii.gateways.base import dotted_get
from torii.gateways.errors import PolicyViolation
from torii.models.gatewayapi import GatewayAPISpec
from torii.models.gatewaykey import TYK_KEY_OWNED_FIELDS, GatewayKeySpec
from torii.models.oauthclient import OAuthClientSpec
from torii.tenancy.config import Tenancy, matches
from torii.tenancy.escape_hatch import ambiguous_keys, secret_references, violations
from torii.tenancy.upstream import Resolver, resolve, upstream_violations

# Escape-hatch fields that carry a host, per gateway type (checked against the host rules when allowed at all).
HOST_FIELDS = {"tyk": ("domain",), "otoroshi": ("domain", "subdomain", "hosts"),
               "otoroshi-routes": ("frontend.domains",)}  # fmt: skip


@dataclass(frozen=True)
class Connection:
    """What the checks need to know of a gateway connection."""

    name: str
    type: str
    tenancy: Tenancy
    admin_urls: list[str] = field(default_factory=list)
    # Escape-hatch fields Torii overrides with its neutral fields (setting them changes nothing).
    neutral_fields: frozenset[str] = frozenset()
    # What the escape hatch holds (escape_hatch.DEFAULTS): the gateway type, or `otoroshi-routes`.
    dialect: str = ""

    @property
    def hatch_dialect(self) -> str:
        return self.dialect or self.type


def refuse(conn: Connection, problems: list[str]) -> None:
    if problems:
        raise PolicyViolation(
            f"refused by the tenancy policy of gateway {conn.name}: " + "; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        )  # fmt: skip


def check_namespace(conn: Connection, namespace: str) -> None:
    if not conn.tenancy.uses(namespace):
        refuse(conn, [f"spec.gateway: namespace {namespace} may not use this gateway (tenancy.namespaces)"])


def check_adoption(conn: Connection, namespace: str, field_name: str) -> None:
    grant = conn.tenancy.adoption_grant()
    if not matches(grant.namespaces, namespace):
        refuse(conn, [f"{field_name}: namespace {namespace} may not adopt existing gateway objects "
                      "(tenancy.adoption.namespaces)"])  # fmt: skip


def may_read_adopted_credentials(conn: Connection, namespace: str) -> bool:
    grant = conn.tenancy.adoption_grant()
    return grant.credentials and matches(grant.namespaces, namespace)


def escape_hatch_of(conn: Connection, spec: GatewayAPISpec) -> dict[str, Any] | None:
    return spec.tyk if conn.type == "tyk" else spec.otoroshi


async def check_api(conn: Connection, namespace: str, spec: GatewayAPISpec, *, resolver: Resolver = resolve) -> None:
    check_namespace(conn, namespace)
    tenancy = conn.tenancy
    problems: list[str] = []
    prefixes = tenancy.listen_paths.allowed(namespace)
    if prefixes is not None and not any(spec.listen_path.startswith(p) for p in prefixes):
        problems.append(f"spec.listenPath: {spec.listen_path} must start with one of {', '.join(prefixes) or '(none)'}"
                        " (tenancy.listenPaths)")  # fmt: skip
    hatch_name = f"spec.{conn.type}"
    hatch = escape_hatch_of(conn, spec)
    if hatch:
        problems += [
            f"{hatch_name}.{v} (tenancy.escapeHatch)"
            for v in violations(conn.hatch_dialect, hatch, tenancy.escape_hatch, single_team=tenancy.single_team,
                                ignored=set(conn.neutral_fields))
        ]  # fmt: skip
        allowed_hosts = tenancy.hosts.allowed(namespace)
        for name in HOST_FIELDS.get(conn.hatch_dialect, ()):
            present, value = dotted_get(hatch, name)
            if present and (allowed_hosts or not tenancy.single_team):
                values = value if isinstance(value, list) else [value]
                if name == "frontend.domains":  # `host/path`: the host is what the rule is about
                    values = [v.partition("/")[0] if isinstance(v, str) else v for v in values]
                problems += [
                    f"{hatch_name}.{name}: {value} is not a host of namespace {namespace} (tenancy.hosts)"
                    for value in values
                    if not (isinstance(value, str) and matches(allowed_hosts, value))
                ]
    neutral = spec.model_dump(mode="json", exclude={"tyk", "otoroshi"})
    if not tenancy.single_team and secret_references(conn.type, neutral):
        problems.append("spec: holds a reference the gateway would expand into its own secrets (env://, "
                        "secrets://, $secret_..., ${...})")  # fmt: skip
    problems += await upstream_violations(
        spec.upstream.urls, tenancy.upstreams, namespace, conn.admin_urls, resolver=resolver
    )
    if spec.jwt is not None and spec.jwt.jwks_url:
        # The gateway fetches it: the same rules as an upstream (no admin endpoint, no denied network).
        problems += await upstream_violations([spec.jwt.jwks_url], tenancy.upstreams, namespace, conn.admin_urls,
                                              field="spec.jwt.jwksUrl", resolver=resolver)  # fmt: skip
    if spec.adopt is not None:
        try:
            check_adoption(conn, namespace, "spec.adopt")
        except PolicyViolation as exc:
            problems.append(exc.message.split(": ", 1)[1])
    refuse(conn, problems)


def check_key(conn: Connection, namespace: str, spec: GatewayKeySpec) -> None:
    check_namespace(conn, namespace)
    if spec.adopt is not None:
        check_adoption(conn, namespace, "spec.adopt")
    hatch = spec.tyk if conn.type == "tyk" else spec.otoroshi
    if hatch and conn.type == "tyk":
        # A session's own fields only shape this key; but Tyk reads field names case-insensitively, so a
        # spelling of an owned field (`Access_Rights`) must not pass for another field.
        refuse(conn, [f"spec.tyk.{'.'.join(p)} is ambiguous (Tyk reads field names case-insensitively)"
                      for p in ambiguous_keys(hatch)] + [
            f"spec.tyk.{k} is Torii's" for k in hatch if k.lower() in {o.lower() for o in TYK_KEY_OWNED_FIELDS}
            or (k.lower() == "meta_data" and k != "meta_data")])  # fmt: skip


def check_oauth_client(conn: Connection, namespace: str, spec: OAuthClientSpec) -> None:
    check_namespace(conn, namespace)
    if spec.policy is not None and not conn.tenancy.oauth_policy_allowed(spec.policy):
        refuse(conn, [f"spec.policy: {spec.policy} is not a policy OAuth clients may use (tenancy.oauthPolicies)"])
    if spec.adopt is not None:
        check_adoption(conn, namespace, "spec.adopt")
