"""Runs after the other chaos scenarios (file order): every credential they generated, and the admin secrets,
searched for in every operator log of the run (text and JSON), every Event and every status in the cluster."""

from __future__ import annotations

import json

from kubernetes import client

from chaos.conftest import RUN, report
from chaos.population import listed
from support.stack import Stack


def test_no_credential_in_logs_events_or_status(stack: Stack, admin: client.ApiClient) -> None:
    admin_secrets = {stack.env[k] for k in ("TYK_SECRET", "OTOROSHI_CLIENT_SECRET") if stack.env.get(k)}
    needles = {s for s in RUN.credentials | admin_secrets if len(s) >= 8}
    assert RUN.logs, "run with the other chaos scenarios: they collect what this scans"
    assert len(needles) > len(admin_secrets), "the scenarios handed out no credential to look for"
    leaks: list[str] = []
    haystacks = 0
    for path in RUN.logs:
        if path.exists():
            text = path.read_text(errors="replace")
            haystacks += 1
            leaks += [f"{path}: {n[:4]}…" for n in needles if n in text]
    events = client.CoreV1Api(admin).list_event_for_all_namespaces().items
    for event in events:
        text = f"{event.reason} {event.message}"
        leaks += [f"event {event.metadata.name}" for n in needles if n in text]
    live = [ns for ns in RUN.namespaces if namespace_exists(admin, ns)]
    for obj in listed(admin, live):
        text = json.dumps(obj.get("status", {})) + json.dumps(obj.get("spec", {}))
        leaks += [f"{obj['kind']} {obj['metadata']['name']}" for n in needles if n in text]
    report("secrets never leak", objects=len(needles), faults=0, logs=haystacks, events=len(events),
           leaked=len(leaks))  # fmt: skip
    assert not leaks, leaks[:10]


def namespace_exists(admin: client.ApiClient, name: str) -> bool:
    try:
        client.CoreV1Api(admin).read_namespace(name)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True
