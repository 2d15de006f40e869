"""Verification keys read from Secrets: what kind of key a PEM holds, and its public key as the gateways want it.

Enough DER to tell an RSA key from an EC one and to take the public key out of a certificate (Otoroshi's RS/ES
verifiers take a public key; Tyk takes either). No crypto library on the operator's path: nothing is verified
here, the gateway does that; this only lets Torii refuse a wrong key type with a message that says so.
"""

from __future__ import annotations

import base64
import re

RSA_OID = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
EC_OID = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1 id-ecPublicKey
BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)


class KeyError_(ValueError):
    """The Secret does not hold the kind of key the algorithm needs (the message says what it holds)."""


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at `at`."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    return tag, at, at + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, value start, value end) of each element in data[start:end]."""
    out = []
    while start < end:
        tag, vstart, vend = _tlv(data, start)
        out.append((tag, start, vstart, vend))
        start = vend
    return out


def spki_of_certificate(der: bytes) -> bytes:
    """The SubjectPublicKeyInfo of an X.509 certificate (DER)."""
    _, cstart, cend = _tlv(der, 0)
    tbs = _children(der, cstart, cend)[0]
    fields = _children(der, tbs[2], tbs[3])
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    # serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo
    _, estart, _, eend = fields[5]
    return der[estart:eend]


def _pem(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"


def public_key_pem(text: str, family: str | None) -> str:
    """The PEM public key in `text` (a public key or a certificate) for an algorithm `family` (`RS` or `ES`;
    None: any key, as for pinning); KeyError_ when it holds no such key."""
    match = BLOCK.search(text)
    if match is None:
        raise KeyError_("holds no PEM block (a PEM public key or certificate is needed)")
    label = match.group(1)
    try:
        der = base64.b64decode(re.sub(r"\s+", "", match.group(2)), validate=True)
        if label == "CERTIFICATE":
            der = spki_of_certificate(der)
        elif label != "PUBLIC KEY":
            raise KeyError_(f"holds a {label} (a PUBLIC KEY or a CERTIFICATE is needed; never a private key)")
    except (ValueError, IndexError) as exc:
        if isinstance(exc, KeyError_):
            raise
        raise KeyError_(f"holds a {label} block that is not valid DER") from None
    if family is None:
        return _pem("PUBLIC KEY", der)
    held = "RS" if RSA_OID in der else "ES" if EC_OID in der else None
    if held is None:
        raise KeyError_("holds a public key that is neither RSA nor EC")
    if held != family:
        wanted = "an RSA" if family == "RS" else "an EC"
        raise KeyError_(f"holds {'an RSA' if held == 'RS' else 'an EC'} key; the algorithm needs {wanted} key")
    return _pem("PUBLIC KEY", der)


def public_key_der(public_pem: str) -> bytes:
    """The DER of a PEM public key made by `public_key_pem`."""
    match = BLOCK.search(public_pem)
    if match is None or match.group(1) != "PUBLIC KEY":
        raise KeyError_("holds no PEM public key")
    return base64.b64decode(re.sub(r"\s+", "", match.group(2)))


def shared_secret(text: str) -> str:
    """An HS algorithm's secret; KeyError_ when the entry looks like a PEM key (a wrong key type)."""
    if "-----BEGIN" in text:
        raise KeyError_("holds a PEM key; an HS algorithm needs a shared secret (use an RS or ES algorithm for a "
                        "public key)")  # fmt: skip
    if re.match(r"\s*https?://", text) or "${" in text:
        raise KeyError_("holds a URL or a ${...} expression, which a gateway would fetch or expand instead of using "
                        "it as the secret; use a random secret")  # fmt: skip
    if len(text.encode()) < 16:
        raise KeyError_("holds a secret shorter than 16 bytes; use a longer random secret")
    return text


def first_certificate_der(chain: str) -> bytes:
    """The DER of the first CERTIFICATE of a PEM chain (Tyk names a stored certificate by its SHA-256)."""
    for match in BLOCK.finditer(chain):
        if match.group(1) == "CERTIFICATE":
            return base64.b64decode(re.sub(r"\s+", "", match.group(2)))
    raise KeyError_("holds no CERTIFICATE")


def tls_pair(chain: str, key: str) -> tuple[str, str]:
    """A certificate chain and its private key from a kubernetes.io/tls Secret, checked for shape (the gateway
    checks that they match); KeyError_ says which entry is wrong."""
    labels = [m.group(1) for m in BLOCK.finditer(chain)]
    if "CERTIFICATE" not in labels:
        raise KeyError_("entry tls.crt holds no PEM CERTIFICATE")
    try:
        first_certificate_der(chain)
    except ValueError:
        raise KeyError_("entry tls.crt holds a CERTIFICATE that is not valid base64") from None
    if not any(label.endswith("PRIVATE KEY") for label in (m.group(1) for m in BLOCK.finditer(key))):
        raise KeyError_("entry tls.key holds no PEM private key")
    if is_ca(first_certificate_der(chain)):
        raise KeyError_("entry tls.crt is a CA certificate; a client certificate is needed")
    return chain.strip() + "\n", key.strip() + "\n"


def certificate_only(text: str) -> str:
    """The first PEM CERTIFICATE of `text`, alone (a CA or a client certificate to allow; never a private key
    sent along)."""
    for match in BLOCK.finditer(text):
        if match.group(1) == "CERTIFICATE":
            try:
                base64.b64decode(re.sub(r"\s+", "", match.group(2)), validate=True)
            except ValueError:
                raise KeyError_("holds a CERTIFICATE that is not valid base64") from None
            return match.group(0).strip() + "\n"
    raise KeyError_("holds no PEM CERTIFICATE")


BASIC_CONSTRAINTS_OID = bytes.fromhex("0603551d13")  # 2.5.29.19


def is_ca(der: bytes) -> bool:
    """Does this certificate (DER) say `CA:TRUE` in its basic constraints?"""
    at = der.find(BASIC_CONSTRAINTS_OID)
    if at < 0:
        return False
    at += len(BASIC_CONSTRAINTS_OID)
    tag, vstart, vend = _tlv(der, at)
    if tag == 0x01:  # critical flag
        tag, vstart, vend = _tlv(der, vend)
    if tag != 0x04:  # the extension's value: an OCTET STRING holding SEQUENCE { cA BOOLEAN DEFAULT FALSE, ... }
        return False
    _, sstart, send = _tlv(der, vstart)
    if sstart >= send:
        return False
    inner_tag, istart, _ = _tlv(der, sstart)
    return inner_tag == 0x01 and der[istart] != 0


def leaf_only(chain: str) -> str:
    """The first certificate of a chain, alone; KeyError_ when it is a CA (Otoroshi trusts a stored CA
    certificate for the whole gateway: a tenant's would vouch for clients and upstreams of every other)."""
    leaf = certificate_only(chain)
    if is_ca(first_certificate_der(leaf)):
        raise KeyError_("entry tls.crt is a CA certificate; a client certificate is needed")
    return leaf
