"""What happens to a GatewayKey's credential, decided from what Torii knows (the Secret as it recognises it, its
status record, the spec, the clock) and nothing else: pure functions, table-tested. `gatewaykey.py` applies
the decisions (Secret first, then the gateway)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Step(StrEnum):
    """The credential step of one reconcile."""

    ADOPT = "adopt"  # spec.adopt applies and Torii holds no credential yet: ask the gateway for the key's
    ISSUE = "issue"  # no credential Torii recognises (first one, Secret lost or edited, rotation half done)
    ROTATE = "rotate"  # spec.rotation.generation grew: a new credential, the current one in its grace period
    REWRITE = "rewrite"  # same credential, the Secret's labels or annotations drifted from the template
    KEEP = "keep"


@dataclass(frozen=True)
class Situation:
    has_current: bool  # the Secret holds a credential Torii recognises
    adopting: bool  # spec.adopt still applies (Torii has not taken the key's credential or rotated away)
    wanted_rotation: int
    applied_rotation: int
    metadata_drifted: bool


def decide(s: Situation) -> Step:
    if not s.has_current:
        return Step.ADOPT if s.adopting else Step.ISSUE
    if s.wanted_rotation > s.applied_rotation:
        return Step.ROTATE
    return Step.REWRITE if s.metadata_drifted else Step.KEEP


class AdoptStep(StrEnum):
    """What adopting does, once the gateway said whether the key's credential can be had."""

    STORE = "store"  # the credential (recovered, or handed over) goes into the Secret: managed like Torii's own
    BY_ID = "by-id"  # Tyk keeps only a hash: the key is managed by it, no Secret
    ROTATE_AWAY = "rotate-away"  # a rotation asked for: a new key, the adopted one expires after the grace period


def after_adoption(*, recovered: bool, wanted_rotation: int, recorded_rotation: int) -> AdoptStep:
    if recovered:
        return AdoptStep.STORE
    return AdoptStep.BY_ID if wanted_rotation <= recorded_rotation else AdoptStep.ROTATE_AWAY


class GraceAction(StrEnum):
    EXPIRE_PREVIOUS = "expire-previous"  # the gateway itself refuses the rotated-out credential after the grace
    EXPIRE_ADOPTED = "expire-adopted"  # ... and the adopted key rotated away from
    REVOKE_ADOPTED = "revoke-adopted"  # the adopted key's grace is over: revoked by its id
    REVOKE_PREVIOUS = "revoke-previous"  # the rotated-out credential's grace is over: revoked


@dataclass(frozen=True)
class GraceSituation:
    has_current: bool
    has_previous: bool  # a rotated-out credential Torii recognises, in the Secret
    grace_over: bool  # no revoke-at recorded, or it has passed
    rotated_away_now: bool  # this reconcile rotated away from an adopted key
    previous_key_id: bool  # status records an adopted key still to revoke
    by_id: bool  # the adopted key is managed by its id (nothing replaced it)


def grace_actions(g: GraceSituation) -> list[GraceAction]:
    """What a rotation's (or an adoption's) grace period asks for now, in order."""
    actions = []
    if g.has_previous and not g.grace_over:
        actions.append(GraceAction.EXPIRE_PREVIOUS)
    if g.rotated_away_now:
        actions.append(GraceAction.EXPIRE_ADOPTED)
    if g.previous_key_id and g.grace_over and not (g.has_previous or g.by_id or g.rotated_away_now):
        actions.append(GraceAction.REVOKE_ADOPTED)
    if g.has_previous and g.has_current and g.grace_over:
        actions.append(GraceAction.REVOKE_PREVIOUS)
    return actions
