"""Basic auth and JWT as Torii renders them for each gateway, and the checks on the verification key read from a
Secret: the parts a real gateway cannot show to fail (the e2e in test_auth_modes.py shows they are served)."""

from __future__ import annotations

import base64
import datetime
import re
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from support.jwt import EcKey, RsaKey
from torii.gateways.base import Credential, CredentialKind, KeyRequest, ObjectRef, ResolvedApi
from torii.gateways.errors import Unsupported
from torii.gateways.otoroshi_jwt import render_verifier, verifier_id
from torii.gateways.otoroshi_routes import render_route
from torii.gateways.tyk_render import render_api_definition, render_policy, render_session
from torii.models.gatewayapi import GatewayAPISpec
from torii.models.gatewaykey import GatewayKeySpec, KeyType
from torii.pem import KeyError_, public_key_pem, shared_secret
from torii.reconcile.credentials import credentials_in, new_credential, secret_data
from torii.reconcile.outcome import Blocked
from torii.reconcile.references import usable_api

REF = ObjectRef("shop", "orders", kind="GatewayAPI", uid="u-1")


def api_spec(**overrides: Any) -> GatewayAPISpec:
    return GatewayAPISpec.model_validate({"listenPath": "/orders/", "upstream": {"url": "http://o:8080"}, **overrides})


def with_key(spec: GatewayAPISpec, key: str) -> GatewayAPISpec:
    assert spec.jwt is not None
    return spec.model_copy(update={"jwt": spec.jwt.with_key(key)})


# --------------------------------------------------------------------------------------- verification keys


def certificate_pem(public: Any, signer: Any) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp")])
    now = datetime.datetime.now(datetime.UTC)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public).serial_number(7)
    builder = builder.not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
    cert = builder.sign(signer, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_public_keys_and_certificates_give_the_public_key_of_their_family() -> None:
    rsa_key, ec_key = RsaKey(), EcKey()
    assert public_key_pem(rsa_key.public_pem(), "RS").strip() == rsa_key.public_pem().strip()
    assert public_key_pem(ec_key.public_pem(), "ES").strip() == ec_key.public_pem().strip()
    # A certificate: its subject's public key (the one Otoroshi's verifier needs), not the issuer's.
    subject, issuer = rsa.generate_private_key(public_exponent=65537, key_size=2048), ec.generate_private_key(
        ec.SECP256R1())  # fmt: skip
    expected = subject.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()  # fmt: skip
    assert public_key_pem(certificate_pem(subject.public_key(), issuer), "RS").strip() == expected.strip()


@pytest.mark.parametrize(
    ("text", "family", "says"),
    [
        ("just-a-shared-secret-value", "RS", "holds no PEM block"),
        ("EC", "RS", "holds an EC key; the algorithm needs an RSA key"),
        ("RSA", "ES", "holds an RSA key; the algorithm needs an EC key"),
        ("PRIVATE", "RS", "never a private key"),
        ("-----BEGIN PUBLIC KEY-----\n!!notbase64!!\n-----END PUBLIC KEY-----", "RS", "not valid DER"),
    ],
)
def test_a_wrong_key_type_is_named(text: str, family: str, says: str) -> None:
    if text == "EC":
        text = EcKey().public_pem()
    elif text == "RSA":
        text = RsaKey().public_pem()
    elif text == "PRIVATE":
        text = RsaKey().private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()).decode()  # fmt: skip
    with pytest.raises(KeyError_, match=says):
        public_key_pem(text, family)


def test_a_shared_secret_is_not_a_pem_key_nor_short() -> None:
    assert shared_secret("0123456789abcdef") == "0123456789abcdef"
    with pytest.raises(KeyError_, match="holds a PEM key"):
        shared_secret(RsaKey().public_pem())
    with pytest.raises(KeyError_, match="shorter than 16 bytes"):
        shared_secret("short")
    # Tyk reads a jwt_source that decodes to a URL as a JWKS to fetch; Otoroshi expands ${...}.
    for text in ("https://169.254.169.254/keys", "${vault://secret/other-team}"):
        with pytest.raises(KeyError_, match="URL or a"):
            shared_secret(text)


# ------------------------------------------------------------------------------------------------ credentials


@pytest.mark.parametrize(
    ("form", "entries"),
    [(KeyType.BASIC_AUTH, {"username", "password", "Authorization"}), (KeyType.JWT, {"kid", "secret", "algorithm"})],
)
def test_named_credentials_in_their_secret_and_back(form: KeyType, entries: set[str]) -> None:
    current = new_credential(CredentialKind.KEY, form=form, ref=REF)
    previous = new_credential(CredentialKind.KEY, form=form, ref=REF)
    assert current.key.startswith("shop-orders-") and ":" not in current.key and current.key != previous.key
    assert len(current.client_secret) == 64
    data = secret_data(CredentialKind.KEY, current, previous, form=form)
    assert entries <= set(data)
    if form == KeyType.BASIC_AUTH:
        decoded = base64.b64decode(data["Authorization"].removeprefix("Basic ")).decode()
        assert decoded == f"{current.key}:{current.client_secret}"
    assert credentials_in(CredentialKind.KEY, data, form=form) == (current, previous)
    assert credentials_in(CredentialKind.KEY, data) == (None, None)  # read as a plain key: nothing recognised


def test_otoroshi_basic_auth_keys_carry_the_same_entries() -> None:
    cred = new_credential(CredentialKind.CLIENT)
    data = secret_data(CredentialKind.CLIENT, cred, form=KeyType.BASIC_AUTH)
    assert (data["username"], data["password"]) == (cred.client_id, cred.client_secret)
    assert data["Authorization"] == data["basicAuthHeader"]
    assert credentials_in(CredentialKind.CLIENT, data, form=KeyType.BASIC_AUTH)[0] == cred


# ---------------------------------------------------------------------------------------------------- Tyk


def test_tyk_basic_auth_api_and_user() -> None:
    definition = render_api_definition(REF, api_spec(auth="basicAuth"), api_id="torii.shop.orders", org_id="o")
    assert definition["use_basic_auth"] and not definition["use_keyless"] and not definition["use_standard_auth"]
    spec = GatewayKeySpec.model_validate({"type": "basicAuth", "apis": [{"name": "orders"}]})

    def session(password: str) -> dict[str, Any]:
        request = KeyRequest(ObjectRef("shop", "k", uid="k-1"), spec, (ResolvedApi("orders", "torii.shop.orders"),),
                             None, Credential(key="shop-k-1a2b3c4d", client_secret=password))  # fmt: skip
        return render_session(request, "o")

    one, same, other = session("p" * 64), session("p" * 64), session("q" * 64)
    assert one["basic_auth_data"]["password"] == "p" * 64
    # A new password changes the fingerprint (Tyk never returns it), the same one does not; neither is in it.
    assert one["meta_data"]["torii-fingerprint"] == same["meta_data"]["torii-fingerprint"]
    assert one["meta_data"]["torii-fingerprint"] != other["meta_data"]["torii-fingerprint"]
    assert "p" * 64 not in str(one["meta_data"])
    # Should the API turn to per-key JWT, the user's name (no secret) must not open it with an empty JWT secret.
    assert len(one["jwt_data"]["secret"]) == 64 and one["jwt_data"]["secret"] != other["jwt_data"]["secret"]


def test_tyk_jwt_with_its_own_key_uses_a_policy_and_turns_off_token_chosen_policies() -> None:
    spec = with_key(api_spec(auth="jwt", jwt={"secretRef": {"name": "s"}}), "0123456789abcdef")
    definition = render_api_definition(REF, spec, api_id="torii.shop.orders", org_id="o")
    assert definition["enable_jwt"] and definition["jwt_signing_method"] == "hmac"
    assert base64.b64decode(definition["jwt_source"]).decode() == "0123456789abcdef"
    assert definition["jwt_default_policies"] == ["torii.shop.orders"]
    assert definition["jwt_policy_field_name"] == "" and definition["jwt_client_base_field"] == ""
    # spec.tyk cannot put them back: a token naming a policy could reach another namespace's APIs.
    hatch = api_spec(auth="jwt", jwt={"secretRef": {"name": "s"}},
                     tyk={"jwt_policy_field_name": "pol", "jwt_default_policies": ["someone-elses"]})  # fmt: skip
    hatched = render_api_definition(REF, with_key(hatch, "0123456789abcdef"), api_id="torii.shop.orders", org_id="o")
    assert hatched["jwt_policy_field_name"] == "" and hatched["jwt_default_policies"] == ["torii.shop.orders"]
    policy = render_policy(REF, api_id="torii.shop.orders", org_id="o")
    assert list(policy["access_rights"]) == ["torii.shop.orders"] and policy["id"] == "torii.shop.orders"


def test_tyk_jwt_from_a_jwks_and_per_key() -> None:
    jwks = render_api_definition(REF, api_spec(auth="jwt", jwt={"jwksUrl": "https://idp/jwks"}), api_id="a",
                                 org_id="o")  # fmt: skip
    assert jwks["jwt_source"] == "https://idp/jwks" and jwks["jwt_signing_method"] == "rsa"
    per_key = render_api_definition(REF, api_spec(auth="jwt"), api_id="a", org_id="o")
    assert per_key["jwt_source"] == "" and per_key["jwt_default_policies"] == []
    with pytest.raises(Unsupported, match=r"spec\.jwt\.issuer"):
        render_api_definition(REF, api_spec(auth="jwt", jwt={"jwksUrl": "https://idp/jwks", "issuer": "x"}),
                              api_id="a", org_id="o")  # fmt: skip


# ------------------------------------------------------------------------------------------------ Otoroshi


def test_otoroshi_verifier_is_strict_and_checks_issuer_and_audience() -> None:
    spec = with_key(api_spec(auth="jwt", jwt={"secretRef": {"name": "s"}, "issuer": "https://idp",
                                              "audience": "orders"}), "0123456789abcdef")  # fmt: skip
    verifier = render_verifier(REF, spec, "torii.shop.orders")
    assert verifier["strict"] is True and verifier["id"] == verifier_id("torii.shop.orders")
    assert verifier["algoSettings"] == {"type": "HSAlgoSettings", "size": 256, "secret": "0123456789abcdef",
                                        "base64": False}  # fmt: skip
    assert verifier["strategy"]["verificationSettings"]["fields"] == {"iss": "https://idp", "aud": "orders"}
    route = render_route(REF, spec, route_id="torii.shop.orders", host="api.oto.tools", group="g")
    [plugin] = [p for p in route["plugins"] if p["plugin"].endswith("JwtVerification")]
    assert plugin["config"]["verifiers"] == [verifier["id"]]
    with pytest.raises(Unsupported, match="one key per API"):
        render_verifier(REF, api_spec(auth="jwt"), "torii.shop.orders")


def test_otoroshi_basic_auth_route_extracts_basic_auth_only() -> None:
    route = render_route(REF, api_spec(auth="basicAuth"), route_id="r", host="api.oto.tools", group="g")
    [plugin] = [p for p in route["plugins"] if p["plugin"].endswith("ApikeyCalls")]
    extractors = plugin["config"]["extractors"]
    assert extractors["basic"] == {"enabled": True}
    assert not any(e["enabled"] for name, e in extractors.items() if name != "basic")


# -------------------------------------------------------------------------------------------------- references


def api_object(auth: str, **spec: Any) -> dict[str, Any]:
    ready = {"type": "Ready", "status": "True", "observedGeneration": 1}
    return {"metadata": {"generation": 1}, "spec": {"gateway": "tyk", "auth": auth, **spec},
            "status": {"gatewayId": "g", "conditions": [ready]}}  # fmt: skip


def test_a_key_type_must_match_its_apis_auth() -> None:
    from torii.models.gatewayapi import AuthMode

    assert usable_api("shop", "a", api_object("jwt"), gateway="tyk", default_gateway=None, auth=AuthMode.JWT) == "g"
    with pytest.raises(Blocked, match="needs auth: basicAuth"):
        usable_api("shop", "a", api_object("key"), gateway="tyk", default_gateway=None, auth=AuthMode.BASIC_AUTH)
    with pytest.raises(Blocked, match="its callers need no GatewayKey"):
        usable_api("shop", "a", api_object("jwt", jwt={"jwksUrl": "https://idp/jwks"}), gateway="tyk",
                   default_gateway=None, auth=AuthMode.JWT)  # fmt: skip


def test_a_key_of_the_additional_mode_is_usable_and_jwt_keys_still_are_not() -> None:
    from torii.models.gatewayapi import AuthMode

    jwt = {"jwksUrl": "https://idp/jwks", "header": "X-User-Token"}
    both = api_object("jwt", additionalAuth=["key"], jwt=jwt)
    assert usable_api("shop", "a", both, gateway="tyk", default_gateway=None, auth=AuthMode.KEY) == "g"
    with pytest.raises(Blocked, match="needs auth: basicAuth"):
        usable_api("shop", "a", both, gateway="tyk", default_gateway=None, auth=AuthMode.BASIC_AUTH)
    with pytest.raises(Blocked, match="its callers need no GatewayKey"):
        usable_api("shop", "a", both, gateway="tyk", default_gateway=None, auth=AuthMode.JWT)


# ------------------------------------------------------------------------------------------- several modes


@pytest.mark.parametrize(("auth", "also", "identity"), [("key", "jwt", "auth_token"), ("jwt", "key", "auth_token"),
                                                        ("basicAuth", "jwt", "basic_auth_user"),
                                                        ("oauth2", "jwt", "oauth_key")])  # fmt: skip
def test_tyk_several_modes_each_enabled_on_its_header_and_the_key_is_the_identity(
    auth: str, also: str, identity: str
) -> None:
    spec = with_key(api_spec(auth=auth, additionalAuth=[also], jwt={"secretRef": {"name": "s"},
                                                                     "header": "X-User-Token"}), "k" * 32)  # fmt: skip
    definition = render_api_definition(REF, spec, api_id="a", org_id="o")
    modes = {auth, also}
    assert definition["enable_jwt"] and definition["jwt_default_policies"] == ["a"]
    assert definition["use_standard_auth"] == ("key" in modes) and definition["use_oauth2"] == ("oauth2" in modes)
    assert definition.get("use_basic_auth", False) == ("basicAuth" in modes) and not definition["use_keyless"]
    assert definition["base_identity_provided_by"] == identity
    assert definition["auth_configs"]["jwt"] == {"auth_header_name": "X-User-Token"}
    if "key" in modes:
        assert definition["auth_configs"]["authToken"] == {"auth_header_name": "Authorization"}


def test_tyk_base_identity_is_torii_s_to_set() -> None:
    # One mode: no base identity (Tyk's default, that mode's session); spec.tyk cannot name another mode's,
    # which would leave the key's session unset and its rate limit and quota uncounted.
    single = render_api_definition(REF, api_spec(auth="key", tyk={"base_identity_provided_by": "hmac_key"}),
                                   api_id="a", org_id="o")  # fmt: skip
    assert "base_identity_provided_by" not in single
    spec = with_key(api_spec(auth="key", additionalAuth=["jwt"], jwt={"secretRef": {"name": "s"}, "header": "X-T"},
                             tyk={"Base_Identity_Provided_By": "jwt_claim"}), "k" * 32)  # fmt: skip
    both = render_api_definition(REF, spec, api_id="a", org_id="o")
    assert both["base_identity_provided_by"] == "auth_token" and "Base_Identity_Provided_By" not in both


def test_otoroshi_several_modes_are_several_plugins() -> None:
    spec = with_key(api_spec(auth="basicAuth", additionalAuth=["jwt"], jwt={"secretRef": {"name": "s"},
                                                                            "header": "X-T"}), "k" * 32)  # fmt: skip
    route = render_route(REF, spec, route_id="r", host="api.oto.tools", group="g")
    plugins = [p["plugin"].rsplit(".", 1)[-1] for p in route["plugins"]]
    assert plugins.index("JwtVerification") < plugins.index("ApikeyCalls")  # a bad JWT uses none of the quota
    [apikey] = [p for p in route["plugins"] if p["plugin"].endswith("ApikeyCalls")]
    assert apikey["config"]["extractors"]["basic"] == {"enabled": True}
    from torii.gateways.otoroshi_render import render_service

    with pytest.raises(Unsupported, match=r"spec\.additionalAuth needs Otoroshi routes"):
        render_service(REF, api_spec(auth="key", additionalAuth=["jwt"], jwt={"jwksUrl": "https://i/j", "header": "X"}),
                       service_id="s", domain="d", subdomain="s", group="g")  # fmt: skip


# --------------------------------------------------------------------------------------------- upstream TLS


def test_upstream_client_certificate_is_the_apis_own_on_both_gateways(tmp_path: Any) -> None:
    from support.tls import make_ca_and_server_cert, make_client_cert
    from torii.gateways.otoroshi_certs import cert_id as otoroshi_cert
    from torii.gateways.tyk_certs import cert_id as tyk_cert
    from torii.pem import tls_pair

    make_ca_and_server_cert(tmp_path)
    chain, key = tls_pair(*make_client_cert(tmp_path, "c1"))
    base = api_spec(upstream={"url": "https://o:8443", "tls": {"clientCertificateSecretName": "c",
                                                                 "insecureSkipVerify": True}})  # fmt: skip
    assert base.upstream.tls is not None
    spec = base.model_copy(update={"upstream": base.upstream.model_copy(
        update={"tls": base.upstream.tls.with_pair(chain, key)})})  # fmt: skip
    tyk = render_api_definition(REF, spec, api_id="torii.shop.orders", org_id="o")
    assert tyk["upstream_certificates"] == {"*": tyk_cert("torii.shop.orders", chain)}
    assert tyk["upstream_certificates"]["*"].startswith("torii.shop.orders-")  # never shared with another API
    assert tyk["proxy"]["transport"] == {"ssl_insecure_skip_verify": True}
    route = render_route(REF, spec, route_id="torii.shop.orders", host="api.oto.tools", group="g")
    [target] = route["backend"]["targets"]
    assert target["tls"] is True
    assert target["tls_config"]["certs"] == [otoroshi_cert("torii.shop.orders", chain)]
    assert target["tls_config"]["trust_all"] is True
    # A tenant's spec.tyk cannot name a certificate (another API's) where Torii names none.
    hatch = api_spec(tyk={"upstream_certificates": {"*": "torii.other.api-0123"}})
    assert "upstream_certificates" not in render_api_definition(REF, hatch, api_id="a", org_id="o")


def test_pinned_public_keys_are_the_apis_own_hex_ids_on_tyk_and_refused_on_otoroshi(tmp_path: Any) -> None:
    from support.tls import make_ca_and_server_cert
    from torii.gateways import tyk_certs
    from torii.pem import public_key_pem

    _, server, _ = make_ca_and_server_cert(tmp_path)
    pin = public_key_pem(server.read_text(), None)  # any key type: a certificate's own public key
    assert pin == public_key_pem(pin, None) and pin.startswith("-----BEGIN PUBLIC KEY-----")
    with pytest.raises(KeyError_, match="never a private key"):
        public_key_pem((tmp_path / "ca.key").read_text(), None)
    base = api_spec(upstream={"url": "https://o:8443", "tls": {"pinnedPublicKeys": [{"name": "up", "key": "tls.crt"}]}})
    assert base.upstream.tls is not None
    spec = base.model_copy(update={"upstream": base.upstream.model_copy(
        update={"tls": base.upstream.tls.with_pins((pin, RsaKey().public_pem()))})})  # fmt: skip
    tyk = render_api_definition(REF, spec, api_id="torii.shop.orders", org_id="o")
    ids = tyk["pinned_public_keys"]["*"].split(",")
    # Tyk resolves a pin only when its id is all hex; each is this API's own (its prefix), never another's.
    assert len(ids) == 2 and all(re.fullmatch("[0-9a-f]{80}", i) for i in ids)
    assert ids[0] == tyk_certs.pin_id("torii.shop.orders", pin) != tyk_certs.pin_id("torii.shop.other", pin)
    assert all(tyk_certs.is_own(tyk_certs.pin_prefix("torii.shop.orders"), i) for i in ids)
    with pytest.raises(Unsupported, match=r"spec\.upstream\.tls\.pinnedPublicKeys"):
        render_route(REF, spec, route_id="r", host="api.oto.tools", group="g")
    # spec.tyk cannot pin (a file path on the gateway host, another API's ids) where Torii pins nothing.
    hatch = api_spec(tyk={"pinned_public_keys": {"*": "/etc/passwd"}})
    assert "pinned_public_keys" not in render_api_definition(REF, hatch, api_id="a", org_id="o")


def test_a_tls_secret_must_hold_a_certificate_and_a_private_key() -> None:
    from torii.pem import tls_pair

    rsa_key = RsaKey()
    private = rsa_key.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()  # fmt: skip
    with pytest.raises(KeyError_, match=r"tls\.crt holds no PEM CERTIFICATE"):
        tls_pair(rsa_key.public_pem(), private)
    cert = certificate_pem(rsa_key.private.public_key(), rsa_key.private)
    with pytest.raises(KeyError_, match=r"tls\.key holds no PEM private key"):
        tls_pair(cert, rsa_key.public_pem())
    assert tls_pair(cert, private)[0].startswith("-----BEGIN CERTIFICATE-----")


def test_client_certificates_are_the_apis_own_and_a_gate_before_any_auth(tmp_path: Any) -> None:
    from support.tls import make_ca_and_server_cert
    from torii.gateways.tyk_certs import cert_id as tyk_cert
    from torii.pem import certificate_only

    ca, _, _ = make_ca_and_server_cert(tmp_path)
    pem = certificate_only(ca.read_text() + RsaKey().public_pem())  # the certificate alone, never anything else
    assert pem.count("BEGIN") == 1
    listener = {"protocol": "https", "listen_port": 8443, "certificates": ["platform-server"]}
    base = api_spec(auth="key", mtls={"allowed": [{"name": "partners-ca", "key": "ca.crt"}]}, tyk=listener)
    assert base.mtls is not None
    spec = base.model_copy(update={"mtls": base.mtls.with_certificates((pem,))})
    definition = render_api_definition(REF, spec, api_id="torii.shop.orders", org_id="o")
    # On a shared listener Tyk only asks for a certificate and accepts any chain holding an allowed one.
    shared = spec.model_copy(update={"tyk": None})
    with pytest.raises(Unsupported, match="listener of the API's own"):
        render_api_definition(REF, shared, api_id="torii.shop.orders", org_id="o")
    assert definition["use_mutual_tls_auth"] is True and definition["use_standard_auth"] is True
    assert definition["client_certificates"] == [tyk_cert("torii.shop.orders", pem)]
    # spec.tyk cannot allow certificates (another API's) where spec.mtls allows none.
    hatch = api_spec(tyk={"use_mutual_tls_auth": True, "client_certificates": ["torii.other.api-00"],
                          "Upstream_Certificates": {"*": "torii.other.api-00"}})  # fmt: skip
    rendered = render_api_definition(REF, hatch, api_id="a", org_id="o")
    assert not {k.lower() for k in rendered} & {"client_certificates", "use_mutual_tls_auth", "upstream_certificates"}
    # Otoroshi 17.17 accepts any client certificate and matches names only: the refusal says so, and what to do.
    with pytest.raises(Unsupported, match=r"spec\.mtls: Otoroshi cannot enforce client certificates.*use a Tyk"):
        render_route(REF, spec, route_id="r", host="api.oto.tools", group="g")


def test_a_ca_is_never_a_client_certificate_and_ids_are_exactly_the_apis(tmp_path: Any) -> None:
    from support.tls import make_ca_and_server_cert, make_client_cert
    from torii.gateways import otoroshi_certs, tyk_certs
    from torii.pem import first_certificate_der, is_ca, tls_pair

    ca, server, _ = make_ca_and_server_cert(tmp_path)
    client_cert, client_key = make_client_cert(tmp_path, "c1")
    assert is_ca(first_certificate_der(ca.read_text()))
    assert not is_ca(first_certificate_der(client_cert)) and not is_ca(first_certificate_der(server.read_text()))
    # Otoroshi trusts a stored CA for the whole gateway: a tenant's Secret may not make it store one.
    with pytest.raises(KeyError_, match="CA certificate"):
        tls_pair(ca.read_text(), (tmp_path / "ca.key").read_text())
    chain, _ = tls_pair(client_cert + ca.read_text(), client_key)
    assert otoroshi_certs.cert_id("r", chain) == otoroshi_certs.cert_id("r", client_cert)  # the leaf names it
    tid = tyk_certs.cert_id("torii.shop.orders", chain)
    assert tyk_certs.is_own(tyk_certs.prefix("torii.shop.orders"), tid)
    assert not tyk_certs.is_own(tyk_certs.prefix("torii.shop.orders"), tyk_certs.cert_id("torii.shop.orders-v2", chain))
    oid = otoroshi_certs.cert_id("torii.shop.orders", chain)
    assert otoroshi_certs.is_own("torii.shop.orders", oid)
    assert not otoroshi_certs.is_own("torii.shop.orders", otoroshi_certs.cert_id("torii.shop.orders-client-x", chain))


def test_what_an_api_makes_beside_itself_follows_its_spec() -> None:
    from torii.reconcile.gatewayapi import gateway_objects

    assert gateway_objects(api_spec()) == set()
    assert gateway_objects(api_spec(auth="jwt")) == set()  # per-key JWT: no policy, no verifier
    assert gateway_objects(api_spec(auth="jwt", jwt={"jwksUrl": "https://idp/jwks"})) == {"jwt"}
    tls = {"url": "https://o:8443", "tls": {"clientCertificateSecretName": "c"}}
    assert gateway_objects(api_spec(upstream=tls)) == {"certificates"}
    assert gateway_objects(api_spec(mtls={"allowed": [{"name": "ca"}]})) == {"certificates"}
    pins = {"url": "https://o", "tls": {"pinnedPublicKeys": [{"name": "up"}]}}
    assert gateway_objects(api_spec(upstream=pins)) == {"certificates"}
    assert gateway_objects(api_spec(upstream={"url": "https://o", "tls": {"insecureSkipVerify": True}})) == set()
