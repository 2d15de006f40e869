"""OAuthClient: an OAuth client of an OAuth-protected GatewayAPI, delivered as a Kubernetes Secret."""

from __future__ import annotations

from pydantic import Field

from torii.models.common import DNS_LABEL, DNS_SUBDOMAIN, CamelModel, SecretTemplate, StatusBase, cel, validations


class OAuthClientSpec(CamelModel):
    """The desired OAuth client."""

    model_config = CamelModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.gateway) == has(oldSelf.gateway) && (!has(self.gateway) || self.gateway == oldSelf.gateway)",
                "spec.gateway is immutable",
                field_path=".gateway",
            ),
            cel("self.api == oldSelf.api", "spec.api is immutable: create a new OAuthClient", field_path=".api"),
            cel(
                "has(self.secretName) == has(oldSelf.secretName) && "
                "(!has(self.secretName) || self.secretName == oldSelf.secretName)",
                "spec.secretName is immutable",
                field_path=".secretName",
            ),
        )
    }

    gateway: str | None = Field(
        default=None, max_length=63, pattern=DNS_LABEL, description="Gateway connection name. Immutable."
    )
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
    metadata: dict[str, str] = Field(default_factory=dict, description="Metadata on the gateway's client.")
    secret_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="Secret receiving clientId/clientSecret/redirectUri (default: this object's name). Immutable.",
    )
    secret_template: SecretTemplate | None = Field(default=None, description="Labels/annotations for the Secret.")


class OAuthClientStatus(StatusBase):
    """What the operator observed. Never contains the client secret."""

    gateway: str | None = Field(default=None, description="The gateway connection used.")
    client_id: str | None = Field(default=None, description="The OAuth client id (not secret).")
    api_id: str | None = Field(default=None, description="Gateway id of the API.")
    secret_name: str | None = Field(default=None, description="The Secret holding the client credentials.")
