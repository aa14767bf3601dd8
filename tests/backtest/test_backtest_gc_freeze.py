"""The replay loop's garbage-collector freeze (`precog.backtest.runner._long_lived_frozen`) is undone after the
replay, also when it fails, and never undoes a freeze made by someone else."""

from __future__ import annotations

import gc

import pytest

from precog.backtest.runner import _long_lived_frozen


def test_objects_frozen_for_the_replay_are_handed_back() -> None:
    assert gc.get_freeze_count() == 0
    kept = [[] for _ in range(100)]  # long-lived objects the collector tracks
    with _long_lived_frozen():
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0


def test_a_failing_replay_hands_them_back_too() -> None:
    with pytest.raises(RuntimeError), _long_lived_frozen():
        assert gc.get_freeze_count() > 0
        raise RuntimeError("the replay failed")
    assert gc.get_freeze_count() == 0


def test_someone_elses_freeze_is_left_alone() -> None:
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with _long_lived_frozen():
            pass
        assert gc.get_freeze_count() == before  # not unfrozen by the replay
    finally:
        gc.unfreeze()
