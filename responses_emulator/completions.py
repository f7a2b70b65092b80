"""When each generated response reached its terminal status, on the emulator's clock.

The ledger records requests, which happen when a client chooses; the end of a response happens when the
provider chooses, and nothing in the ledger says when. A benchmark that measures how long a caller takes
to notice a finished response (its completion-detection lag) needs that time from the provider's side,
so the emulator keeps it for every response it generated, deleted or not.
"""

from __future__ import annotations

from collections import OrderedDict

from pydantic import BaseModel, ConfigDict, Field

from responses_emulator.store import ResponseRecord

MAX_TRACKED = 100_000
"""Generated responses whose end is remembered; the oldest are forgotten first, so a long-running
emulator's memory stays bounded."""


class Completion(BaseModel):
    """One generated response and, once it happened, the time it reached its terminal status.

    Like the ledger it holds routing facts only, never prompt or output text.

    Attributes:
        response_id: The ``resp_…`` id.
        metadata: The create's metadata (callers tag their jobs there).
        background: Created with ``background=true``.
        created_at: Clock time of the create that generated it.
        status: The status a reader sees now.
        ended_at: Clock time at which it became terminal (completed, failed, incomplete or cancelled);
            ``None`` while it is not, including a held response not yet released.
    """

    model_config = ConfigDict(frozen=True)

    response_id: str
    metadata: dict[str, str] = Field(default_factory=dict)
    background: bool
    created_at: float
    status: str
    ended_at: float | None = None


class Completions:
    """The generated responses, oldest first, at most :data:`MAX_TRACKED` of them."""

    def __init__(self, *, limit: int = MAX_TRACKED) -> None:
        self._limit = limit
        self._records: OrderedDict[str, ResponseRecord] = OrderedDict()

    def track(self, record: ResponseRecord) -> None:
        """Remember a newly generated response (forgetting the oldest beyond the limit)."""
        self._records[record.id] = record
        while len(self._records) > self._limit:
            self._records.popitem(last=False)

    def at(self, now: float) -> list[Completion]:
        """Every tracked response as a reader sees it at ``now``.

        The end time is computed from the record's schedule, release and cancel, which is exactly when
        its status turned terminal for every reader; it is reported only once ``now`` has reached it.
        """
        completions = []
        for record in self._records.values():
            ended = record.ended_at()
            completions.append(
                Completion(
                    response_id=record.id,
                    metadata=record.metadata,
                    background=record.background,
                    created_at=record.created_at,
                    status=record.status(now),
                    ended_at=ended if ended is not None and now >= ended else None,
                )
            )
        return completions

    def __len__(self) -> int:
        return len(self._records)
