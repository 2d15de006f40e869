"""The bad input catalogue: malformed and hostile manifests, each refused at `kubectl apply` naming the field, or
ending Ready=False with a reason that says what to fix, while neighbours in the same namespace stay Ready and
served throughout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client

from chaos.audit import audit, ready_now
from chaos.conftest import Clock, Operators, report
from chaos.population import Obj, apply, converged, credentials, listed
from chaos.test_faults import assert_clean, finish, record, tally
from support.kube import kubectl
from support.stack import Stack
from support.upstream import upstream
from support.wait import wait_until
from support.world import GROUP, PLURALS, VERSION

API = {"gateway": "tyk", "listenPath": "/bad/", "upstream": {"url": "http://127.0.0.1:9/"}}
KEY = {"gateway": "tyk", "apis": [{"name": "n-key"}]}
CLIENT = {"gateway": "tyk", "api": "n-oauth", "redirectUri": "https://app.example/cb"}
MB = "x" * (1024 * 1024)

# (case, kind, spec (or a whole manifest's metadata override under "_metadata"), text the refusal must contain)
REFUSED: list[tuple[str, str, dict[str, Any], str]] = [
    ("missing listenPath", "GatewayAPI", {"gateway": "tyk", "upstream": {"url": "http://a:80"}}, "spec.listenPath"),
    ("empty gateway name", "GatewayAPI", {**API, "gateway": ""}, "spec.gateway"),
    ("relative listenPath", "GatewayAPI", {**API, "listenPath": "bad/"}, "spec.listenPath"),
    ("listenPath with spaces", "GatewayAPI", {**API, "listenPath": "/a b/"}, "spec.listenPath"),
    ("listenPath with CRLF", "GatewayAPI", {**API, "listenPath": "/a\r\nX-Evil: 1/"}, "spec.listenPath"),
    ("listenPath 10k long", "GatewayAPI", {**API, "listenPath": "/" + "a" * 10_000 + "/"}, "spec.listenPath"),
    ("listenPath a number", "GatewayAPI", {**API, "listenPath": 5}, "spec.listenPath"),
    ("missing upstream", "GatewayAPI", {k: v for k, v in API.items() if k != "upstream"}, "spec.upstream"),
    ("upstream url and targets", "GatewayAPI", {**API, "upstream": {"url": "http://a:1", "targets": ["http://b:1"]}},
     "spec.upstream"),
    ("empty upstream", "GatewayAPI", {**API, "upstream": {}}, "spec.upstream"),
    ("ftp upstream", "GatewayAPI", {**API, "upstream": {"url": "ftp://files:21"}}, "spec.upstream.url"),
    ("javascript upstream", "GatewayAPI", {**API, "upstream": {"url": "javascript:alert(1)"}}, "spec.upstream.url"),
    ("upstream with CRLF", "GatewayAPI", {**API, "upstream": {"url": "http://a:80/\r\nHost: evil"}},
     "spec.upstream.url"),
    ("upstream a list", "GatewayAPI", {**API, "upstream": ["http://a:80"]}, "spec.upstream"),
    ("tcp target", "GatewayAPI", {**API, "upstream": {"targets": ["http://a:1", "tcp://b"]}},
     "spec.upstream.targets[1]"),
    ("auth basic", "GatewayAPI", {**API, "auth": "basic"}, "spec.auth"),
    ("auth a number", "GatewayAPI", {**API, "auth": 1}, "spec.auth"),
    ("active a string", "GatewayAPI", {**API, "active": "yes"}, "spec.active"),
    ("stripListenPath a string", "GatewayAPI", {**API, "stripListenPath": "no"}, "spec.stripListenPath"),
    ("zero rate", "GatewayAPI", {**API, "rateLimit": {"rate": 0, "per": 60}}, "spec.rateLimit.rate"),
    ("negative rate", "GatewayAPI", {**API, "rateLimit": {"rate": -5, "per": 60}}, "spec.rateLimit.rate"),
    ("rate a string", "GatewayAPI", {**API, "rateLimit": {"rate": "ten", "per": 60}}, "spec.rateLimit.rate"),
    ("huge rate", "GatewayAPI", {**API, "rateLimit": {"rate": 10**30, "per": 60}}, "spec.rateLimit.rate"),
    ("rate without per", "GatewayAPI", {**API, "rateLimit": {"rate": 5}}, "spec.rateLimit.per"),
    ("tags a string", "GatewayAPI", {**API, "tags": "a,b"}, "spec.tags"),
    ("unknown field", "GatewayAPI", {**API, "listenpath": "/x/"}, "spec.listenpath"),
    ("unknown nested field", "GatewayAPI", {**API, "upstream": {"url": "http://a:1", "timeout": 5}},
     "spec.upstream.timeout"),
    ("tyk api_id", "GatewayAPI", {**API, "tyk": {"api_id": "mine"}}, "spec.tyk.api_id"),
    ("tyk org_id", "GatewayAPI", {**API, "tyk": {"org_id": "other"}}, "spec.tyk.org_id"),
    ("otoroshi id", "GatewayAPI", {**API, "gateway": "otoroshi", "otoroshi": {"id": "svc"}}, "spec.otoroshi.id"),
    ("both escape hatches", "GatewayAPI", {**API, "tyk": {}, "otoroshi": {}}, "spec.tyk and spec.otoroshi"),
    ("gateway name with slash", "GatewayAPI", {**API, "gateway": "../tyk"}, "spec.gateway"),
    ("gateway name injection", "GatewayAPI", {**API, "gateway": "tyk; rm -rf /"}, "spec.gateway"),
    ("deletionPolicy Keep", "GatewayAPI", {**API, "deletionPolicy": "Keep"}, "spec.deletionPolicy"),
    ("negative CORS maxAge", "GatewayAPI", {**API, "cors": {"maxAge": -1}}, "spec.cors.maxAge"),
    ("CORS origins a string", "GatewayAPI", {**API, "cors": {"allowedOrigins": "*"}}, "spec.cors.allowedOrigins"),
    ("1 MB listenPath", "GatewayAPI", {**API, "listenPath": f"/{MB}/"}, "spec.listenPath"),
    ("name with path traversal", "GatewayAPI", {**API, "_metadata": {"name": "../../etc"}}, "invalid resource name"),
    ("name with uppercase", "GatewayAPI", {**API, "_metadata": {"name": "Orders"}}, "metadata.name"),
    ("key: both apis and apiGroup", "GatewayKey", {**KEY, "apiGroup": "g"}, "spec.apis"),
    ("key: neither apis nor apiGroup", "GatewayKey", {"gateway": "tyk"}, "spec.apis"),
    ("key: empty apis", "GatewayKey", {**KEY, "apis": []}, "spec.apis"),
    ("key: api without name", "GatewayKey", {**KEY, "apis": [{}]}, "spec.apis[0].name"),
    ("key: quota period week", "GatewayKey", {**KEY, "quota": {"max": 5, "period": "week"}}, "spec.quota.period"),
    ("key: negative quota", "GatewayKey", {**KEY, "quota": {"max": -1, "period": "day"}}, "spec.quota.max"),
    ("key: rate a string", "GatewayKey", {**KEY, "rateLimit": {"rate": "lots", "per": 1}}, "spec.rateLimit.rate"),
    ("key: expires not a date", "GatewayKey", {**KEY, "expires": "next tuesday"}, "spec.expires"),
    ("key: negative grace", "GatewayKey", {**KEY, "rotation": {"generation": 1, "gracePeriodSeconds": -1}},
     "spec.rotation.gracePeriodSeconds"),
    ("key: secretName invalid", "GatewayKey", {**KEY, "secretName": "Bad_Name!"}, "spec.secretName"),
    ("key: enabled a string", "GatewayKey", {**KEY, "enabled": "no"}, "spec.enabled"),
    ("key: tyk access_rights", "GatewayKey", {**KEY, "tyk": {"access_rights": {"*": {}}}}, "spec.tyk.access_rights"),
    ("key: otoroshi clientSecret", "GatewayKey", {**KEY, "gateway": "otoroshi", "otoroshi": {"clientSecret": "x"}},
     "spec.otoroshi.clientSecret"),
    ("key: unknown field", "GatewayKey", {**KEY, "value": "my-own-key"}, "spec.value"),
    ("client: missing api", "OAuthClient", {k: v for k, v in CLIENT.items() if k != "api"}, "spec.api"),
    ("client: redirect not a URI", "OAuthClient", {**CLIENT, "redirectUri": "not a uri"}, "spec.redirectUri"),
    ("client: javascript redirect", "OAuthClient", {**CLIENT, "redirectUri": "javascript:alert(1)"},
     "spec.redirectUri"),
    ("client: missing redirect", "OAuthClient", {k: v for k, v in CLIENT.items() if k != "redirectUri"},
     "spec.redirectUri"),
    ("client: secretName invalid", "OAuthClient", {**CLIENT, "secretName": "UPPER"}, "spec.secretName"),
    ("client: unknown field", "OAuthClient", {**CLIENT, "clientSecret": "chosen"}, "spec.clientSecret"),
    ("adopt: id with a slash", "GatewayAPI", {**API, "adopt": {"id": "../etc"}}, "spec.adopt.id"),
    ("adopt: empty key id", "GatewayKey", {**KEY, "adopt": {"id": ""}}, "spec.adopt.id"),
    ("adopt: credential as the key id", "GatewayKey", {**KEY, "adopt": {"id": "x", "credential": "secret"}},
     "spec.adopt.credential"),
    ("adopt: client without clientId", "OAuthClient", {**CLIENT, "adopt": {}}, "spec.adopt.clientId"),
    # tenancy: Torii's bookkeeping and owner records are not a tenant's to write
    ("tenancy: torii.dev annotation in secretTemplate", "GatewayKey",
     {**KEY, "secretTemplate": {"annotations": {"torii.dev/previous-key-id": "../apis/x"}}},
     "spec.secretTemplate.annotations"),
    ("tenancy: owner record in key metadata", "GatewayKey", {**KEY, "metadata": {"torii-object": "other/key"}},
     "spec.metadata"),
    ("tenancy: owner record in client metadata", "OAuthClient", {**CLIENT, "metadata": {"torii-uid": "x"}},
     "spec.metadata"),
    ("tenancy: adopt id ..", "GatewayAPI", {**API, "adopt": {"id": ".."}}, "spec.adopt"),
]  # fmt: skip

# Accepted by the apiserver, refused by Torii: (case, kind, name, spec, reason, text in the message)
NOT_READY: list[tuple[str, str, str, dict[str, Any], str, str]] = [
    ("listen path collision", "GatewayAPI", "b-collide", {**API, "listenPath": "/{ns}/n-open/"},
     "ListenPathConflict", "spec.listenPath"),
    ("unknown gateway", "GatewayAPI", "b-nogw", {**API, "gateway": "nope", "listenPath": "/{ns}/b-nogw/"},
     "GatewayNotConfigured", "nope"),
    ("oauth2 on otoroshi", "GatewayAPI", "b-oto-oauth",
     {**API, "gateway": "otoroshi", "auth": "oauth2", "listenPath": "/{ns}/b-oto-oauth/"}, "Unsupported", "spec.auth"),
    ("tyk refuses spec.tyk", "GatewayAPI", "b-tyk-refused",
     {**API, "listenPath": "/{ns}/b-tyk-refused/", "tyk": {"version_data": "not an object"}},
     "GatewayRejected", "tyk"),
    ("key for an API of another gateway", "GatewayKey", "b-key-othergw",
     {"gateway": "tyk", "apis": [{"name": "n-oto"}]}, "", "n-oto"),
    ("key for an API in another namespace", "GatewayKey", "b-key-otherns",
     {**KEY, "apis": [{"name": "n-key", "namespace": "kube-system"}]}, "", "spec.apis[0].namespace"),
    ("key for a keyless API", "GatewayKey", "b-key-keyless", {"gateway": "tyk", "apis": [{"name": "n-open"}]},
     "", "n-open"),
    ("key for a missing API", "GatewayKey", "b-key-missing", {"gateway": "tyk", "apis": [{"name": "ghost"}]},
     "", "ghost"),
    ("client for a key API", "OAuthClient", "b-client-key", {**CLIENT, "api": "n-key"}, "", "n-key"),
    ("client on otoroshi", "OAuthClient", "b-client-oto", {**CLIENT, "gateway": "otoroshi", "api": "n-oto"},
     "Unsupported", "no OAuth clients"),
    ("1 MB spec.tyk (server-side apply)", "GatewayAPI", "b-huge",
     {**API, "listenPath": "/{ns}/b-huge/", "tyk": {"description": MB}}, "InvalidSpec", "spec.tyk"),
    ("1 MB spec.tyk of a key", "GatewayKey", "b-key-huge", {**KEY, "tyk": {"meta_data": {"x": MB}}}, "InvalidSpec",
     "spec.tyk"),
    ("key Secret owned by someone else", "GatewayKey", "b-key-secret", {**KEY, "secretName": "foreign-secret"},
     "SecretConflict", "foreign-secret"),
    ("adopting a key that does not exist", "GatewayKey", "b-key-ghost", {**KEY, "adopt": {"id": "0badc0de"}},
     "AdoptionFailed", "0badc0de"),
    ("adopting a client that does not exist", "OAuthClient", "b-client-ghost",
     {**CLIENT, "adopt": {"clientId": "ghost-client"}}, "AdoptionFailed", "ghost-client"),
    ("a handed-over credential Secret that does not exist", "GatewayKey", "b-key-handed",
     {**KEY, "adopt": {"id": "0badc0de", "credentialSecretRef": {"name": "nobody"}}}, "WaitingForSecret", "nobody"),
    # the tenancy policy's mistakes (the default, multi-tenant policy)
    ("upstream on a metadata address", "GatewayAPI", "b-pol-meta",
     {**API, "listenPath": "/{ns}/b-pol-meta/", "upstream": {"url": "http://169.254.169.254/latest/"}},
     "PolicyViolation", "spec.upstream"),
    ("upstream on the gateway's admin API", "GatewayAPI", "b-pol-admin",
     {**API, "listenPath": "/{ns}/b-pol-admin/", "upstream": {"url": "{tyk}/tyk/keys/"}},
     "PolicyViolation", "admin endpoint"),
    ("spec.tyk runs code", "GatewayAPI", "b-pol-code",
     {**API, "listenPath": "/{ns}/b-pol-code/", "tyk": {"custom_middleware": {"driver": "otto"}}},
     "PolicyViolation", "spec.tyk.custom_middleware.driver runs code"),
    ("spec.tyk reads a gateway secret", "GatewayAPI", "b-pol-env",
     {**API, "listenPath": "/{ns}/b-pol-env/", "tyk": {"cache_options": {"cache_key_prefix": "env://TYK_SECRET"}}},
     "PolicyViolation", "own secrets"),
    ("spec.tyk spells a field another way", "GatewayAPI", "b-pol-case",
     {**API, "listenPath": "/{ns}/b-pol-case/", "tyk": {"Proxy": {"Target_URL": "http://169.254.169.254/"}}},
     "PolicyViolation", "spec.tyk.Proxy.Target_URL"),
    ("spec.otoroshi takes a host", "GatewayAPI", "b-pol-host",
     {**API, "gateway": "otoroshi", "listenPath": "/{ns}/b-pol-host/", "otoroshi": {"hosts": ["x.oto.tools"]}},
     "PolicyViolation", "spec.otoroshi.hosts"),
    ("spec.otoroshi plugins", "GatewayAPI", "b-pol-plugins",
     {**API, "gateway": "otoroshi", "listenPath": "/{ns}/b-pol-plugins/", "otoroshi": {"plugins": {"enabled": True}}},
     "PolicyViolation", "spec.otoroshi.plugins"),
    ("OAuth client with a policy", "OAuthClient", "b-pol-oauth", {**CLIENT, "api": "n-oauth", "policy": "admin"},
     "PolicyViolation", "spec.policy"),
    ("spec.tyk owned key field spelt another way", "GatewayKey", "b-pol-rights",
     {**KEY, "tyk": {"Access_Rights": {"x": {}}}}, "PolicyViolation", "spec.tyk.Access_Rights"),
]  # fmt: skip


# Accepted and Ready, but what would widen access is ignored and named: (case, name, spec, text in the message,
# path that must still refuse a request without credentials)
NEUTRALISED: list[tuple[str, str, dict[str, Any], str]] = [
    ("spec.tyk opens a key API", "b-widen", {**API, "auth": "key", "listenPath": "/{ns}/b-widen/",
                                             "tyk": {"use_keyless": True}}, "spec.tyk.use_keyless is ignored"),
    ("spec.tyk takes a neighbour's path", "b-hijack",
     {**API, "auth": "key", "listenPath": "/{ns}/b-hijack/", "tyk": {"proxy": {"listen_path": "/{ns}/n-open/"}}},
     "spec.tyk.proxy.listen_path is ignored"),
]  # fmt: skip


def manifest(ns: str, kind: str, name: str, spec: dict[str, Any]) -> str:
    spec = dict(spec)
    metadata = {"name": name, "namespace": ns, **spec.pop("_metadata", {})}
    return yaml.safe_dump({"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": metadata, "spec": spec})


def test_bad_input_catalogue(stack: Stack, crds: Stack, admin: client.ApiClient, ns: str, tmp_path: Path) -> None:
    stack.require("tyk")
    stack.require("otoroshi")
    assert len(REFUSED) + len(NOT_READY) + len(NEUTRALISED) >= 60
    core = client.CoreV1Api(admin)
    core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="foreign-secret"),
                                                      string_data={"mine": "yes"}))  # fmt: skip
    with upstream("chaos-bad") as up:

        def api(name: str, gateway: str, auth: str) -> Obj:
            return Obj("GatewayAPI", ns, name, {"gateway": gateway, "listenPath": f"/{ns}/{name}/", "auth": auth,
                                                "upstream": {"url": up.url}})  # fmt: skip

        neighbours = [
            api("n-open", "tyk", "keyless"), api("n-key", "tyk", "key"), api("n-oauth", "tyk", "oauth2"),
            api("n-oto", "otoroshi", "key"),
            Obj("GatewayKey", ns, "n-k", {"gateway": "tyk", "apis": [{"name": "n-key"}]}),
        ]  # fmt: skip
        with Operators(crds, admin, tmp_path, [ns]).running(json_logs=True):
            apply(neighbours, crds.kubeconfig)
            converged(admin, [ns], len(neighbours), timeout=120)
            key = credentials(admin, neighbours)[f"{ns}/n-k"]["key"]

            def neighbours_serving() -> None:
                assert httpx.get(f"{stack.env['TYK_URL']}/{ns}/n-open/x").status_code == 200
                assert (
                    httpx.get(f"{stack.env['TYK_URL']}/{ns}/n-key/x", headers={"Authorization": key}).status_code == 200
                )

            custom = client.CustomObjectsApi(admin)
            clock = Clock()
            refused = 0
            for case, kind, spec, text in REFUSED:
                done = kubectl("apply", "-f", "-", stdin=manifest(ns, kind, "bad", spec), kubeconfig=crds.kubeconfig)
                assert done.returncode != 0, f"{case}: accepted but should be refused"
                assert text in done.stderr, f"{case}: {text!r} not in: {done.stderr[:600]}"
                refused += 1
            neighbours_serving()
            for case, kind, name, spec, _, _ in [*NOT_READY, *((c, "GatewayAPI", n, sp, "", "") for c, n, sp, _ in
                                                               NEUTRALISED)]:  # fmt: skip
                spec = yaml.safe_load(yaml.safe_dump(spec).replace("{ns}", ns).replace("{tyk}", stack.env["TYK_URL"]))
                # Server-side: a client-side apply would refuse a 1 MB spec for its last-applied annotation.
                done = kubectl("apply", "--server-side", "-f", "-", stdin=manifest(ns, kind, name, spec),
                               kubeconfig=crds.kubeconfig)  # fmt: skip
                assert done.returncode == 0, f"{case}: {done.stderr}"
            wrong = []
            for case, kind, name, _, reason, text in NOT_READY:
                obj = wait_until(lambda kind=kind, name=name: failed(admin, ns, kind, name), timeout=90,
                                 what=f"{case}: Ready=False")  # fmt: skip
                cond = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
                if (reason and cond["reason"] != reason) or text not in cond["message"]:
                    wrong.append(f"{case}: wanted {reason or 'any reason'} and {text!r}, got {cond}")
                neighbours_serving()
            for case, name, spec, text in NEUTRALISED:
                obj = wait_until(lambda name=name: ready_now(o := custom.get_namespaced_custom_object(
                    GROUP, VERSION, ns, "gatewayapis", name)) and o, timeout=90, what=f"{case}: Ready")  # fmt: skip
                cond = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
                if text not in cond["message"]:
                    wrong.append(f"{case}: {text!r} not in {cond['message']!r}")
                path = spec["listenPath"].replace("{ns}", ns)
                if httpx.get(f"{stack.env['TYK_URL']}{path}x").status_code not in (400, 401, 403):
                    wrong.append(f"{case}: {path} answers a request without credentials")
                neighbours_serving()
            assert not wrong, "\n".join(wrong)
            # The collision took nothing from the API that held the path; the neighbours are all still Ready.
            assert all(ready_now(o) for o in listed(admin, [ns]) if o["metadata"]["name"].startswith("n-"))
            found = audit(stack, admin, [ns])
            # Objects refused by Torii are not on the gateway (none missing): only their Ready=False is reported.
            assert not (found.duplicates or found.orphans or found.untrue), found.summary()
            record(credentials(admin, neighbours))
            seconds = clock.seconds()
            for _, kind, name, *_ in NOT_READY:
                custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURALS[kind], name)
            for _, name, *_ in NEUTRALISED:
                custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "gatewayapis", name)
            after, _ = finish(stack, admin, neighbours, [ns])
    assert_clean(after)
    report("bad input catalogue", objects=len(neighbours), faults=len(REFUSED) + len(NOT_READY) + len(NEUTRALISED),
           refused_at_apply=refused, not_ready=len(NOT_READY), neutralised=len(NEUTRALISED), converge_s=seconds,
           **tally(after))  # fmt: skip


def failed(admin: client.ApiClient, ns: str, kind: str, name: str) -> dict[str, Any] | None:
    obj: dict[str, Any] = client.CustomObjectsApi(admin).get_namespaced_custom_object(
        GROUP, VERSION, ns, PLURALS[kind], name
    )
    gen = obj["metadata"]["generation"]
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == "Ready" and c["status"] == "False" and c.get("observedGeneration") == gen:
            return obj
    return None
