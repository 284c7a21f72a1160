"""`dpa.heap.settled`: what exists at the start is frozen for the collector until the
outermost block ends, then handed back (a long-running process still collects it)."""

from __future__ import annotations

import gc

import pytest

from dpa import heap


def test_the_objects_present_are_frozen_inside_and_handed_back_after() -> None:
    assert gc.get_freeze_count() == 0
    with heap.settled():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_a_nested_block_does_not_unfreeze_the_outer_ones_objects() -> None:
    with heap.settled():
        frozen = gc.get_freeze_count()
        with heap.settled():
            pass
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0


def test_an_error_in_the_block_still_hands_the_objects_back() -> None:
    with pytest.raises(RuntimeError), heap.settled():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_cyclic_garbage_made_inside_is_collected_inside() -> None:
    class Node:
        other: object

    with heap.settled():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2


def test_spare_shutdown_freezes_everything_for_a_process_that_ends_next() -> None:
    try:
        heap.spare_shutdown()
        assert gc.get_freeze_count() > 0
        assert gc.collect() == 0  # nothing left to walk: what existed is frozen
    finally:
        gc.unfreeze()


def test_the_dpa_command_spares_its_shutdown_whatever_its_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dpa import cli

    frozen: list[int] = []
    monkeypatch.setattr(heap, "spare_shutdown", lambda: frozen.append(1))
    for argv in (["dpa", "--version"], ["dpa", "no-such-command"]):
        monkeypatch.setattr("sys.argv", argv)
        with pytest.raises(SystemExit):
            cli.main()
    assert frozen == [1, 1]
