"""The order that lets a parallel run start its long tests first (:mod:`tests.scheduling`)."""

from __future__ import annotations

from tests.scheduling import chunk_sizes, long_first


def test_chunk_sizes_add_up_as_worksteal_splits_them() -> None:
    assert chunk_sizes(10, 4) == [2, 2, 3, 3]
    assert chunk_sizes(829, 4) == [207, 207, 207, 208]
    assert sum(chunk_sizes(3, 4)) == 3


def test_each_long_test_heads_a_chunk_and_the_longest_are_apart() -> None:
    items = [f"t{i}" for i in range(20)]
    # Two long tests late in the collection and next to each other, one short-ish one earlier.
    ordered = long_first(items, {17: 50.0, 18: 42.0, 3: 10.0}, workers=4)
    assert sorted(ordered) == sorted(items)  # nothing lost, nothing repeated
    starts = [0, 5, 10, 15]  # chunk_sizes(20, 4) == [5, 5, 5, 5]
    assert [ordered[s] for s in starts[:3]] == ["t17", "t18", "t3"]
    # The rest keeps its collection order.
    rest = [item for item in ordered if item not in {"t17", "t18", "t3"}]
    assert rest == [item for item in items if item not in {"t17", "t18", "t3"}]


def test_more_long_tests_than_workers_balance_by_expected_seconds() -> None:
    items = [f"t{i}" for i in range(12)]
    ordered = long_first(items, {0: 40.0, 1: 30.0, 2: 20.0, 3: 15.0}, workers=2)
    # chunk 0: 40, then 15 (least loaded after 30 + 20 went to chunk 1); chunk 1: 30, 20.
    assert ordered[:2] == ["t0", "t3"]
    assert ordered[6:8] == ["t1", "t2"]


def test_a_serial_run_keeps_the_collection_order() -> None:
    items = ["a", "b", "c"]
    assert long_first(items, {2: 30.0}, workers=1) == items
    assert long_first(items, {}, workers=4) == items
