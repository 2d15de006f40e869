"""Bad GatewayAPI manifests are refused by `kubectl apply` itself, with the field to fix named in the message."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.kube import kubectl
from support.stack import Stack


def manifest(ns: str, spec: dict[str, Any], name: str | None = None) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "torii.dev/v1alpha1",
            "kind": "GatewayAPI",
            "metadata": {"name": name or f"api-{uuid.uuid4().hex[:6]}", "namespace": ns},
            "spec": spec,
        }
    )


VALID = {"listenPath": "/orders/", "upstream": {"url": "http://orders.shop.svc:8080"}}

INVALID: list[tuple[str, dict[str, Any], list[str]]] = [
    ("missing listenPath", {"upstream": {"url": "http://a:80"}}, ["spec.listenPath", "Required value"]),
    ("relative listenPath", {**VALID, "listenPath": "orders/"}, ["spec.listenPath"]),
    ("missing upstream", {"listenPath": "/x/"}, ["spec.upstream", "Required value"]),
    (
        "url and targets",
        {**VALID, "upstream": {"url": "http://a:80", "targets": ["http://b:80"]}},
        ["spec.upstream", "exactly one of spec.upstream.url and spec.upstream.targets"],
    ),
    ("empty upstream", {**VALID, "upstream": {}}, ["spec.upstream", "exactly one"]),
    ("non-http upstream", {**VALID, "upstream": {"url": "ftp://files:21"}}, ["spec.upstream.url"]),
    ("bad target", {**VALID, "upstream": {"targets": ["http://a:1", "tcp://b"]}}, ["spec.upstream.targets[1]"]),
    ("unknown auth", {**VALID, "auth": "basic"}, ["spec.auth", "Unsupported value", "keyless"]),
    ("zero rate", {**VALID, "rateLimit": {"rate": 0, "per": 60}}, ["spec.rateLimit.rate"]),
    ("rate without per", {**VALID, "rateLimit": {"rate": 5}}, ["spec.rateLimit.per", "Required value"]),
    ("tyk api_id", {**VALID, "tyk": {"api_id": "mine"}}, ["spec.tyk.api_id is owned by Torii"]),
    ("tyk org_id", {**VALID, "tyk": {"org_id": "other"}}, ["spec.tyk.org_id is owned by Torii"]),
    ("otoroshi id", {**VALID, "otoroshi": {"id": "svc"}}, ["spec.otoroshi.id is owned by Torii"]),
    (
        "both escape hatches",
        {**VALID, "tyk": {}, "otoroshi": {}},
        ["spec.tyk and spec.otoroshi are mutually exclusive"],
    ),
    ("bad gateway name", {**VALID, "gateway": "Tyk_Prod"}, ["spec.gateway"]),
    ("unknown deletionPolicy", {**VALID, "deletionPolicy": "Keep"}, ["spec.deletionPolicy", "Orphan"]),
    ("typo in a field name", {**VALID, "listenpath": "/x/"}, ["spec.listenpath", "unknown field"]),
    ("negative CORS max age", {**VALID, "cors": {"maxAge": -1}}, ["spec.cors.maxAge"]),
    ("adopt without id", {**VALID, "adopt": {"orgId": "acme"}}, ["spec.adopt.id", "Required value"]),
    ("adopt id with a slash", {**VALID, "adopt": {"id": "a/b"}}, ["spec.adopt.id"]),
    (
        "TLS to a plain http upstream",
        {**VALID, "upstream": {"url": "http://a:80", "tls": {"insecureSkipVerify": True}}},
        ["spec.upstream.tls", "https"],
    ),
    ("malformed JWKS URL", {**VALID, "auth": "jwt", "jwt": {"jwksUrl": "idp.example/jwks"}}, ["spec.jwt.jwksUrl"]),
    (
        "HS algorithm with a JWKS",
        {**VALID, "auth": "jwt", "jwt": {"jwksUrl": "https://idp/jwks", "algorithm": "HS256"}},
        ["spec.jwt.algorithm", "RS or ES"],
    ),
    (
        "JWKS and a Secret",
        {**VALID, "auth": "jwt", "jwt": {"jwksUrl": "https://idp/jwks", "secretRef": {"name": "s"}}},
        ["spec.jwt", "at most one"],
    ),
    ("unknown JWT algorithm", {**VALID, "auth": "jwt", "jwt": {"algorithm": "none"}}, ["spec.jwt.algorithm"]),
    (
        "spec.jwt without auth: jwt",
        {**VALID, "auth": "key", "jwt": {"jwksUrl": "https://idp/jwks"}},
        ["spec.jwt is only for spec.auth: jwt"],
    ),
    (
        "an additional mode with keyless",
        {**VALID, "additionalAuth": ["jwt"], "jwt": {"jwksUrl": "https://idp/jwks", "header": "X-Token"}},
        ["spec.additionalAuth: each mode must differ from spec.auth, and neither can be keyless"],
    ),
    (
        "key and basic auth together",
        {**VALID, "auth": "key", "additionalAuth": ["basicAuth"]},
        ["key, basicAuth and oauth2 all read the Authorization header"],
    ),
    (
        "JWT beside a key on the key's header",
        {**VALID, "auth": "key", "additionalAuth": ["jwt"], "jwt": {"jwksUrl": "https://idp/jwks"}},
        ["spec.jwt.header other than Authorization"],
    ),
    (
        "per-key JWT beside a key",
        {**VALID, "auth": "key", "additionalAuth": ["jwt"], "jwt": {"header": "X-Token"}},
        ["JWTs need spec.jwt.jwksUrl or spec.jwt.secretRef"],
    ),
    (
        "JWT Secret without a name",
        {**VALID, "auth": "jwt", "jwt": {"secretRef": {"key": "k"}}},
        ["spec.jwt.secretRef.name", "Required value"],
    ),
]


@pytest.mark.parametrize(("case", "spec", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_manifest_is_rejected_naming_the_field(
    crds: Stack, ns: str, case: str, spec: dict[str, Any], expected: list[str]
) -> None:
    done = kubectl("apply", "-f", "-", stdin=manifest(ns, spec), kubeconfig=crds.kubeconfig)
    assert done.returncode != 0, f"{case}: accepted but should be refused"
    for text in expected:
        assert text in done.stderr, f"{case}: {text!r} not in: {done.stderr}"
    assert kubectl("get", "gatewayapis", "-n", ns, "-o", "name", kubeconfig=crds.kubeconfig).stdout == ""


def test_valid_manifest_is_accepted(crds: Stack, ns: str) -> None:
    done = kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        stdin=manifest(ns, {**VALID, "tyk": {"use_keyless": True}}),
        kubeconfig=crds.kubeconfig,
    )
    assert done.returncode == 0, done.stderr


def test_gateway_is_immutable(crds: Stack, ns: str) -> None:
    name = f"immutable-{uuid.uuid4().hex[:6]}"
    first = kubectl(
        "apply", "-f", "-", stdin=manifest(ns, {**VALID, "gateway": "tyk"}, name), kubeconfig=crds.kubeconfig
    )
    assert first.returncode == 0, first.stderr
    moved = kubectl(
        "apply", "-f", "-", stdin=manifest(ns, {**VALID, "gateway": "otoroshi"}, name), kubeconfig=crds.kubeconfig
    )
    assert moved.returncode != 0
    assert "spec.gateway is immutable" in moved.stderr
    # Other fields stay editable.
    edited = kubectl(
        "apply",
        "-f",
        "-",
        stdin=manifest(ns, {**VALID, "gateway": "tyk", "active": False}, name),
        kubeconfig=crds.kubeconfig,
    )
    assert edited.returncode == 0, edited.stderr
    kubectl("delete", "gatewayapi", name, "-n", ns, "--wait=false", kubeconfig=crds.kubeconfig)


def test_adoption_is_immutable(crds: Stack, ns: str) -> None:
    # The adopted gateway object is the resource's identity: changing it would strand the first one.
    name = f"adopt-{uuid.uuid4().hex[:6]}"
    first = kubectl("apply", "-f", "-", stdin=manifest(ns, {**VALID, "adopt": {"id": "orders-v1"}}, name),
                    kubeconfig=crds.kubeconfig)  # fmt: skip
    assert first.returncode == 0, first.stderr
    for changed in ({**VALID, "adopt": {"id": "orders-v2"}}, VALID):
        moved = kubectl("apply", "-f", "-", stdin=manifest(ns, changed, name), kubeconfig=crds.kubeconfig)
        assert moved.returncode != 0 and "spec.adopt is immutable" in moved.stderr, moved.stderr
    # Its other fields can be corrected (an orgId Torii refused to guess).
    fixed = kubectl("apply", "-f", "-", stdin=manifest(ns, {**VALID, "adopt": {"id": "orders-v1", "orgId": "acme"}},
                                                        name), kubeconfig=crds.kubeconfig)  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr
    kubectl("delete", "gatewayapi", name, "-n", ns, "--wait=false", kubeconfig=crds.kubeconfig)


def test_examples_are_valid(crds: Stack) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    # The namespace must exist for a server-side dry run of namespaced objects.
    kubectl("apply", "-f", str(examples / "00-namespace.yaml"), kubeconfig=crds.kubeconfig)
    done = kubectl("apply", "--dry-run=server", "-f", str(examples), kubeconfig=crds.kubeconfig)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("(server dry run)") >= 6
