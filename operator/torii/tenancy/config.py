"""The tenancy policy of a gateway connection, as the platform team writes it (Helm values -> torii.yaml).

The defaults are safe for many tenants sharing one gateway: any namespace may publish, but never shadow
another namespace's paths, never send traffic to link-local metadata addresses or to the gateway's own admin
endpoint, never set escape-hatch fields that run code or change routing, auth, certificates or policies, never
give OAuth clients a policy, never adopt. `mode: singleTeam` loosens all of that in one value for an install
that serves one team (explicit rules still win).
"""

from __future__ import annotations

from enum import StrEnum
from fnmatch import fnmatchcase
from ipaddress import ip_network
from typing import Any

from pydantic import Field, field_validator

from torii.models.common import CamelModel

# Cloud metadata and other link-local services: never an upstream by default.
LINK_LOCAL = ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"]


class TenancyMode(StrEnum):
    MULTI_TENANT = "multiTenant"
    SINGLE_TEAM = "singleTeam"


def matches(patterns: list[str], value: str) -> bool:
    """Shell-style patterns (`team-*`, `*`), case-sensitive."""
    return any(fnmatchcase(value, p) for p in patterns)


class PathRules(CamelModel):
    """Listen paths each namespace may use. Whatever is set here, a path that shadows (is a prefix of, or lies
    under) a path another namespace's API serves on the same gateway and host is refused."""

    prefixes: list[str] = Field(
        default_factory=list,
        description="Allowed path prefixes for every namespace; `{namespace}` is replaced by the object's "
        "namespace, e.g. `/{namespace}/`. Empty: any path, except for the namespaces byNamespace names.",
    )
    by_namespace: dict[str, list[str]] = Field(
        default_factory=dict, description="Allowed path prefixes of particular namespaces (added to prefixes)."
    )

    def allowed(self, namespace: str) -> list[str] | None:
        """The prefixes `namespace` may use, or None when any path is allowed (no rule names it)."""
        if not self.prefixes and namespace not in self.by_namespace:
            return None
        return [p.replace("{namespace}", namespace) for p in self.prefixes] + self.by_namespace.get(namespace, [])


class HostRules(CamelModel):
    """Hosts each namespace may publish on, where an escape hatch sets one (Tyk `domain`, Otoroshi `hosts`,
    `domain`, `subdomain`, the hosts of a route's `frontend.domains`); such fields are refused by the default
    escape-hatch rules in the first place."""

    patterns: list[str] = Field(
        default_factory=list,
        description="Allowed host patterns for every namespace; `{namespace}` is replaced, e.g. "
        "`{namespace}.apps.example.com`, `*.{namespace}.example.com`.",
    )
    by_namespace: dict[str, list[str]] = Field(
        default_factory=dict, description="Allowed host patterns of particular namespaces."
    )

    def allowed(self, namespace: str) -> list[str]:
        return [p.replace("{namespace}", namespace) for p in self.patterns] + self.by_namespace.get(namespace, [])


class UpstreamRules(CamelModel):
    """Where a namespace's APIs may send traffic (spec.upstream, and escape-hatch fields that name a target)."""

    allowed_hosts: list[str] = Field(
        default_factory=list, description="Host patterns upstreams must match (e.g. `*.{namespace}.svc`). Empty: any."
    )
    denied_hosts: list[str] = Field(default_factory=list, description="Host patterns upstreams must not match.")
    allowed_cidrs: list[str] = Field(
        default_factory=list, description="Networks upstream addresses must be in. Empty: any."
    )
    denied_cidrs: list[str] = Field(
        default_factory=lambda: list(LINK_LOCAL),
        description="Networks upstream addresses must not be in. Default: link-local and cloud metadata addresses.",
    )
    deny_gateway_admin: bool = Field(
        default=True,
        description="Refuse upstreams that reach the gateway's own admin endpoint (its host and port, and "
        "loopback on its port).",
    )
    resolve_names: bool = Field(
        default=True,
        description="Resolve upstream host names and check every address against the CIDR rules (a name "
        "pointing at a denied address is refused).",
    )

    @field_validator("allowed_cidrs", "denied_cidrs")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            ip_network(value, strict=False)  # ValueError names the bad network
        return values

    def allowed_host_patterns(self, namespace: str) -> list[str]:
        return [p.replace("{namespace}", namespace) for p in self.allowed_hosts]


class EscapeHatchRules(CamelModel):
    """Which fields of `spec.tyk` / `spec.otoroshi` a namespace may set. Paths are dotted, `*` matches one
    segment (a version name, a list index) and a rule covers everything under it."""

    allowed: list[str] | None = Field(
        default=None,
        description="Allowed field paths; `*` alone allows every field. Default: the gateway type's safe list "
        "(multiTenant) or everything (singleTeam).",
    )
    denied: list[str] | None = Field(
        default=None,
        description="Denied field paths, checked after `allowed`. Default: fields that run code or change "
        "routing, auth, certificates, policies or outbound targets (multiTenant); none (singleTeam).",
    )


class AdoptionGrant(CamelModel):
    """Which namespaces may adopt existing gateway objects (spec.adopt): only objects no Torii object owns,
    never the connection's own admin credentials."""

    namespaces: list[str] = Field(default_factory=list, description="Namespace patterns allowed to adopt.")
    credentials: bool = Field(
        default=False,
        description="Whether a credential read from the gateway (an adopted key's secret, an OAuth client's "
        "secret) may be written into the tenant's Secret. Without it an adopted key keeps working for its "
        "clients but Torii does not deliver it.",
    )


class Tenancy(CamelModel):
    """The tenancy policy of a gateway connection."""

    mode: TenancyMode = Field(
        default=TenancyMode.MULTI_TENANT,
        description="`multiTenant` (default): the safe defaults. `singleTeam`: one trusted team; escape hatches, "
        "OAuth policies and adoption (with credentials) are open unless set below.",
    )
    namespaces: list[str] = Field(
        default_factory=lambda: ["*"], description="Namespace patterns that may use this connection."
    )
    listen_paths: PathRules = Field(default_factory=PathRules, description="Listen path rules.")
    hosts: HostRules = Field(default_factory=HostRules, description="Host rules.")
    upstreams: UpstreamRules = Field(default_factory=UpstreamRules, description="Upstream rules.")
    escape_hatch: EscapeHatchRules = Field(default_factory=EscapeHatchRules, description="Escape hatch rules.")
    oauth_policies: list[str] | None = Field(
        default=None,
        description="Tyk policy ids OAuthClient.spec.policy may name (`*`: any). Default: none (multiTenant), "
        "any (singleTeam).",
    )
    adoption: AdoptionGrant | None = Field(
        default=None,
        description="Who may adopt. Default: nobody (multiTenant); every namespace, with credentials (singleTeam).",
    )

    @property
    def single_team(self) -> bool:
        return self.mode == TenancyMode.SINGLE_TEAM

    def uses(self, namespace: str) -> bool:
        return matches(self.namespaces, namespace)

    def adoption_grant(self) -> AdoptionGrant:
        if self.adoption is not None:
            return self.adoption
        return AdoptionGrant(namespaces=["*"], credentials=True) if self.single_team else AdoptionGrant()

    def oauth_policy_allowed(self, policy: str) -> bool:
        allowed = self.oauth_policies if self.oauth_policies is not None else (["*"] if self.single_team else [])
        return "*" in allowed or policy in allowed


def chart_schema_definitions() -> dict[str, Any]:
    """JSON Schema definitions of the tenancy policy, for the Helm chart's values.schema.json (`make crds`
    refreshes them; a unit test fails when they drift): a bad tenancy value fails `helm install`, named."""
    schema = Tenancy.model_json_schema(by_alias=True, ref_template="#/definitions/{model}")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, "Tenancy": schema}
