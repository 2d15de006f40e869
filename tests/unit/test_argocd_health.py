"""The Argo CD health script: the snippet embeds it verbatim, and it maps conditions as Argo CD users expect."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from support.argocd import ROOT, SCRIPT, health


def test_argocd_cm_snippet_embeds_the_script_for_each_kind() -> None:
    data = yaml.safe_load((ROOT / "argocd" / "argocd-cm-patch.yaml").read_text())["data"]
    for kind in ("GatewayAPI", "GatewayKey", "OAuthClient"):
        assert data[f"resource.customizations.health.torii.dev_{kind}"] == SCRIPT


def obj(generation: int, *conditions: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"generation": generation}}
    if conditions:
        body["status"] = {"conditions": list(conditions)}
    return body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (obj(1), "Progressing"),
        (obj(2, {"type": "Ready", "status": "True", "reason": "Serving", "observedGeneration": 2}), "Healthy"),
        (
            obj(2, {"type": "Ready", "status": "False", "reason": "GatewayRejected", "observedGeneration": 2}),
            "Degraded",
        ),
        (obj(3, {"type": "Ready", "status": "True", "reason": "Serving", "observedGeneration": 2}), "Progressing"),
        (obj(1, {"type": "Other", "status": "True", "reason": "X", "observedGeneration": 1}), "Progressing"),
        (obj(1, {"type": "Ready", "status": "Unknown", "reason": "X", "observedGeneration": 1}), "Progressing"),
    ],
)
def test_condition_mapping(body: dict[str, Any], expected: str) -> None:
    assert health(body)[0] == expected


def test_message_carries_reason_and_message() -> None:
    status, message = health(obj(1, {"type": "Ready", "status": "False", "reason": "SecretConflict",
                                      "message": "Secret x exists", "observedGeneration": 1}))  # fmt: skip
    assert status == "Degraded" and message == "SecretConflict: Secret x exists"
