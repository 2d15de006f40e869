"""Credentials Torii issues, how they sit in a Secret, and how Torii recognises its own when it reads them back.

A tenant owns the Secrets in its namespace: it can write any value into one. So nothing read from a Secret is
acted on (sent to a gateway, revoked) unless it is what Torii recorded. The record lives in the object's status
(which only the operator writes): a salted digest of each credential Torii put in the Secret, written BEFORE
the Secret (a crash between the two leaves a record Torii can finish from, never a credential it disowns).
Objects from before this record existed are trusted only with credentials of the shape Torii issues.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string

from torii.gateways.base import Credential, CredentialKind, ObjectRef
from torii.models.common import SecretTemplate
from torii.models.gatewaykey import KeyType

ALPHANUM = string.ascii_letters + string.digits
TYK_KEY = re.compile(r"[0-9a-f]{48}")
CLIENT_ID = re.compile(r"[A-Za-z0-9]{16}")
CLIENT_SECRET = re.compile(r"[A-Za-z0-9]{64}")


def new_key() -> Credential:
    """A Tyk key: 24 random bytes, hex."""
    return Credential(key=secrets.token_hex(24))


def new_client(client_id: str = "") -> Credential:
    """A client id (kept when given: Otoroshi rotations keep it) and a 64-character random secret."""
    return Credential(
        client_id=client_id or "".join(secrets.choice(ALPHANUM) for _ in range(16)),
        client_secret="".join(secrets.choice(ALPHANUM) for _ in range(64)),
    )


def new_named(ref: ObjectRef) -> Credential:
    """A basic-auth user or a JWT consumer (Tyk): a name that says whose it is, made unique by 8 random hex
    digits (a rotation is a new name; no tenant can take another's), and a 64-character random secret. No `:`
    (basic auth splits on it)."""
    return Credential(
        key=f"{ref.namespace}-{ref.name}-{secrets.token_hex(4)}",
        client_secret="".join(secrets.choice(ALPHANUM) for _ in range(64)),
    )


def new_credential(kind: CredentialKind, client_id: str = "", *, form: KeyType = KeyType.KEY,
                   ref: ObjectRef | None = None) -> Credential:  # fmt: skip
    """A fresh, cryptographically random credential of the gateway's kind, in the key's form."""
    if kind == CredentialKind.CLIENT:
        return new_client(client_id)
    if form != KeyType.KEY and ref is not None:
        return new_named(ref)
    return new_key()


def issued_shape(kind: CredentialKind, cred: Credential) -> bool:
    """Is `cred` shaped like one Torii issues? (Trusted for objects that have no digest recorded yet.)"""
    if kind == CredentialKind.KEY:
        return bool(TYK_KEY.fullmatch(cred.key))
    return bool(CLIENT_ID.fullmatch(cred.client_id) and CLIENT_SECRET.fullmatch(cred.client_secret))


def digest(uid: str, cred: Credential) -> str:
    """A salted digest of a credential, for status: says which credential it is, never what it is."""
    material = "\0".join((uid, cred.key, cred.client_id, cred.client_secret)).encode()
    return hashlib.sha256(material).hexdigest()[:32]


def recognised(kind: CredentialKind, uid: str, cred: Credential | None, recorded: str | None) -> bool:
    """Is `cred`, read from a Secret, the credential Torii recorded (or, nothing recorded, one of its shape)?"""
    if cred is None:
        return False
    if recorded:
        return digest(uid, cred) == recorded
    return issued_shape(kind, cred)


def basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


# The Secret entries of a named credential (Tyk basic auth, Tyk JWT): (name, secret), then the previous ones.
NAMED_ENTRIES = {
    KeyType.BASIC_AUTH: ("username", "password", "previousUsername", "previousPassword"),
    KeyType.JWT: ("kid", "secret", "previousKid", "previousSecret"),
}


def secret_data(kind: CredentialKind, cred: Credential, previous: Credential | None = None, *,
                form: KeyType = KeyType.KEY) -> dict[str, str]:  # fmt: skip
    if kind == CredentialKind.KEY and form in NAMED_ENTRIES:
        name, secret, previous_name, previous_secret = NAMED_ENTRIES[form]
        data = {name: cred.key, secret: cred.client_secret}
        if form == KeyType.BASIC_AUTH:
            data["Authorization"] = basic_header(cred.key, cred.client_secret)
        else:
            data["algorithm"] = "HS256"
        if previous is not None:
            data |= {previous_name: previous.key, previous_secret: previous.client_secret}
        return data
    if kind == CredentialKind.KEY:
        data = {"key": cred.key, "Authorization": cred.key}
        if previous is not None:
            data["previousKey"] = previous.key
        return data
    basic = basic_header(cred.client_id, cred.client_secret)
    data = {"clientId": cred.client_id, "clientSecret": cred.client_secret, "basicAuthHeader": basic}
    if form == KeyType.BASIC_AUTH:  # the same entries as a basic-auth user on any gateway
        data |= {"username": cred.client_id, "password": cred.client_secret, "Authorization": basic}
    if previous is not None:
        data["previousClientSecret"] = previous.client_secret
    return data


def credentials_in(kind: CredentialKind, data: dict[str, str], *,
                   form: KeyType = KeyType.KEY) -> tuple[Credential | None, Credential | None]:  # fmt: skip
    """(current, previous-in-grace) from a Secret's data; None when absent or incomplete."""
    if kind == CredentialKind.KEY and form in NAMED_ENTRIES:
        name, secret, previous_name, previous_secret = NAMED_ENTRIES[form]
        current = Credential(key=data[name], client_secret=data[secret]) if data.get(name) and data.get(
            secret) else None  # fmt: skip
        previous = None
        if data.get(previous_name) and data.get(previous_secret):
            previous = Credential(key=data[previous_name], client_secret=data[previous_secret])
        return current, previous
    if kind == CredentialKind.KEY:
        current = Credential(key=data["key"]) if data.get("key") else None
        previous = Credential(key=data["previousKey"]) if data.get("previousKey") else None
        return current, previous
    if not (data.get("clientId") and data.get("clientSecret")):
        return None, None
    current = Credential(client_id=data["clientId"], client_secret=data["clientSecret"])
    previous = None
    if data.get("previousClientSecret"):
        previous = Credential(client_id=data["clientId"], client_secret=data["previousClientSecret"])
    return current, previous


def template_annotations(template: SecretTemplate | None) -> dict[str, str]:
    # torii.dev/ annotations are refused at apply; an object from before that rule still never sets one.
    return {k: v for k, v in (template.annotations if template else {}).items() if not k.startswith("torii.dev/")}
