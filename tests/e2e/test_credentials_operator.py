"""GatewayKey and OAuthClient against the real apiserver, on the paths that need no working gateway:
schema/CEL validation, reference checks, a foreign Secret left untouched, Unsupported features."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.kube import kubectl
from support.operator import Operator, release_all, running_operator, unreachable_gateways
from support.stack import Stack
from support.world import World
from torii.models.common import API_VERSION


@pytest.fixture(scope="module")
def live(crds: Stack, admin: client.ApiClient, ns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    gateways, secrets = unreachable_gateways("torii-gateways-cred", ("tyk", "tyk"), ("otoroshi", "otoroshi"))
    with running_operator(crds, admin, tmp_path_factory.mktemp("cred"), gateways=gateways, secret_data=secrets,
                          namespaces=[ns], secret_name="torii-gateways-cred") as op:  # fmt: skip
        yield op
        release_all(admin, ns)


API = {"listenPath": "/x/", "upstream": {"url": "http://127.0.0.1:9/"}}


def test_key_to_another_namespace_is_refused(world: World, live: Operator) -> None:
    name = world.new("GatewayKey", {"apis": [{"name": "orders", "namespace": "elsewhere"}]})
    cond = world.reason("GatewayKey", name, "InvalidReference", timeout=60)
    assert cond["status"] == "False" and "spec.apis[0].namespace" in cond["message"]


def test_key_to_an_api_on_another_gateway_is_refused(world: World, live: Operator) -> None:
    api = world.new("GatewayAPI", {**API, "gateway": "otoroshi", "auth": "key"})
    name = world.new("GatewayKey", {"gateway": "tyk", "apis": [{"name": api}]})
    cond = world.reason("GatewayKey", name, "InvalidReference", timeout=60)
    assert "'otoroshi'" in cond["message"] and "'tyk'" in cond["message"]


def test_key_to_a_keyless_api_is_refused(world: World, live: Operator) -> None:
    api = world.new("GatewayAPI", {**API, "gateway": "tyk", "auth": "keyless"})
    name = world.new("GatewayKey", {"apis": [{"name": api}]})
    assert "auth: key" in world.reason("GatewayKey", name, "InvalidReference", timeout=60)["message"]


def test_key_waits_for_a_missing_api(world: World, live: Operator) -> None:
    name = world.new("GatewayKey", {"apis": [{"name": "not-yet"}]})
    assert "does not exist" in world.reason("GatewayKey", name, "WaitingForAPI", timeout=60)["message"]


def test_foreign_secret_is_left_untouched_and_reported(world: World, live: Operator) -> None:
    core, ns = world.core, world.ns
    core.create_namespaced_secret(ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="app-credentials", labels={"team": "payments"}),
        data={"password": base64.b64encode(b"theirs").decode()},
    ))  # fmt: skip
    before = core.read_namespaced_secret("app-credentials", ns)
    name = world.new("GatewayKey", {"apis": [{"name": "orders"}], "secretName": "app-credentials"})
    cond = world.reason("GatewayKey", name, "SecretConflict", timeout=60)
    assert "app-credentials" in cond["message"] and "never overwrites" in cond["message"]
    oauth = world.new("OAuthClient", {"api": "orders", "redirectUri": "https://app/cb",
                                              "secretName": "app-credentials"})  # fmt: skip
    world.reason("OAuthClient", oauth, "SecretConflict", timeout=60)
    after = core.read_namespaced_secret("app-credentials", ns)
    assert after.data == before.data and after.metadata.labels == before.metadata.labels
    assert after.metadata.resource_version == before.metadata.resource_version  # not even re-written
    assert not after.metadata.owner_references


def test_oauth_client_on_otoroshi_is_unsupported(world: World, live: Operator) -> None:
    name = world.new("OAuthClient", {"gateway": "otoroshi", "api": "x", "redirectUri": "https://app/cb"})
    assert "Tyk" in world.reason("OAuthClient", name, "Unsupported", timeout=60)["message"]


def test_oauth_client_needs_an_oauth2_api(world: World, live: Operator) -> None:
    api = world.new("GatewayAPI", {**API, "gateway": "tyk", "auth": "key"})
    name = world.new("OAuthClient", {"api": api, "redirectUri": "https://app/cb"})
    assert "auth: oauth2" in world.reason("OAuthClient", name, "InvalidReference", timeout=60)["message"]


def test_kubectl_get_torii_lists_every_kind(world: World, live: Operator, crds: Stack, ns: str, tmp_path: Path) -> None:
    api = world.new("GatewayAPI", {**API, "gateway": "tyk"})
    world.new("GatewayKey", {"apis": [{"name": api}]})
    world.new("OAuthClient", {"api": api, "redirectUri": "https://app/cb"})
    # A fresh discovery cache: kubectl may have cached discovery before the CRDs existed (categories come from it).
    done = kubectl("get", "torii", "-n", ns, "-o", "name", f"--cache-dir={tmp_path}", kubeconfig=crds.kubeconfig)
    assert done.returncode == 0, done.stderr
    kinds = {line.split("/")[0] for line in done.stdout.split()}
    assert {"gatewayapi.torii.dev", "gatewaykey.torii.dev", "oauthclient.torii.dev"} <= kinds
    explained = kubectl("explain", "gatewaykey.spec.rotation", f"--cache-dir={tmp_path}", kubeconfig=crds.kubeconfig)
    assert "generation" in explained.stdout and "grace" in explained.stdout.lower()


INVALID: list[tuple[str, str, dict[str, Any], str]] = [
    ("both apis and apiGroup", "GatewayKey", {"apis": [{"name": "a"}], "apiGroup": "g"}, "exactly one of spec.apis"),
    ("neither apis nor apiGroup", "GatewayKey", {"enabled": True}, "exactly one of spec.apis"),
    ("empty apis", "GatewayKey", {"apis": []}, "spec.apis"),
    ("bad quota period", "GatewayKey", {"apis": [{"name": "a"}], "quota": {"max": 5, "period": "week"}},
     "spec.quota.period"),
    ("negative grace", "GatewayKey", {"apis": [{"name": "a"}], "rotation": {"generation": 1, "gracePeriodSeconds": -1}},
     "spec.rotation.gracePeriodSeconds"),
    ("bad expiry", "GatewayKey", {"apis": [{"name": "a"}], "expires": "next tuesday"}, "spec.expires"),
    ("tyk access_rights", "GatewayKey", {"apis": [{"name": "a"}], "tyk": {"access_rights": {}}},
     "spec.tyk.access_rights"),
    ("otoroshi clientSecret", "GatewayKey", {"apis": [{"name": "a"}], "otoroshi": {"clientSecret": "x"}},
     "spec.otoroshi.clientSecret"),
    ("unknown key type", "GatewayKey", {"apis": [{"name": "a"}], "type": "hmac"}, "spec.type"),
    ("a basic-auth user's password handed over", "GatewayKey", {"apis": [{"name": "a"}], "type": "basicAuth",
     "adopt": {"id": "x", "credentialSecretRef": {"name": "pw"}}}, "spec.adopt.credentialSecretRef: a basic-auth"),
    ("bad redirect", "OAuthClient", {"api": "a", "redirectUri": "not a uri"}, "spec.redirectUri"),
    ("missing api", "OAuthClient", {"redirectUri": "https://a/cb"}, "spec.api"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "kind", "spec", "text"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_credential_manifests(
    crds: Stack, ns: str, case: str, kind: str, spec: dict[str, Any], text: str
) -> None:
    manifest = yaml.safe_dump({"apiVersion": API_VERSION, "kind": kind,
                               "metadata": {"name": "bad", "namespace": ns}, "spec": spec})  # fmt: skip
    done = kubectl("apply", "-f", "-", stdin=manifest, kubeconfig=crds.kubeconfig)
    assert done.returncode != 0 and text in done.stderr, done.stderr


def test_secret_name_and_api_are_immutable(crds: Stack, ns: str) -> None:
    def apply(kind: str, spec: dict[str, Any]) -> Any:
        manifest = yaml.safe_dump({"apiVersion": API_VERSION, "kind": kind,
                                   "metadata": {"name": "immutable", "namespace": ns}, "spec": spec})  # fmt: skip
        return kubectl("apply", "-f", "-", stdin=manifest, kubeconfig=crds.kubeconfig)

    assert (
        apply("GatewayKey", {"apis": [{"name": "a"}], "secretName": "one", "deletionPolicy": "Orphan"}).returncode == 0
    )
    moved = apply("GatewayKey", {"apis": [{"name": "a"}], "secretName": "two", "deletionPolicy": "Orphan"})
    assert moved.returncode != 0 and "spec.secretName is immutable" in moved.stderr
    typed = {"apis": [{"name": "a"}], "secretName": "one", "deletionPolicy": "Orphan"}
    retyped = apply("GatewayKey", {**typed, "type": "basicAuth"})
    assert retyped.returncode != 0 and "spec.type is immutable" in retyped.stderr
    assert apply("OAuthClient", {"api": "a", "redirectUri": "https://a/cb"}).returncode == 0
    moved = apply("OAuthClient", {"api": "b", "redirectUri": "https://a/cb"})
    assert moved.returncode != 0 and "spec.api is immutable" in moved.stderr
