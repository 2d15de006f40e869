"""The operator's garbage-collector settings (torii.heap)."""

from __future__ import annotations

import gc

from torii import heap


def test_settle_freezes_what_start_up_made_and_spaces_out_young_collections() -> None:
    threshold = gc.get_threshold()
    try:
        heap.settle()
        assert gc.get_freeze_count() > 1000  # the imported code, out of the collector's sight
        assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *threshold[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
