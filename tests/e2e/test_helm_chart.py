"""The Helm chart against the real apiserver: lint, deterministic rendering, clear errors for bad values, and
least-privilege RBAC proven by running the operator with the chart's ServiceAccount identity."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from support.kube import api_client, kubectl, namespace
from support.operator import free_port, running_operator
from support.stack import ROOT, Stack
from support.tenants import sa_kubeconfig
from support.wait import wait_until
from support.world import World

CHART = ROOT / "helm" / "torii"
KUBE_VERSION = "v1.32.5"  # `helm template` has no cluster to ask
GATEWAYS = ["--set", "gateways[0].name=tyk", "--set", "gateways[0].type=tyk",
            "--set", "gateways[0].url=http://tyk.gateways:8080", "--set", "defaultGateway=tyk"]  # fmt: skip


def helm(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"KUBECONFIG": stack.kubeconfig, "HOME": str(Path.home()), "PATH": "/usr/bin:/bin"}
    return subprocess.run([stack.env["TORII_HELM"], *args], capture_output=True, text=True, env=env, timeout=120)


def render(stack: Stack, *args: str) -> list[dict[str, Any]]:
    done = helm(stack, "template", "torii", str(CHART), "-n", "torii-system", "--kube-version", KUBE_VERSION, *args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_lint_and_render_is_deterministic(stack: Stack) -> None:
    assert helm(stack, "lint", str(CHART), *GATEWAYS).returncode == 0
    args = [*GATEWAYS, "--set", "credentials.values.tyk-secret=abc", "--set", "replicaCount=2"]
    first = helm(stack, "template", "torii", str(CHART), "--kube-version", KUBE_VERSION, *args).stdout
    second = helm(stack, "template", "torii", str(CHART), "--kube-version", KUBE_VERSION, *args).stdout
    assert first and first == second


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "gateways[0].name=k", "--set", "gateways[0].type=kong", "--set", "gateways[0].url=http://k"],
         "gateways.0.type"),
        (["--set", "gateways[0].name=Tyk Prod", "--set", "gateways[0].type=tyk", "--set", "gateways[0].url=http://t"],
         "gateways.0.name"),
        (["--set", "gateways[0].name=t", "--set", "gateways[0].type=tyk", "--set", "gateways[0].url=tyk:8080"],
         "gateways.0.url"),
        (["--set", "replicaCount=-1"], "replicaCount"),
        (["--set", "logFormat=xml"], "logFormat"),
        (["--set", "scope.clusterWide=false"], "scope.namespaces must list at least one namespace"),
        ([*GATEWAYS[:6], "--set", "defaultGateway=nope"], 'defaultGateway "nope"'),
        (["--set", "replicas=2"], "replicas"),
        (["--set", "maxObjectWorkers=512"], "maxObjectWorkers (512) must be greater than maxHeldChanges (512)"),
        (["--set", "maxHeldChanges=-1"], "maxHeldChanges"),
    ],
)  # fmt: skip
def test_bad_values_fail_naming_the_value(stack: Stack, args: list[str], message: str) -> None:
    done = helm(stack, "template", "torii", str(CHART), "--kube-version", KUBE_VERSION, *args)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_deployment_is_locked_down(stack: Stack) -> None:
    docs = render(stack, *GATEWAYS, "--set", "replicaCount=3")
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
    }  # fmt: skip
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "--priority-from-pod-name" in container["args"] and deploy["spec"]["replicas"] == 3
    assert any(d["kind"] == "ClusterKopfPeering" for d in docs)
    assert container["args"][0].startswith("--config=")  # the entrypoint is already `torii run`
    config = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["torii.yaml"])
    assert config["gateways"][0]["secretRef"] == {
        "namespace": "torii-system",
        "name": "torii-credentials",
        "key": "tyk-secret",
    }


def test_namespaced_scope_grants_nothing_cluster_wide_on_resources(stack: Stack) -> None:
    docs = render(stack, *GATEWAYS, "--set", "scope.clusterWide=false", "--set", "scope.namespaces={team-a,team-b}")
    cluster_rules = [r for d in docs if d["kind"] == "ClusterRole" for r in d["rules"]]
    assert not any("secrets" in r["resources"] or "torii.dev" in r["apiGroups"] for r in cluster_rules)
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Role"}
    assert {("team-a", "torii"), ("team-b", "torii")} <= roles
    peerings = [d for d in docs if d["kind"] == "KopfPeering"]
    assert {p["metadata"]["namespace"] for p in peerings} == {"team-a", "team-b"}


def test_tyk_nodes_from_a_service_get_read_only_endpointslices_of_its_namespace(stack: Stack) -> None:
    service = ["--set", "gateways[0].nodeService.namespace=tyk", "--set", "gateways[0].nodeService.name=tyk-gw",
               "--set", "gateways[0].nodeService.port=admin"]  # fmt: skip
    docs = render(stack, *GATEWAYS, *service)
    config = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["torii.yaml"])
    assert config["gateways"][0]["nodeService"] == {"namespace": "tyk", "name": "tyk-gw", "port": "admin",
                                                    "scheme": "https"}  # fmt: skip
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "torii-nodes-tyk-gw")
    assert role["metadata"]["namespace"] == "tyk"
    assert role["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                              "verbs": ["list", "watch"]}]  # fmt: skip
    binding = next(d for d in docs if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "torii-nodes-tyk-gw")
    assert binding["subjects"][0]["namespace"] == "torii-system"
    listed = render(stack, *GATEWAYS, "--set", "gateways[0].nodes={https://a:8080,https://b:8080}")
    config = yaml.safe_load(next(d for d in listed if d["kind"] == "ConfigMap")["data"]["torii.yaml"])
    assert config["gateways"][0]["nodes"] == ["https://a:8080", "https://b:8080"]
    assert not any(d["kind"] == "Role" and "nodes" in d["metadata"]["name"] for d in listed)


@pytest.fixture
def installed(crds: Stack) -> Iterator[tuple[str, str]]:
    release_ns = f"torii-{uuid.uuid4().hex[:6]}"
    closed = free_port()
    done = helm(crds, "install", "torii", str(CHART), "-n", release_ns, "--create-namespace",
                "--set", "gateways[0].name=tyk", "--set", "gateways[0].type=tyk",
                "--set", f"gateways[0].url=http://127.0.0.1:{closed}", "--set", "gateways[0].insecureHttp=true",
                "--set", "defaultGateway=tyk",
                "--set", "credentials.values.tyk-secret=not-a-real-secret",
                "--set", "driftIntervalSeconds=2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    yield release_ns, "torii"
    helm(crds, "uninstall", "torii", "-n", release_ns)
    kubectl("delete", "namespace", release_ns, "--wait=false", kubeconfig=crds.kubeconfig)


def can_i(stack: Stack, release_ns: str, sa: str, *args: str) -> bool:
    done = kubectl("auth", "can-i", *args, f"--as=system:serviceaccount:{release_ns}:{sa}", kubeconfig=stack.kubeconfig)
    return done.stdout.strip() == "yes"


def test_operator_runs_with_the_charts_rbac_and_nothing_more(
    crds: Stack, installed: tuple[str, str], tmp_path: Path
) -> None:
    release_ns, sa = installed
    admin = api_client(crds.kubeconfig)
    config_text = client.CoreV1Api(admin).read_namespaced_config_map("torii-config", release_ns).data["torii.yaml"]
    kubeconfig = sa_kubeconfig(crds.kubeconfig, release_ns, sa, tmp_path / "sa.kubeconfig")
    with (
        namespace(admin, "rbac-app") as ns,
        running_operator(
            crds, admin, tmp_path, config_text=config_text, kubeconfig=kubeconfig, peering=("torii", 10)
        ) as op,
    ):
        world = World(admin, ns)

        def reason(kind: str, name: str) -> str | None:
            return (world.condition_now(kind, name) or {}).get("reason")

        world.create("GatewayAPI", "api", {"listenPath": "/a/", "upstream": {"url": "http://127.0.0.1:9"},
                                           "auth": "key"})  # fmt: skip
        client.CoreV1Api(admin).create_namespaced_secret(
            ns, client.V1Secret(metadata=client.V1ObjectMeta(name="taken"))
        )
        world.create("GatewayKey", "key", {"apis": [{"name": "api"}], "secretName": "taken"})
        world.create("OAuthClient", "oauth", {"api": "api", "redirectUri": "https://app/cb"})
        # Each path reads or writes what it needs: gateway credentials Secret, status, events, finalizers, Secrets.
        wait_until(lambda: reason("GatewayAPI", "api") == "GatewayUnavailable", timeout=60, what="GatewayAPI status")
        wait_until(lambda: reason("GatewayKey", "key") == "SecretConflict", timeout=60, what="GatewayKey status")
        wait_until(lambda: reason("OAuthClient", "oauth") == "InvalidReference", timeout=60, what="OAuthClient status")
        events = client.CoreV1Api(admin)
        wait_until(lambda: any(e.reason == "GatewayUnavailable" for e in events.list_namespaced_event(ns).items),
                   what="events posted")  # fmt: skip
        world.patch("GatewayAPI", "api", {"deletionPolicy": "Orphan"})
        for kind, name in (("GatewayAPI", "api"), ("GatewayKey", "key"), ("OAuthClient", "oauth")):
            world.delete(kind, name, wait=False)
        wait_until(lambda: not world.list("GatewayAPI"), timeout=60, what="finalizer released")
        log = op.log()
        # An RBAC denial names the identity: `... is forbidden: User "system:serviceaccount:<ns>:<sa>" cannot ...`.
        denied = [line for line in log.splitlines() if 'User \\"system:serviceaccount:' in line or
                  'User "system:serviceaccount:' in line]  # fmt: skip
        assert denied == [], denied[:3]
        assert "is forbidden: User" not in log.replace('\\"', '"'), log[-3000:]
        assert "not-a-real-secret" not in log

    # What the chart grants, and only that. Cluster-wide, generated Secrets may live in any namespace: get,
    # create and update (rotation replaces them) them, but never list, watch, patch or delete Secrets anywhere.
    assert can_i(crds, release_ns, sa, "create", "secrets", "-n", "rbac-app")
    assert can_i(crds, release_ns, sa, "update", "secrets", "-n", "rbac-app")
    assert not can_i(crds, release_ns, sa, "patch", "secrets", "-n", "rbac-app")
    assert can_i(crds, release_ns, sa, "get", "secret/torii-credentials", "-n", release_ns)
    assert not can_i(crds, release_ns, sa, "list", "secrets", "-n", release_ns)
    assert not can_i(crds, release_ns, sa, "watch", "secrets", "-n", "rbac-app")
    assert not can_i(crds, release_ns, sa, "delete", "secrets", "-n", "rbac-app")
    assert not can_i(crds, release_ns, sa, "list", "secrets", "-n", "kube-system")
    assert not can_i(crds, release_ns, sa, "create", "pods", "-n", "rbac-app")
    assert not can_i(crds, release_ns, sa, "delete", "namespaces")
    assert not can_i(crds, release_ns, sa, "delete", "gatewayapis.torii.dev", "-n", "rbac-app")
    admin.close()


def test_namespaced_install_cannot_touch_other_namespaces(crds: Stack) -> None:
    release_ns, team, other = (f"{p}-{uuid.uuid4().hex[:6]}" for p in ("torii", "team", "other"))
    # The chart's Roles go into the watched namespaces: they exist first, as a platform team would have them.
    assert kubectl("create", "namespace", team, kubeconfig=crds.kubeconfig).returncode == 0
    done = helm(crds, "install", "scoped", str(CHART), "-n", release_ns, "--create-namespace",
                "--set", "scope.clusterWide=false", "--set", f"scope.namespaces={{{team}}}",
                "--set", "credentials.values.tyk-secret=x")  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        sa = "scoped-torii"
        assert can_i(crds, release_ns, sa, "create", "secrets", "-n", team)
        assert can_i(crds, release_ns, sa, "patch", "gatewaykeys.torii.dev/status", "-n", team)
        assert not can_i(crds, release_ns, sa, "get", "secrets", "-n", other)
        assert not can_i(crds, release_ns, sa, "get", "gatewayapis.torii.dev", "-n", other)
        assert not can_i(crds, release_ns, sa, "get", "secret/other", "-n", release_ns)
    finally:
        helm(crds, "uninstall", "scoped", "-n", release_ns)
        for ns in (release_ns, team):
            kubectl("delete", "namespace", ns, "--wait=false", kubeconfig=crds.kubeconfig)


def test_the_operator_under_the_charts_rbac_creates_rotates_adopts_and_deletes(crds: Stack, tmp_path: Path) -> None:
    """Least privilege proven on the real Tyk: the chart's namespaced install (Roles only), the operator running
    with its ServiceAccount's token, through every path that touches the apiserver: an API and a key created
    (Secret create), rotated (Secret update, status records), an API made by hand adopted (granted by the
    chart's tenancy value), and all deleted (finalizers, gateway cleanup). Not one RBAC denial in its log."""
    crds.require("tyk")
    release_ns, team = (f"{p}-{uuid.uuid4().hex[:6]}" for p in ("torii", "rbac-live"))
    assert kubectl("create", "namespace", team, kubeconfig=crds.kubeconfig).returncode == 0
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({
        "scope": {"clusterWide": False, "namespaces": [team]}, "defaultGateway": "tyk", "driftIntervalSeconds": 2,
        "gateways": [{"name": "tyk", "type": "tyk", "url": crds.env["TYK_URL"], "insecureHttp": True}],
        "credentials": {"values": {"tyk-secret": crds.env["TYK_SECRET"]}},
        "tenancy": {"adoption": {"namespaces": [team], "credentials": True}},
    }))  # fmt: skip
    done = helm(crds, "install", "live", str(CHART), "-n", release_ns, "--create-namespace", "-f", str(values))
    assert done.returncode == 0, done.stderr
    admin = api_client(crds.kubeconfig)
    core = client.CoreV1Api(admin)
    tyk = httpx.Client(base_url=crds.env["TYK_URL"], headers={"X-Tyk-Authorization": crds.env["TYK_SECRET"]})
    hand_made = f"rbac-hand-{uuid.uuid4().hex[:6]}"
    try:
        config_text = core.read_namespaced_config_map("live-torii-config", release_ns).data["torii.yaml"]
        kubeconfig = sa_kubeconfig(crds.kubeconfig, release_ns, "live-torii", tmp_path / "sa.kubeconfig")
        tyk.post("/tyk/apis", json={
            "api_id": hand_made, "name": "by hand", "org_id": "torii", "active": True, "use_keyless": True,
            "proxy": {"listen_path": f"/{hand_made}/", "target_url": "http://127.0.0.1:9", "strip_listen_path": True},
            "version_data": {"not_versioned": True, "versions": {"Default": {"name": "Default"}}},
        })  # fmt: skip
        tyk.get("/tyk/reload/", params={"block": "true"})
        with running_operator(crds, admin, tmp_path / "op", config_text=config_text, kubeconfig=kubeconfig,
                              peering=("live-torii", 10)) as op:  # fmt: skip
            world = World(admin, team)

            world.create("GatewayAPI", "api", {"listenPath": f"/{team}/", "auth": "key",
                                               "upstream": {"url": "http://127.0.0.1:9"}})  # fmt: skip
            world.ready("GatewayAPI", "api")
            world.create("GatewayKey", "key", {"apis": [{"name": "api"}]})
            first = world.ready("GatewayKey", "key")
            old = core.read_namespaced_secret("key", team).data["key"]
            world.patch("GatewayKey", "key", {"rotation": {"generation": 1, "gracePeriodSeconds": 0}})
            rotated = world.ready("GatewayKey", "key")
            assert core.read_namespaced_secret("key", team).data["key"] != old
            assert rotated["status"]["credentialDigest"] != first["status"]["credentialDigest"]
            world.create("GatewayAPI", "adopted", {"listenPath": f"/{hand_made}/", "adopt": {"id": hand_made},
                                                   "upstream": {"url": "http://127.0.0.1:9"}})  # fmt: skip
            world.ready("GatewayAPI", "adopted")
            assert tyk.get(f"/tyk/apis/{hand_made}").json()["config_data"]["torii"]["namespace"] == team
            for kind, name in (("GatewayKey", "key"), ("GatewayAPI", "api"), ("GatewayAPI", "adopted")):
                world.delete(kind, name, wait=False)
            wait_until(lambda: not world.list("GatewayKey") + world.list("GatewayAPI"), timeout=90, what="all deleted")
            assert tyk.get(f"/tyk/apis/{hand_made}").status_code == 404
            log = op.log().replace('\\"', '"')
            assert "is forbidden" not in log and "Forbidden" not in log, log[-3000:]
            assert crds.env["TYK_SECRET"] not in log
    finally:
        tyk.delete(f"/tyk/apis/{hand_made}")
        tyk.get("/tyk/reload/", params={"block": "true"})
        tyk.close()
        helm(crds, "uninstall", "live", "-n", release_ns)
        for ns in (release_ns, team):
            kubectl("delete", "namespace", ns, "--wait=false", kubeconfig=crds.kubeconfig)
        admin.close()
