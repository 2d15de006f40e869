"""How many objects of a kind kopf processes at once (`maxObjectWorkers`): wired to kopf's worker limit, above the
held changes (else a held change waiting for its API would leave no worker for that API)."""

from __future__ import annotations

import kopf
import pytest
from pydantic import ValidationError

from torii.operator import EVENT_BACKOFFS, EVENT_POSTERS, configure_kopf
from torii.settings import OperatorSettings


def test_the_limit_reaches_kopf_and_null_lifts_it() -> None:
    settings = OperatorSettings.model_validate({"maxObjectWorkers": 768})
    kopf_settings = kopf.OperatorSettings()
    configure_kopf(kopf_settings, settings.max_object_workers)
    assert kopf_settings.queueing.worker_limit == 768
    assert OperatorSettings.model_validate({}).max_object_workers == 1024  # twice maxHeldChanges (512)
    configure_kopf(kopf_settings, OperatorSettings.model_validate({"maxObjectWorkers": None}).max_object_workers)
    assert kopf_settings.queueing.worker_limit is None  # null: no limit


def test_kopf_posts_events_from_a_few_workers_retrying_a_refused_one_once() -> None:
    kopf_settings = kopf.OperatorSettings()
    assert kopf_settings.posting.worker_limit is None  # kopf's default: one poster per object, no limit
    configure_kopf(kopf_settings)
    assert kopf_settings.posting.worker_limit == EVENT_POSTERS
    assert list(kopf_settings.posting.default_backoffs) == list(EVENT_BACKOFFS) == [1.0]  # not 54 s of retries


@pytest.mark.parametrize("workers, held", [(512, 512), (8, 512), (1, 1)])
def test_no_more_workers_than_held_changes_is_refused_naming_both(workers: int, held: int) -> None:
    with pytest.raises(ValidationError, match=rf"maxObjectWorkers \({workers}\) must be greater than maxHeldChanges"):
        OperatorSettings.model_validate({"maxObjectWorkers": workers, "maxHeldChanges": held})
    assert OperatorSettings.model_validate({"maxObjectWorkers": workers, "maxHeldChanges": workers - 1})
