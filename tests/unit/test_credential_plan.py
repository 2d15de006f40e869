"""The credential decisions, table-driven: every combination of what Torii knows, and what it must do."""

from __future__ import annotations

import pytest

from torii.reconcile.credential_plan import (
    AdoptStep,
    GraceAction,
    GraceSituation,
    Situation,
    Step,
    after_adoption,
    decide,
    grace_actions,
)


@pytest.mark.parametrize(
    ("has_current", "adopting", "wanted", "applied", "drifted", "step"),
    [
        (False, False, 0, 0, False, Step.ISSUE),  # a new key
        (False, False, 3, 1, True, Step.ISSUE),  # the Secret lost (or was given) a credential: issue first
        (False, True, 0, 0, False, Step.ADOPT),  # adopting: ask the gateway, never invent one
        (False, True, 1, 0, False, Step.ADOPT),  # ... even when a rotation is asked (adopt decides)
        (True, True, 0, 0, False, Step.KEEP),  # adopted and stored: managed like Torii's own
        (True, False, 0, 0, False, Step.KEEP),
        (True, False, 2, 1, False, Step.ROTATE),
        (True, False, 2, 1, True, Step.ROTATE),  # the rotation rewrites the Secret anyway
        (True, False, 1, 2, False, Step.KEEP),  # a lower generation never rotates back
        (True, False, 1, 1, True, Step.REWRITE),  # labels/annotations drifted: the same credential rewritten
    ],
)
def test_decide(has_current: bool, adopting: bool, wanted: int, applied: int, drifted: bool, step: Step) -> None:
    assert decide(Situation(has_current, adopting, wanted, applied, drifted)) == step


@pytest.mark.parametrize(
    ("recovered", "wanted", "recorded", "step"),
    [
        (True, 0, 0, AdoptStep.STORE),  # Otoroshi returns secrets; a handed-over Tyk key was checked
        (True, 5, 0, AdoptStep.STORE),  # stored first; a rotation is a later reconcile's
        (False, 0, 0, AdoptStep.BY_ID),  # Tyk keeps only a hash: managed by it
        (False, 2, 2, AdoptStep.BY_ID),  # the rotation already happened
        (False, 1, 0, AdoptStep.ROTATE_AWAY),  # a rotation asked: a new key, the adopted one expires
    ],
)
def test_after_adoption(recovered: bool, wanted: int, recorded: int, step: AdoptStep) -> None:
    assert after_adoption(recovered=recovered, wanted_rotation=wanted, recorded_rotation=recorded) == step


E, X, RA, RP = (GraceAction.EXPIRE_PREVIOUS, GraceAction.EXPIRE_ADOPTED, GraceAction.REVOKE_ADOPTED,
                GraceAction.REVOKE_PREVIOUS)  # fmt: skip


@pytest.mark.parametrize(
    ("current", "previous", "over", "rotated_away", "previous_id", "by_id", "actions"),
    [
        (True, False, True, False, False, False, []),  # nothing in grace
        (True, True, False, False, False, False, [E]),  # in grace: the gateway expires it itself too
        (True, True, True, False, False, False, [RP]),  # grace over: revoked
        (True, False, False, True, True, False, [X]),  # rotated away from an adopted key just now
        (True, False, False, False, True, False, []),  # the adopted key still in its grace
        (True, False, True, False, True, False, [RA]),  # ... and then revoked by its id
        (False, False, True, False, True, True, []),  # managed by id: nothing replaced it, nothing revoked
        (True, True, True, False, True, False, [RP]),  # both recorded: the credential first, the id next pass
    ],
)
def test_grace_actions(current: bool, previous: bool, over: bool, rotated_away: bool, previous_id: bool,
                       by_id: bool, actions: list[GraceAction]) -> None:  # fmt: skip
    situation = GraceSituation(current, previous, over, rotated_away, previous_id, by_id)
    assert grace_actions(situation) == actions
