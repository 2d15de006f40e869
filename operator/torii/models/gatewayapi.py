"""GatewayAPI: an API published on a gateway (a Tyk API definition, an Otoroshi service)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, PrivateAttr, field_validator

from torii.models.common import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    CamelModel,
    DeletionPolicy,
    SecretKeySelector,
    StatusBase,
    adopt_id_field,
    adoption_immutable,
    bounded_escape_hatch,
    cel,
    deletion_policy_field,
    gateway_field,
    immutable_once_set,
    validations,
)

URL_PATTERN = r"^https?://[^\s/?#]+(/[^\s]*)?$"
LISTEN_PATH_PATTERN = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/{}-]*$"

# Fields of a Tyk API definition that Torii owns: overriding them would break idempotence or key lookup.
TYK_OWNED_FIELDS = ("api_id", "org_id", "id")
# Fields of an Otoroshi service descriptor that Torii owns.
OTOROSHI_OWNED_FIELDS = ("id",)


def escape_hatch(path: str, owned: tuple[str, ...]) -> dict[str, Any]:
    """Schema of a free-form gateway-native object in which the fields Torii owns are refused.

    The owned fields are declared (CEL cannot test undeclared fields of a preserve-unknown-fields object).
    """
    return {
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            name: {"type": "string", "description": f"Owned by Torii: must not be set in {path}."} for name in owned
        },
        **validations(
            *(cel(f"!has(self.{name})", f"{path}.{name} is owned by Torii and cannot be set") for name in owned)
        ),
    }


class AuthMode(StrEnum):
    KEYLESS = "keyless"
    KEY = "key"
    OAUTH2 = "oauth2"
    BASIC_AUTH = "basicAuth"
    JWT = "jwt"


class JwtAlgorithm(StrEnum):
    HS256 = "HS256"
    HS384 = "HS384"
    HS512 = "HS512"
    RS256 = "RS256"
    RS384 = "RS384"
    RS512 = "RS512"
    ES256 = "ES256"
    ES384 = "ES384"
    ES512 = "ES512"

    @property
    def family(self) -> str:
        """`HS`, `RS` or `ES`."""
        return self.value[:2]

    @property
    def size(self) -> int:
        return int(self.value[2:])


class ApiJwt(CamelModel):
    """How the gateway checks JWTs (spec.auth: jwt). With jwksUrl or secretRef, every token signed by that key
    passes (an identity provider issues them); with neither (Tyk), each GatewayKey of `type: jwt` is a consumer
    with its own HMAC secret, named by the token's `kid` header."""

    model_config = CamelModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "!(has(self.jwksUrl) && has(self.secretRef))",
                "spec.jwt: set at most one of spec.jwt.jwksUrl and spec.jwt.secretRef",
            ),
            cel(
                "!has(self.jwksUrl) || !has(self.algorithm) || !self.algorithm.startsWith('HS')",
                "spec.jwt.algorithm: a JWKS holds public keys: use an RS or ES algorithm with spec.jwt.jwksUrl",
                field_path=".algorithm",
            ),
        )
    }

    algorithm: JwtAlgorithm = Field(
        default=JwtAlgorithm.HS256,
        description="Signing algorithm of the tokens: HS256/384/512 (a shared secret), RS256/384/512 (RSA) or "
        "ES256/384/512 (ECDSA). Default HS256 (RS256 with jwksUrl). Tyk checks the family (HS, RS, ES).",
    )
    jwks_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=URL_PATTERN,
        description="URL of the identity provider's JWKS (http or https): tokens signed by any of its keys pass.",
    )
    secret_ref: SecretKeySelector | None = Field(
        default=None,
        description="Secret entry (this namespace) with the verification key: the shared secret for HS "
        "algorithms, a PEM public key or certificate for RS/ES. Renewals of the Secret reach the gateway.",
    )
    issuer: str | None = Field(
        default=None,
        max_length=1024,
        description="Required `iss` claim (Otoroshi; Tyk classic APIs do not check it and refuse this field).",
    )
    audience: str | None = Field(
        default=None,
        max_length=1024,
        description="Required `aud` claim (Otoroshi; Tyk classic APIs do not check it and refuse this field).",
    )
    identity_claim: str = Field(
        default="sub",
        max_length=128,
        description="Claim naming the caller (Tyk `jwt_identity_base_field`: rate limits and quotas count per "
        "identity). Default `sub`.",
    )
    header: str = Field(
        default="Authorization",
        max_length=128,
        pattern=r"^[A-Za-z0-9-]+$",
        description="Request header carrying the token (`Bearer ` prefix optional). Default `Authorization`.",
    )

    # The verification key read from secretRef by the reconciler (never part of the object: see `with_key`).
    _key: str | None = PrivateAttr(default=None)

    def with_key(self, key: str) -> ApiJwt:
        """This spec with the key read from its Secret (HS: the secret; RS/ES: a PEM public key)."""
        copy = self.model_copy()
        copy._key = key
        return copy

    @property
    def key(self) -> str | None:
        return self._key

    @property
    def shared(self) -> bool:
        """One verification key for every caller (else per-consumer secrets: GatewayKeys of type jwt)."""
        return self.jwks_url is not None or self.secret_ref is not None

    @property
    def effective_algorithm(self) -> JwtAlgorithm:
        if self.jwks_url is not None and "algorithm" not in self.model_fields_set:
            return JwtAlgorithm.RS256
        return self.algorithm


class UpstreamTls(CamelModel):
    """TLS from the gateway to an https upstream."""

    client_certificate_secret_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=DNS_SUBDOMAIN,
        description="A `kubernetes.io/tls` Secret of this namespace (`tls.crt`, `tls.key`; cert-manager's works): "
        "the client certificate the gateway presents to the upstream (mutual TLS). Torii uploads it to the "
        "gateway's certificate store for this API only, follows its renewals and removes what it uploaded.",
    )
    insecure_skip_verify: bool = Field(
        default=False,
        description="Do not verify the upstream's server certificate (Tyk `ssl_insecure_skip_verify`, Otoroshi "
        "`trust_all`). Default false.",
    )

    pinned_public_keys: list[SecretKeySelector] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="Certificate pinning: Secret entries (this namespace) each holding a PEM certificate or PEM "
        "public key (e.g. `{name: billing-upstream, key: tls.crt}`). The gateway then accepts the upstream only "
        "when its certificate chain holds one of these public keys, whoever signed it (Tyk "
        "`pinned_public_keys`; this replaces CA verification). A renewal that keeps the key (cert-manager "
        "`rotationPolicy: Never`) needs no change; a new key is followed once the Secret holds it.",
    )

    # The certificate and key read from the Secret by the reconciler (never part of the object).
    _pair: tuple[str, str] | None = PrivateAttr(default=None)
    # The pinned public keys read from their Secrets (PEM PUBLIC KEY blocks).
    _pins: tuple[str, ...] = PrivateAttr(default=())

    def with_pair(self, chain: str, key: str) -> UpstreamTls:
        copy = self.model_copy()  # private attributes are copied too
        copy._pair = (chain, key)
        return copy

    def with_pins(self, pins: tuple[str, ...]) -> UpstreamTls:
        copy = self.model_copy()
        copy._pins = pins
        return copy

    @property
    def pins(self) -> tuple[str, ...]:
        return self._pins

    @property
    def pair(self) -> tuple[str, str] | None:
        return self._pair


class ClientMtls(CamelModel):
    """Mutual TLS with the API's callers: only a client presenting an allowed certificate gets in, before any
    other authentication (Tyk; the gateway must serve the API over TLS)."""

    allowed: list[SecretKeySelector] = Field(
        min_length=1,
        max_length=32,
        description="Secret entries (this namespace) each holding a PEM certificate: a CA certificate lets in every "
        "client certificate it signed, any other certificate itself only (e.g. `{name: partners-ca, key: ca.crt}` "
        "or `{name: acme-client, key: tls.crt}`; cert-manager's Secrets work). Renewals are followed.",
    )

    # The certificates read from the Secrets by the reconciler (never part of the object).
    _certificates: tuple[str, ...] = PrivateAttr(default=())

    def with_certificates(self, certificates: tuple[str, ...]) -> ClientMtls:
        copy = self.model_copy()
        copy._certificates = certificates
        return copy

    @property
    def certificates(self) -> tuple[str, ...]:
        return self._certificates


class Upstream(CamelModel):
    """Where the gateway sends traffic: one URL, or several targets to load-balance across."""

    model_config = CamelModel.model_config | {
        "json_schema_extra": validations(
            cel(
                "has(self.url) != has(self.targets)",
                "spec.upstream: set exactly one of spec.upstream.url and spec.upstream.targets",
            ),
            cel(
                "!has(self.tls) || (has(self.url) ? self.url.startsWith('https://') : "
                "self.targets.all(t, t.startsWith('https://')))",
                "spec.upstream.tls: TLS settings need https upstream URLs",
                field_path=".tls",
            ),
        )
    }

    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=URL_PATTERN,
        description="Upstream URL (http or https), e.g. `http://orders.shop.svc:8080`.",
    )
    targets: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Upstream URLs to load-balance across (round robin). Each must be http(s).",
        json_schema_extra={"items": {"type": "string", "pattern": URL_PATTERN, "maxLength": 2048}},
    )

    tls: UpstreamTls | None = Field(
        default=None, description="TLS to an https upstream: a client certificate, pinned public keys."
    )

    @property
    def urls(self) -> list[str]:
        return list(self.targets) if self.targets else [self.url or ""]


class RateLimit(CamelModel):
    """At most `rate` requests every `per` seconds."""

    rate: int = Field(ge=1, le=1_000_000_000, description="Requests allowed per window.")
    per: int = Field(ge=1, le=31_536_000, description="Window length in seconds.")


class Cors(CamelModel):
    """Cross-origin resource sharing, answered by the gateway."""

    enabled: bool = Field(default=True, description="Answer CORS preflight requests. Default true.")
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["*"], description='Allowed origins (`*` for any). Default `["*"]`.'
    )
    allowed_methods: list[str] = Field(
        default_factory=lambda: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        description="Allowed methods.",
    )
    allowed_headers: list[str] = Field(
        default_factory=lambda: ["Origin", "Accept", "Content-Type", "Authorization"],
        description="Allowed request headers.",
    )
    exposed_headers: list[str] = Field(default_factory=list, description="Response headers exposed to browsers.")
    allow_credentials: bool = Field(default=False, description="Allow cookies and credentials.")
    max_age: int = Field(default=86400, ge=0, le=604800, description="Preflight cache time in seconds.")


class ApiAdoption(CamelModel):
    """Take over an API that already exists on the gateway, in place: same id, no re-creation."""

    id: str = adopt_id_field("API (Tyk `api_id`, Otoroshi service `id`)")
    org_id: str | None = Field(
        default=None,
        max_length=253,
        description="Tyk: the `org_id` of the API, kept so its existing keys keep working (keys are looked up "
        "per org). Default: the connection's orgId; Torii refuses to adopt an API of another org without it.",
    )


# spec.auth in CEL (no default in the schema: absent means keyless).
_AUTH = "(has(self.auth) ? self.auth : 'keyless')"


class GatewayAPISpec(CamelModel):
    """The desired state of an API on a gateway."""

    model_config = CamelModel.model_config | {
        "json_schema_extra": validations(
            immutable_once_set("gateway", ": create a new GatewayAPI to move an API to another gateway"),
            adoption_immutable("id", "gateway object"),
            cel(
                "!has(self.tyk) || !has(self.otoroshi)",
                "spec.tyk and spec.otoroshi are mutually exclusive: an API lives on one gateway",
            ),
            cel(
                "!has(self.jwt) || (has(self.auth) && self.auth == 'jwt') || "
                "(has(self.additionalAuth) && 'jwt' in self.additionalAuth)",
                "spec.jwt is only for spec.auth: jwt (or spec.additionalAuth: [jwt])",
                field_path=".jwt",
            ),
            cel(
                f"!has(self.additionalAuth) || size(self.additionalAuth) == 0 || ({_AUTH} != 'keyless' && "
                f"self.additionalAuth.all(m, m != 'keyless' && m != {_AUTH}))",
                "spec.additionalAuth: each mode must differ from spec.auth, and neither can be keyless",
                field_path=".additionalAuth",
            ),
            cel(
                f"!has(self.additionalAuth) || ([{_AUTH}] + self.additionalAuth)"
                ".filter(m, m in ['key', 'basicAuth', 'oauth2']).size() <= 1",
                "spec.additionalAuth: key, basicAuth and oauth2 all read the Authorization header: combine one of "
                "them with jwt (spec.jwt.header another header)",
                field_path=".additionalAuth",
            ),
            cel(
                "!has(self.additionalAuth) || size(self.additionalAuth) == 0 || "
                f"!('jwt' in ([{_AUTH}] + self.additionalAuth)) || (has(self.jwt) && "
                "(has(self.jwt.jwksUrl) || has(self.jwt.secretRef)) && "
                "(has(self.jwt.header) ? self.jwt.header : 'Authorization').lowerAscii() != 'authorization')",
                "spec.jwt: combined with another mode, JWTs need spec.jwt.jwksUrl or spec.jwt.secretRef (one key "
                "for every caller) and spec.jwt.header other than Authorization (the other mode reads that)",
                field_path=".jwt",
            ),
        )
    }

    gateway: str | None = gateway_field()
    listen_path: str = Field(
        min_length=1,
        max_length=512,
        pattern=LISTEN_PATH_PATTERN,
        description="Path prefix the gateway serves this API on, starting with `/`, e.g. `/orders/`.",
    )
    upstream: Upstream = Field(description="Where the gateway forwards requests.")
    strip_listen_path: bool = Field(
        default=True, description="Remove the listen path before forwarding upstream. Default true."
    )
    auth: AuthMode = Field(
        default=AuthMode.KEYLESS,
        description="Client authentication: `keyless` (open), `key` (GatewayKey credentials), `basicAuth` "
        "(GatewayKeys of type basicAuth: a username and password each), `jwt` (tokens checked as spec.jwt says) or "
        "`oauth2` (OAuthClient; Tyk only). Default `keyless`.",
    )
    jwt: ApiJwt | None = Field(
        default=None,
        description="JWT settings for spec.auth: jwt (default: HS256 tokens signed with each GatewayKey's own "
        "secret, Tyk only).",
    )
    additional_auth: list[AuthMode] | None = Field(
        default=None,
        max_length=2,
        description="Further modes every request must also pass, on top of spec.auth (Tyk multi-auth, Otoroshi "
        "plugins), e.g. `auth: key` with `additionalAuth: [jwt]`: a GatewayKey and a JWT from the identity "
        "provider, both. Rate limits and quotas are the GatewayKey's (or OAuthClient's), in either order. Key, "
        "basicAuth and oauth2 all read the Authorization header, so one of them combines with jwt.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    mtls: ClientMtls | None = Field(
        default=None,
        description="Client certificates the API requires (mutual TLS), on top of spec.auth (Tyk only).",
    )
    active: bool = Field(default=True, description="Serve the API. `false` keeps it defined but inactive.")
    rate_limit: RateLimit | None = Field(
        default=None, description="Global rate limit for the whole API, across all clients (Tyk)."
    )
    cors: Cors | None = Field(default=None, description="CORS handling by the gateway.")
    tags: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Tags on the gateway object (Tyk `tags`, Otoroshi `metadata`).",
        json_schema_extra={"items": {"type": "string", "maxLength": 128}},
    )
    group: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL,
        description="Name of an API group in this namespace: a GatewayKey with spec.apiGroup gets access to every "
        "API of the group (Otoroshi: a service group).",
    )
    deletion_policy: DeletionPolicy = deletion_policy_field("the API")
    adopt: ApiAdoption | None = Field(
        default=None,
        description="Manage an API that already exists on the gateway instead of creating one (see `torii "
        "import`). Its id and listen path are kept; Torii's definition replaces the rest. Its id is immutable.",
    )
    tyk: dict[str, Any] | None = Field(
        default=None,
        description="Tyk classic API definition fields merged over what Torii generates (full fidelity). "
        f"Torii owns {', '.join(TYK_OWNED_FIELDS)}: they cannot be set here.",
        json_schema_extra=escape_hatch("spec.tyk", TYK_OWNED_FIELDS),
    )
    otoroshi: dict[str, Any] | None = Field(
        default=None,
        description="Otoroshi route fields (`services` connections: service descriptor fields) merged over what "
        "Torii generates; `plugins` are added after Torii's. Torii sets authentication (its plugins), `enabled`, "
        "the frontend domains and the backend targets from the neutral fields, and owns "
        f"{', '.join(OTOROSHI_OWNED_FIELDS)}.",
        json_schema_extra=escape_hatch("spec.otoroshi", OTOROSHI_OWNED_FIELDS),
    )

    _bounded = field_validator("tyk", "otoroshi")(bounded_escape_hatch)

    @property
    def modes(self) -> frozenset[AuthMode]:
        """Every authentication mode a request must pass: spec.auth and spec.additionalAuth."""
        return frozenset((self.auth, *(self.additional_auth or ())))

    @property
    def identity(self) -> AuthMode:
        """The mode whose credential counts (rate limits, quotas): a GatewayKey's or an OAuthClient's when one
        is among the modes, else the JWT's (or none: keyless)."""
        for mode in (AuthMode.KEY, AuthMode.BASIC_AUTH, AuthMode.OAUTH2):
            if mode in self.modes:
                return mode
        return self.auth


def auth_modes(spec: dict[str, Any]) -> frozenset[str]:
    """`GatewayAPISpec.modes` of a spec as stored (wire names), for readers of another object's spec."""
    return frozenset((str(spec.get("auth") or AuthMode.KEYLESS.value), *(spec.get("additionalAuth") or ())))


class ApiHealth(CamelModel):
    """Tyk's per-API health figures (`GET /tyk/health/?api_id=`), refreshed with the drift check."""

    model_config = CamelModel.model_config | {"extra": "ignore"}

    throttled_requests_ps: float = Field(default=0, description="Throttled requests per second.")
    quota_violations_ps: float = Field(default=0, description="Quota violations per second.")
    key_failures_ps: float = Field(default=0, description="Key failures per second.")
    average_upstream_latency: float = Field(default=0, description="Average upstream latency (ms).")
    average_requests_ps: float = Field(default=0, description="Average requests per second.")
    checked_at: str | None = Field(default=None, description="When the figures were read (RFC 3339).")


class GatewayAPIStatus(StatusBase):
    """What the operator observed."""

    gateway: str | None = Field(default=None, description="The gateway connection actually used.")
    gateway_id: str | None = Field(default=None, description="The id of the API on the gateway.")
    listen_path: str | None = Field(default=None, description="The listen path served.")
    nodes: str | None = Field(
        default=None,
        description="How many of the gateway's nodes serve the API, e.g. `3/3` (Tyk connections with several "
        "nodes: Ready only when every node serves it).",
    )
    health: ApiHealth | None = Field(default=None, description="Gateway health figures, when available.")
    gateway_objects: list[str] | None = Field(
        default=None,
        description="What Torii made on the gateway for this API besides the API itself: `jwt` (a JWT policy or "
        "verifier), `certificates` (uploaded certificates). Removed when the spec no longer needs them.",
    )
