"""The `torii` command: `torii crds` prints the CRDs; `torii check` says clearly what is wrong with a gateway
connection (wrong URL, unreadable credentials), using the real apiserver for the credentials Secret."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import yaml
from kubernetes import client

from support.kube import api_client
from support.operator import CONFIG_NAMESPACE, free_port, put_secret, stack_gateways
from support.stack import ROOT, Stack
from torii import crds as crd_module


def torii(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **stack.env}
    return subprocess.run([sys.executable, "-m", "torii", *args], capture_output=True, text=True, env=env, timeout=60)


def test_crds_command_prints_every_crd(stack: Stack) -> None:
    done = torii(stack, "crds")
    docs = list(yaml.safe_load_all(done.stdout))
    assert done.returncode == 0 and [d["metadata"]["name"] for d in docs] == [r.crd_name for r in crd_module.RESOURCES]


def test_check_reports_wrong_url_and_bad_credentials(stack: Stack, tmp_path: Path) -> None:
    admin = api_client(stack.kubeconfig)
    put_secret(admin, CONFIG_NAMESPACE, "torii-check", {"tyk": "secret-value-never-printed"})
    ref = {"namespace": CONFIG_NAMESPACE, "name": "torii-check"}
    config = tmp_path / "torii.yaml"
    config.write_text(yaml.safe_dump({"gateways": [
        {"name": "closed", "type": "tyk", "url": f"http://127.0.0.1:{free_port()}", "insecureHttp": True,
         "secretRef": {**ref, "key": "tyk"}},
        {"name": "nokey", "type": "tyk", "url": "http://127.0.0.1:1", "insecureHttp": True,
         "secretRef": {**ref, "key": "missing"}},
        {"name": "nosecret", "type": "tyk", "url": "http://127.0.0.1:1", "insecureHttp": True,
         "secretRef": {"namespace": CONFIG_NAMESPACE, "name": "does-not-exist", "key": "tyk"}},
        {"name": "plain", "type": "tyk", "url": "http://127.0.0.1:1", "secretRef": {**ref, "key": "tyk"}},
    ]}))  # fmt: skip
    done = torii(stack, "check", "--config", str(config))
    assert done.returncode == 1
    out = done.stdout
    assert "FAIL closed (tyk): GatewayUnavailable" in out and "cannot reach" in out
    assert "FAIL nokey: gateway nokey is misconfigured: Secret torii-system/torii-check has no key 'missing'" in out
    assert "FAIL nosecret" in out and "torii-system/does-not-exist" in out and "404" in out
    # Admin credentials never cross the network in clear unless the connection says so.
    assert "FAIL plain: gateway plain is misconfigured: url http://127.0.0.1:1 is plain http" in out
    assert "insecureHttp: true" in out
    assert "secret-value-never-printed" not in out + done.stderr
    client.CoreV1Api(admin).delete_namespaced_secret("torii-check", CONFIG_NAMESPACE)


def test_check_connects_to_the_real_gateways(stack: Stack, tmp_path: Path) -> None:
    """`torii check` against the stack's Tyk (`GET /tyk/apis/`, `/hello`) and Otoroshi (`GET /api/groups`)."""
    stack.require("tyk")
    stack.require("otoroshi")
    admin = api_client(stack.kubeconfig)
    gateways, secret = stack_gateways(stack, "torii-check-live")
    put_secret(admin, CONFIG_NAMESPACE, "torii-check-live", secret)
    config = tmp_path / "torii.yaml"
    config.write_text(yaml.safe_dump({"gateways": gateways}))
    done = torii(stack, "check", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok   tyk (tyk): Tyk Gateway 5.10.2 at {stack.env['TYK_URL']}" in done.stdout
    assert f"ok   otoroshi (otoroshi): Otoroshi at {stack.env['OTOROSHI_URL']}" in done.stdout
    assert stack.env["TYK_SECRET"] not in done.stdout + done.stderr


def test_check_rejects_invalid_configuration(stack: Stack, tmp_path: Path) -> None:
    config = tmp_path / "torii.yaml"
    config.write_text(yaml.safe_dump({"gateways": [{"name": "t", "type": "kong", "url": "http://x"}]}))
    done = torii(stack, "check", "--config", str(config))
    assert done.returncode == 2 and "gateways.0.type" in done.stderr and "'tyk' or 'otoroshi'" in done.stderr


def test_clean_virtualenv_install_like_the_image(tmp_path: Path) -> None:
    """The Dockerfile's install step (`pip install .`, runtime deps only) works in a fresh virtualenv."""
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    pip = subprocess.run([str(target / "bin" / "pip"), "install", "-q", str(ROOT)], capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-2000:]
    freeze = subprocess.run([str(target / "bin" / "pip"), "freeze"], capture_output=True, text=True).stdout.lower()
    assert "pytest" not in freeze and "mypy" not in freeze and "ruff" not in freeze  # no dev tools in the image
    done = subprocess.run([str(target / "bin" / "torii"), "crds"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "gatewayapis.torii.dev" in done.stdout
    help_text = subprocess.run([str(target / "bin" / "torii"), "run", "--help"], capture_output=True, text=True).stdout
    assert "--priority-from-pod-name" in help_text


def test_https_admin_apis_are_verified_and_a_private_ca_is_given_by_configmap(stack: Stack, tmp_path: Path) -> None:
    """The real Tyk behind https with a certificate of a private CA: refused as untrusted by default, trusted
    with the connection's caBundle (a ConfigMap the platform team owns); the CA is never needed for http."""
    stack.require("tyk")
    from support.tls import https_front, make_ca_and_server_cert

    ca, cert, key = make_ca_and_server_cert(tmp_path)
    admin = api_client(stack.kubeconfig)
    core = client.CoreV1Api(admin)
    put_secret(admin, CONFIG_NAMESPACE, "torii-check-tls", {"tyk": stack.env["TYK_SECRET"]})
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="tyk-ca"), data={"ca.crt": ca.read_text()})
    try:
        core.create_namespaced_config_map(CONFIG_NAMESPACE, body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_config_map("tyk-ca", CONFIG_NAMESPACE, body)
    ref = {"namespace": CONFIG_NAMESPACE, "name": "torii-check-tls", "key": "tyk"}
    with https_front(stack.env["TYK_URL"], cert, key) as url:
        config = tmp_path / "torii.yaml"
        config.write_text(yaml.safe_dump({"gateways": [
            {"name": "untrusted", "type": "tyk", "url": url, "secretRef": ref},
            {"name": "private-ca", "type": "tyk", "url": url, "secretRef": ref,
             "caBundle": {"kind": "ConfigMap", "namespace": CONFIG_NAMESPACE, "name": "tyk-ca"}},
        ]}))  # fmt: skip
        done = torii(stack, "check", "--config", str(config))
    out = done.stdout
    assert "FAIL untrusted (tyk): GatewayUnavailable" in out and "TLS certificate is not trusted" in out, out
    assert "caBundle" in out and "ok   private-ca (tyk): Tyk Gateway" in out, out
    assert stack.env["TYK_SECRET"] not in out + done.stderr
