"""OAuthClient: an OAuth client of an OAuth-protected GatewayAPI, delivered as a Kubernetes Secret."""

from __future__ import annotations

from pydantic import Field

from torii.models.common import (
    DNS_SUBDOMAIN,
    CamelModel,
    DeletionPolicy,
    SecretTemplate,
    StatusBase,
    adopt_id_field,
    adoption_immutable,
    cel,
    deletion_policy_field,
    gateway_field,
    gateway_metadata_field,
    immutable_once_set,
    secret_name_field,
    validations,
)


class OAuthClientAdoption(CamelModel):
    """Take over an OAuth client that already exists on the gateway: same client id and secret."""

    client_id: str = adopt_id_field("OAuth client (its `client_id`)")


class OAuthClientSpec(CamelModel):
    """The desired OAuth client."""

    model_config = CamelModel.model_config | {
        "json_schema_extra": validations(
            immutable_once_set("gateway"),
            cel("self.api == oldSelf.api", "spec.api is immutable: create a new OAuthClient", field_path=".api"),
            immutable_once_set("secretName"),
            adoption_immutable("clientId", "OAuth client"),
        )
    }

    gateway: str | None = gateway_field()
    api: str = Field(
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Name of a GatewayAPI in this namespace with `auth: oauth2`. Immutable.",
    )
    redirect_uri: str = Field(
        max_length=2048,
        pattern=r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^\s]+$",
        description="Where the authorization server sends the user back, e.g. https://app.example.com/callback.",
    )
    policy: str | None = Field(default=None, max_length=253, description="Tyk policy id the client's tokens get.")
    description: str = Field(default="", max_length=1024, description="Human-readable description.")
    metadata: dict[str, str] = gateway_metadata_field("OAuth client")
    secret_name: str | None = secret_name_field("clientId, clientSecret and redirectUri")
    deletion_policy: DeletionPolicy = deletion_policy_field("the OAuth client")
    secret_template: SecretTemplate | None = Field(default=None, description="Labels/annotations for the Secret.")
    adopt: OAuthClientAdoption | None = Field(
        default=None,
        description="Manage an OAuth client that already exists on the gateway instead of creating one (see "
        "`torii import`): its client id and secret (Tyk returns both to its admin API) go into the Secret and "
        "keep working. Its clientId is immutable.",
    )


class OAuthClientStatus(StatusBase):
    """What the operator observed. Never contains the client secret."""

    gateway: str | None = Field(default=None, description="The gateway connection used.")
    client_id: str | None = Field(default=None, description="The OAuth client id (not secret).")
    api_id: str | None = Field(default=None, description="Gateway id of the API.")
    secret_name: str | None = Field(default=None, description="The Secret holding the client credentials.")
    credential_digest: str | None = Field(
        default=None,
        description="Which client credentials Torii put in the Secret (a salted digest): others are not used.",
    )
