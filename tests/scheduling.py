"""Where the suite's long tests go in the collection, so a parallel run does not end waiting on them.

A few tests wait tens of seconds by design: forty polls paced by the server's retry timer, a worker
process killed and restarted five times. pytest-xdist's ``worksteal`` scheduler first hands each worker
one contiguous chunk of the collection and then lets idle workers steal the back half of the longest
queue. A long test that sits at the end of a chunk starts last and ends the run alone; two in one chunk
run one after the other. So each long test goes to the head of a chunk, the longest first and each to
the chunk with the least long work so far (longest-processing-time first), and the rest of the
collection fills the chunks in its own order.

Tests mark themselves with ``@pytest.mark.long(seconds)``: the seconds are what the test took on a
2-core machine, used only to balance the chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def chunk_sizes(total: int, workers: int) -> list[int]:
    """The sizes of the chunks ``worksteal`` first sends, as its ``check_schedule`` computes them."""
    sizes = []
    remaining = total
    for index in range(workers):
        size = remaining // (workers - index)
        sizes.append(size)
        remaining -= size
    return sizes


def long_first(items: Sequence[T], seconds: dict[int, float], workers: int) -> list[T]:
    """``items`` reordered so each long one (index -> expected seconds) heads one worker's first chunk.

    With one worker (or none long) the order is unchanged: a serial run gains nothing from it.
    """
    if workers < 2 or not seconds:
        return list(items)
    heads: list[list[T]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for index in sorted(seconds, key=lambda i: (-seconds[i], i)):
        chunk = min(range(workers), key=lambda k: (loads[k], k))
        heads[chunk].append(items[index])
        loads[chunk] += seconds[index]
    rest = iter(item for index, item in enumerate(items) if index not in seconds)
    ordered: list[T] = []
    for chunk, size in enumerate(chunk_sizes(len(items), workers)):
        ordered += heads[chunk]
        ordered += [item for _, item in zip(range(size - len(heads[chunk])), rest, strict=False)]
    ordered += rest
    return ordered
