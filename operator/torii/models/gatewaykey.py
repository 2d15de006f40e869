"""GatewayKey: an access key for GatewayAPIs, delivered as a Kubernetes Secret."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from torii.models.common import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    CamelModel,
    DeletionPolicy,
    SecretKeySelector,
    SecretTemplate,
    StatusBase,
    adopt_id_field,
    adoption_immutable,
    bounded_escape_hatch,
    cel,
    deletion_policy_field,
    gateway_field,
    gateway_metadata_field,
    immutable_once_set,
    secret_name_field,
    validations,
)
from torii.models.gatewayapi import RateLimit, escape_hatch

# Session/ApiKey fields Torii owns: they carry the credential or the access rights derived from spec.apis.
# Policies and authorizations could grant APIs of other namespaces: the neutral fields own access.
TYK_KEY_OWNED_FIELDS = ("access_rights", "org_id", "key", "key_id", "apply_policies", "apply_policy_id")
OTOROSHI_KEY_OWNED_FIELDS = (
    "clientId", "clientSecret", "authorizedEntities", "authorizedGroup", "authorizations", "rotation",
)  # fmt: skip


class ApiRef(CamelModel):
    """A GatewayAPI this key gives access to."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="Name of a GatewayAPI.")
    namespace: str | None = Field(
        default=None,
        max_length=63,
        description="Must be empty or this object's namespace: references to other namespaces are refused.",
    )
    versions: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Tyk API versions the key may use (default: all).",
        json_schema_extra={"items": {"type": "string", "maxLength": 64}},
    )


class KeyType(StrEnum):
    """What the credential is: the GatewayAPIs' `spec.auth` it serves."""

    KEY = "key"
    BASIC_AUTH = "basicAuth"
    JWT = "jwt"


class QuotaPeriod(StrEnum):
    DAY = "day"
    MONTH = "month"


class Quota(CamelModel):
    """At most `max` requests per `period` (Tyk: quota_max/quota_renewal_rate; Otoroshi: daily or monthly quota)."""

    max: int = Field(ge=1, le=10_000_000_000, description="Requests allowed per period.")
    period: QuotaPeriod = Field(description="`day` or `month` (30 days on Tyk).")


class Rotation(CamelModel):
    """Declarative credential rotation."""

    generation: int = Field(
        ge=0,
        le=1_000_000,
        description="Increase to issue a new credential; the old one is revoked after the grace period.",
    )
    grace_period_seconds: int = Field(
        default=3600, ge=0, le=2_592_000, description="How long the previous credential keeps working. Default 3600."
    )


class KeyAdoption(CamelModel):
    """Take over a key that already exists on the gateway: its clients keep their credential."""

    id: str = adopt_id_field(
        "key (Tyk: the key hash `GET /tyk/keys/` lists, or, where Tyk does not hash keys, `sha256:` and the "
        "SHA-256 of the key name, never the key itself; Otoroshi: the clientId)"
    )
    credential_secret_ref: SecretKeySelector | None = Field(
        default=None,
        description="Tyk: a Secret entry holding the existing key (type jwt: the consumer's `kid`, the key's "
        "name), so Torii can deliver it in spec.secretName (type jwt: with the HMAC secret it reads from Tyk, "
        "which the tenancy policy must grant: a kid is no secret, checking it proves no ownership). "
        "Tyk stores only a hash of each key: without this, the adopted key keeps working for its clients but "
        "Torii cannot put it in a Secret (set spec.rotation to issue one it can). Not for type basicAuth: Tyk "
        "never returns a password, even hashed, so a handed-over one could not be checked; the user is adopted "
        "by id and keeps its password. Otoroshi needs none: the gateway returns the clientSecret to its admin "
        "API.",
    )


class GatewayKeySpec(CamelModel):
    """The desired key."""

    model_config = CamelModel.model_config | {
        "json_schema_extra": validations(
            immutable_once_set("gateway"),
            immutable_once_set("secretName"),
            immutable_once_set("type", ": a new credential type is a new GatewayKey"),
            cel(
                "!has(self.adopt) || !has(self.adopt.credentialSecretRef) || !has(self.type) || "
                "self.type != 'basicAuth'",
                "spec.adopt.credentialSecretRef: a basic-auth user is adopted by its id alone (Tyk never returns "
                "a password, so a handed-over one could not be checked); set spec.rotation to issue one Torii "
                "can deliver",
                field_path=".adopt.credentialSecretRef",
            ),
            adoption_immutable("id", "gateway key"),
            cel(
                "has(self.apis) != has(self.apiGroup)",
                "spec: set exactly one of spec.apis and spec.apiGroup",
            ),
            cel(
                "!has(self.tyk) || !has(self.otoroshi)",
                "spec.tyk and spec.otoroshi are mutually exclusive: a key lives on one gateway",
            ),
        )
    }

    gateway: str | None = gateway_field()
    type: KeyType = Field(
        default=KeyType.KEY,
        description="The credential, for APIs of the same spec.auth: `key` (an API key; Otoroshi: a client id and "
        "secret), `basicAuth` (a username and password; the Secret has `username`, `password` and a ready "
        "`Authorization` header) or `jwt` (Tyk: a `kid` and an HMAC `secret` the client signs its HS256 tokens "
        "with, for APIs with spec.auth: jwt and no spec.jwt key of their own). Default `key`. Immutable.",
    )
    apis: list[ApiRef] | None = Field(
        default=None, min_length=1, max_length=32, description="GatewayAPIs (same namespace) the key gives access to."
    )
    api_group: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description="Give access to every GatewayAPI of this namespace whose spec.group is this name "
        "(Otoroshi: a service-group key).",
    )
    rate_limit: RateLimit | None = Field(default=None, description="Requests per window for this key.")
    quota: Quota | None = Field(default=None, description="Request quota for this key.")
    expires: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="When the key stops working (RFC 3339, e.g. 2027-01-01T00:00:00Z). Default: never.",
    )
    enabled: bool = Field(default=True, description="`false` suspends the key without deleting it.")
    tags: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Tags on the gateway key.",
        json_schema_extra={"items": {"type": "string", "maxLength": 128}},
    )
    metadata: dict[str, str] = gateway_metadata_field("key")
    secret_name: str | None = secret_name_field("the credential")
    secret_template: SecretTemplate | None = Field(default=None, description="Labels/annotations for the Secret.")
    rotation: Rotation | None = Field(default=None, description="Declarative rotation of the credential.")
    quota_reset_generation: int | None = Field(
        default=None, ge=0, le=1_000_000, description="Increase to reset the key's live quota counters on the gateway."
    )
    deletion_policy: DeletionPolicy = deletion_policy_field("the key")
    adopt: KeyAdoption | None = Field(
        default=None,
        description="Manage a key that already exists on the gateway instead of issuing one (see `torii "
        "import`): its credential keeps working. Its id is immutable.",
    )
    tyk: dict[str, Any] | None = Field(
        default=None,
        description="Tyk session fields merged over what Torii generates. "
        f"Torii owns {', '.join(TYK_KEY_OWNED_FIELDS)}.",
        json_schema_extra=escape_hatch("spec.tyk", TYK_KEY_OWNED_FIELDS),
    )
    otoroshi: dict[str, Any] | None = Field(
        default=None,
        description="Otoroshi ApiKey fields merged over what Torii generates. "
        f"Torii owns {', '.join(OTOROSHI_KEY_OWNED_FIELDS)}.",
        json_schema_extra=escape_hatch("spec.otoroshi", OTOROSHI_KEY_OWNED_FIELDS),
    )

    _bounded = field_validator("tyk", "otoroshi")(bounded_escape_hatch)

    @property
    def quota_fingerprint(self) -> str:
        return self.quota.model_dump_json() if self.quota else ""


class QuotaState(CamelModel):
    """Live quota figures read from the gateway (no credential)."""

    model_config = CamelModel.model_config | {"extra": "ignore"}

    max: int | None = Field(default=None, description="Quota per period (Tyk) or per day (Otoroshi).")
    remaining: int | None = Field(default=None, description="Requests left in the current period.")
    renews_at: str | None = Field(default=None, description="When the quota renews (Tyk), RFC 3339.")
    remaining_per_day: int | None = Field(default=None, description="Otoroshi: calls left today.")
    remaining_per_month: int | None = Field(default=None, description="Otoroshi: calls left this month.")
    checked_at: str | None = Field(default=None, description="When the figures were read, RFC 3339.")


class GatewayKeyStatus(StatusBase):
    """What the operator observed. Never contains the credential."""

    gateway: str | None = Field(default=None, description="The gateway connection used.")
    secret_name: str | None = Field(default=None, description="The Secret holding the credential.")
    key_id: str | None = Field(default=None, description="Non-secret key id: Tyk key hash, or Otoroshi clientId.")
    scope: str | None = Field(default=None, description="Otoroshi: `services/<id>` or `groups/<id>` the key is under.")
    api_ids: list[str] = Field(default_factory=list, description="Gateway ids of the APIs the key gives access to.")
    quota: QuotaState | None = Field(default=None, description="Live quota state, refreshed periodically.")
    rotation_generation: int | None = Field(default=None, description="The rotation generation applied.")
    quota_reset_generation: int | None = Field(default=None, description="The quota reset generation applied.")
    quota_fingerprint: str | None = Field(default=None, description="The quota settings last applied.")
    previous_key_id: str | None = Field(default=None, description="Id of the rotated-out credential, until revoked.")
    credential_digest: str | None = Field(
        default=None,
        description="Which credential Torii put in the Secret (a salted digest, not the credential): a credential "
        "the Secret holds that does not match is not used.",
    )
    previous_credential_digest: str | None = Field(
        default=None, description="The same for the rotated-out credential, during its grace period."
    )
    previous_key_revoke_at: str | None = Field(default=None, description="When the previous credential is revoked.")
