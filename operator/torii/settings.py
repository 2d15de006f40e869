"""Operator configuration: a YAML file (Helm renders it into a ConfigMap) overridden by `TORII_*` env vars.

Gateway connections are named here once, and GatewayAPI/GatewayKey/OAuthClient objects refer to them by name.
Admin credentials are never in this file: each connection names the Kubernetes Secret that holds them.
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from torii.models.common import DNS_LABEL, CamelModel
from torii.tenancy.config import Tenancy

CONFIG_FILE_ENV = "TORII_CONFIG_FILE"
# kopf workers per kind at once (`maxObjectWorkers`). Unbounded, deleting 10,000 objects at once held 10,000
# workers until their gateway confirmed: 496 MiB, next to the chart's 512 MiB limit (1024: 248 MiB, the deletion
# 178 s instead of 132). Twice the held changes, so a burst's other objects keep moving past the held ones.
DEFAULT_OBJECT_WORKERS = 1024


class GatewayType(StrEnum):
    TYK = "tyk"
    OTOROSHI = "otoroshi"


TykReloadScope = Literal["node", "group"]
OtoroshiEntity = Literal["routes", "services"]


class SecretKeyRef(CamelModel):
    """One key of a Kubernetes Secret."""

    namespace: str = Field(description="Namespace of the Secret.")
    name: str = Field(description="Name of the Secret.")
    key: str = Field(description="Key within the Secret's data.")


class CaBundleRef(CamelModel):
    """A PEM bundle of the CAs that sign a gateway's admin certificate: one key of a Secret or a ConfigMap."""

    kind: Literal["Secret", "ConfigMap"] = Field(default="Secret", description="`Secret` or `ConfigMap`.")
    namespace: str = Field(description="Namespace of the object.")
    name: str = Field(description="Name of the object.")
    key: str = Field(default="ca.crt", description="Key holding the PEM bundle. Default `ca.crt`.")


class NodeServiceRef(CamelModel):
    """A Kubernetes Service whose ready endpoints are a gateway's nodes (followed through its EndpointSlices)."""

    namespace: str = Field(description="Namespace of the Service.")
    name: str = Field(description="Name of the Service.")
    port: str | int = Field(
        description="The admin port: its name in the Service's EndpointSlices (e.g. `http`), or its number."
    )
    scheme: Literal["http", "https"] = Field(default="https", description="`https` (default) or `http`.")


class GatewayConnection(CamelModel):
    """How the operator reaches one gateway's admin API."""

    name: str = Field(pattern=DNS_LABEL, max_length=63, description="Name resources use in `spec.gateway`.")
    type: GatewayType = Field(description="`tyk` or `otoroshi`.")
    url: str = Field(pattern=r"^https?://", description="Admin API base URL, e.g. `https://tyk-gateway:8080`.")
    ca_bundle: CaBundleRef | None = Field(
        default=None, description="CAs to verify the admin API's https certificate with (default: the system's)."
    )
    insecure_http: bool = Field(
        default=False,
        description="Allow an `http://` admin URL: admin credentials then cross the network in clear. Refused "
        "unless set (the operator logs it once at start).",
    )
    tenancy: Tenancy | None = Field(
        default=None, description="This connection's tenancy policy (default: the operator's `tenancy`)."
    )
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Timeout of one admin call (default: Tyk 30 s, its blocking reloads "
        "take long on a big gateway; Otoroshi 10 s).",
    )
    # Tyk
    secret_ref: SecretKeyRef | None = Field(default=None, description="Tyk: the gateway `secret` (admin API key).")
    org_id: str = Field(default="torii", description="Tyk: org_id of the APIs and keys Torii creates.")
    api_health: bool = Field(
        default=False,
        description="Tyk: copy `GET /tyk/health/` figures into each GatewayAPI's status.health on every drift "
        "pass (one admin call per API per pass; needs `health_check.enable_health_checks` in tyk.conf).",
    )
    session_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="Tyk: how long its nodes cache a key's session (10 s in Tyk; 0 when tyk.conf sets "
        "`local_session_cache.disable_cached_session_state`). A revoked key is reported revoked after this.",
    )
    nodes: list[str] = Field(
        default_factory=list,
        description="Tyk: the admin URL of every gateway node (Tyk OSS keeps API definitions per node): each "
        "GatewayAPI is written to every node and is Ready only when every node serves it. Keys and OAuth clients "
        "(in the Redis the nodes share) go through `url`, which may be any node or the nodes' Service. Default: "
        "`url` alone.",
    )
    node_service: NodeServiceRef | None = Field(
        default=None,
        description="Tyk: a Service whose ready endpoints are the gateway's nodes, followed as they come and go "
        "(EndpointSlices, watched): every ready endpoint gets every API. Instead of `nodes`; `url` (keys, OAuth "
        "clients) may then be the Service itself.",
    )
    node_check_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Tyk with several nodes: how often each node is looked at (one `/hello` and one API read), so "
        "that a node back from an outage or restarted empty is filled at once.",
    )
    reload_scope: TykReloadScope = Field(
        default="node",
        description="Tyk: `node` reloads the node behind `url` and waits for it (`/tyk/reload/?block=true`); "
        "`group` reloads every node of the cluster (`/tyk/reload/group`) and confirms on this node.",
    )
    # Otoroshi
    client_id_ref: SecretKeyRef | None = Field(default=None, description="Otoroshi: admin API key client id.")
    client_secret_ref: SecretKeyRef | None = Field(default=None, description="Otoroshi: admin API key secret.")
    api_host: str = Field(default="otoroshi-api.oto.tools", description="Otoroshi: Host of the admin API.")
    domain: str = Field(default="oto.tools", description="Otoroshi: domain services are published under.")
    subdomain: str = Field(default="api", description="Otoroshi: subdomain of published services.")
    group: str = Field(default="default", description="Otoroshi: service group of published services.")
    proxy_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Otoroshi: where its proxy takes traffic, to confirm a service is served (default: `url`).",
    )
    state_sync_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Otoroshi: its `otoroshi.next.state-sync-interval` in seconds. Admin writes reach the proxy at "
        "the next state sync, so Ready waits at least this long after a change.",
    )
    entity: OtoroshiEntity = Field(
        default="routes",
        description="Otoroshi: what a GatewayAPI becomes. `routes` (default; Otoroshi 1.5.3 and later, the entity "
        "of its current proxy engine) or `services` (service descriptors: deprecated by Otoroshi, removed in v18; "
        "for older sites). Switching migrates Torii's objects in place, without a failed request.",
    )

    @model_validator(mode="after")
    def _node_urls(self) -> GatewayConnection:
        for url in self.nodes:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"gateway {self.name}: nodes: {url!r} is not an http(s) URL")
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError(f"gateway {self.name}: nodes: each node once")
        if self.nodes and self.node_service is not None:
            raise ValueError(f"gateway {self.name}: set nodes or nodeService, not both")
        if self.type != GatewayType.TYK and (self.nodes or self.node_service is not None):
            raise ValueError(f"gateway {self.name}: nodes and nodeService are for Tyk connections")
        if self.node_service is not None and self.node_service.scheme == "http" and not self.insecure_http:
            raise ValueError(f"gateway {self.name}: nodeService.scheme http needs insecureHttp: true")
        return self

    @model_validator(mode="after")
    def _credentials_for_type(self) -> GatewayConnection:
        if self.type == GatewayType.TYK and self.secret_ref is None:
            raise ValueError(f"gateway {self.name}: a tyk connection needs secretRef")
        if self.type == GatewayType.OTOROSHI and (self.client_id_ref is None or self.client_secret_ref is None):
            raise ValueError(f"gateway {self.name}: an otoroshi connection needs clientIdRef and clientSecretRef")
        return self


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class OperatorSettings(BaseSettings):
    """Everything the operator is configured with."""

    model_config = SettingsConfigDict(
        env_prefix="TORII_", env_nested_delimiter="__", populate_by_name=True, extra="forbid"
    )

    gateways: list[GatewayConnection] = Field(default_factory=list, description="Named gateway connections.")
    default_gateway: str | None = Field(
        default=None, alias="defaultGateway", description="Used when spec.gateway is empty (default: the first)."
    )
    id_prefix: str = Field(
        default="torii",
        alias="idPrefix",
        pattern=r"^[a-z0-9-]{1,20}$",
        description="Prefix of gateway ids, so several clusters can share one gateway.",
    )
    drift_interval_seconds: float = Field(
        default=60.0,
        alias="driftIntervalSeconds",
        gt=0,
        description="How often each object is compared with its gateway.",
    )
    max_held_changes: int = Field(
        default=512,
        alias="maxHeldChanges",
        ge=0,
        description="Changes converged inside kopf's workers at once (each holds its object until its gateway "
        "serves it); further changes are converged by Torii alone, which writes their status itself. Bounds the "
        "memory of big bursts.",
    )
    max_object_workers: int | None = Field(
        default=DEFAULT_OBJECT_WORKERS,
        alias="maxObjectWorkers",
        ge=1,
        description="Objects of each kind kopf processes at once (one worker each, holding the object's body "
        "until its handler and patches are done); the others wait as their latest watch event. Bounds the memory "
        "of big bursts, and slows big deletions (each waits for its gateway in its worker). Default 1024; null: "
        "no limit. Must be above maxHeldChanges.",
    )
    reload_quiet_seconds: float = Field(default=0.25, alias="reloadQuietSeconds", ge=0)
    reload_max_delay_seconds: float = Field(default=2.0, alias="reloadMaxDelaySeconds", gt=0)
    namespaces: list[str] = Field(default_factory=list, description="Watched namespaces; empty = cluster-wide.")
    log_format: LogFormat = Field(default=LogFormat.TEXT, alias="logFormat")
    metrics_port: int | None = Field(default=None, alias="metricsPort", description="Prometheus metrics port.")
    metrics_bind_address: str = Field(
        default="127.0.0.1",
        alias="metricsBindAddress",
        description="Address the metrics port binds (the chart sets 0.0.0.0 in the pod, behind its NetworkPolicy).",
    )
    tenancy: Tenancy = Field(
        default_factory=Tenancy, description="Tenancy policy of every connection that sets none of its own."
    )

    def tenancy_of(self, conn: GatewayConnection) -> Tenancy:
        return conn.tenancy or self.tenancy

    @model_validator(mode="after")
    def _check_gateways(self) -> OperatorSettings:
        names = [g.name for g in self.gateways]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"gateway names must be unique; duplicated: {', '.join(sorted(duplicates))}")
        if self.default_gateway is not None and self.default_gateway not in names:
            raise ValueError(f"defaultGateway {self.default_gateway!r} is not one of the gateways: {names}")
        return self

    @model_validator(mode="after")
    def _check_workers(self) -> OperatorSettings:
        # Held changes wait inside workers (a key for its API up to 15 s); with no worker left over, the API
        # it waits for could not be handled meanwhile, and no change would ever be handed off.
        if self.max_object_workers is not None and self.max_object_workers <= self.max_held_changes:
            raise ValueError(
                f"maxObjectWorkers ({self.max_object_workers}) must be greater than maxHeldChanges "
                f"({self.max_held_changes}): held changes wait inside workers, other objects need free ones"
            )
        return self

    @property
    def default_gateway_name(self) -> str | None:
        return self.default_gateway or (self.gateways[0].name if self.gateways else None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=Path(config_file)))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> OperatorSettings:
    if config_file is not None:
        os.environ[CONFIG_FILE_ENV] = str(config_file)
    return OperatorSettings(**overrides)
