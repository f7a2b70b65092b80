"""In-memory response records and the schedule that drives their lifecycle.

A record is created once per generation and never ticks: its status, its emitted tokens and its
expiry are pure functions of the clock's "now". That is what lets one process hold thousands of
background responses without a task per response, and lets a ``ManualClock`` fast-forward them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from responses_emulator.faults import Faults

Status = Literal["queued", "in_progress", "completed", "failed", "incomplete", "cancelled"]
Outcome = Literal["completed", "failed", "incomplete"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "incomplete", "cancelled"})
"""Statuses a response never leaves (except through the ``cancel_race`` fault)."""


@dataclass(slots=True, eq=False)
class ResponseRecord:
    """Everything needed to render one response at any time, minus anything time-dependent.

    Attributes:
        id: ``resp_…`` id.
        message_id: ``msg_…`` id of the single output message.
        created_at: Clock time of the create.
        model: Requested model.
        background: Created with ``background=true``.
        store: Stored (retrievable) response.
        streamed: Created with ``stream=true``.
        metadata: Metadata echoed in the object.
        echo: Request fields echoed verbatim in the object (instructions, temperature, tools, ...).
        tokens: The generated tokens, of which the first ``limit`` are emitted.
        limit: Number of tokens emitted before the terminal status.
        outcome: Terminal status reached unless cancelled.
        fail_code: ``error.code`` for a failed outcome.
        incomplete_reason: ``incomplete_details.reason`` for an incomplete outcome.
        input_tokens: ``usage.input_tokens``.
        start_at: Clock time of ``in_progress``; ``None`` for a response stuck in ``queued``.
        gen_s: Time from ``in_progress`` to the last of all ``tokens``.
        cancelled_at: Clock time of the first effective cancel.
        released_at: Clock time at which a ``hold`` fault was lifted (``None`` while still held).
        faults: Faults attached to the response at create time.
        drops_left: Streams still to be cut by ``drop_stream_after``.
        stream_errors_left: Streams still to end with a ``stream_error`` event.
        resets_left: Plain reads still to be cut by ``reset_mid_body``.
        http_left: Requests still to be answered ``faults.http_status``.
        idempotency_key: ``Idempotency-Key`` of the create.
        body_digest: Digest of the create body, to detect key reuse with another body.
        gone: Set when the response is deleted, so that its open streams end.
        webhook_released: Set by ``Emulator.release_webhooks`` to let a ``webhook_hold`` webhook go.
        version: Bumped on every change (cancel, delete) so streams know to rebuild their timeline.
    """

    id: str
    message_id: str
    created_at: float
    model: str
    background: bool
    store: bool
    streamed: bool
    metadata: dict[str, str]
    echo: dict[str, Any]
    tokens: list[str]
    limit: int
    outcome: Outcome
    fail_code: str | None
    incomplete_reason: str | None
    input_tokens: int
    start_at: float | None
    gen_s: float
    cancelled_at: float | None = None
    released_at: float | None = None
    faults: Faults = field(default_factory=Faults)
    drops_left: int = 0
    stream_errors_left: int = 0
    resets_left: int = 0
    http_left: int = 0
    idempotency_key: str | None = None
    body_digest: str | None = None
    gone: bool = False
    webhook_released: bool = False
    version: int = 0

    def token_time(self, index: int) -> float:
        """Return when token ``index`` (0-based) is generated; tokens are evenly spread.

        Raises:
            ValueError: For a response stuck in ``queued``, which generates nothing.
        """
        if self.start_at is None:
            raise ValueError("a stuck response generates no tokens")
        return self.start_at + self.gen_s * (index + 1) / len(self.tokens)

    @property
    def natural_end(self) -> float | None:
        """When the last emitted token is generated; ``None`` for a response stuck in ``queued``."""
        if self.start_at is None:
            return None
        return self.start_at + self.gen_s * self.limit / len(self.tokens)

    @property
    def held(self) -> bool:
        """Whether a ``hold`` fault still withholds the terminal status."""
        return self.faults.hold and self.released_at is None

    @property
    def terminal_at(self) -> float | None:
        """When the (uncancelled) outcome is reached; ``None`` if never, or not yet known.

        A held response has no terminal time until it is released; it then ends at its natural end,
        or at once if that has passed, so tokens keep their schedule and only the ending moves.
        """
        end = self.natural_end
        if end is None or not self.faults.hold:
            return end
        if self.released_at is None:
            return None
        return max(end, self.released_at)

    @property
    def cancelled(self) -> bool:
        """Whether an effective (non-racing) cancel stopped the response."""
        return self.cancelled_at is not None and not self.faults.cancel_race

    def status(self, now: float) -> Status:
        """Return the status a reader sees at ``now``."""
        terminal_at = self.terminal_at
        natural_done = terminal_at is not None and now >= terminal_at
        cancel_seen = self.cancelled_at is not None and now >= self.cancelled_at
        if cancel_seen and (not self.faults.cancel_race or not natural_done):
            return "cancelled"
        if natural_done:
            return self.outcome
        if self.start_at is None or now < self.start_at:
            return "queued"
        return "in_progress"

    def ended_at(self) -> float | None:
        """When the response became terminal for good (``None`` while it may still change)."""
        if self.cancelled:
            return self.cancelled_at
        return self.terminal_at

    def emitted(self, now: float) -> int:
        """Return how many tokens exist at ``now``."""
        if self.start_at is None:
            return 0
        if self.cancelled and self.cancelled_at is not None:
            now = min(now, self.cancelled_at)
        if now < self.start_at:
            return 0
        if self.gen_s <= 0:
            return self.limit
        count = int((now - self.start_at) / self.gen_s * len(self.tokens) + 1e-9)
        return max(0, min(self.limit, count))

    def text(self, count: int | None = None) -> str:
        """Return the concatenation of the first ``count`` (default all emitted-at-end) tokens."""
        return "".join(self.tokens[: self.limit if count is None else count])

    def expires_at(self, retention_s: float) -> float | None:
        """When a background response disappears; ``None`` for foreground or never-ending ones."""
        if not self.background:
            return None
        ended = self.ended_at()
        return None if ended is None else ended + retention_s


class Store:
    """Retrievable responses by id, plus the ``Idempotency-Key`` index.

    Only ``store=true`` responses and (when accepted) background ``store=false`` ones are kept;
    foreground ``store=false`` responses never enter the store, exactly like the real API.
    """

    def __init__(self, *, retention_s: float) -> None:
        self._retention_s = retention_s
        self._records: dict[str, ResponseRecord] = {}
        self._by_key: dict[str, str] = {}
        self._sweep_counter = 0

    def __len__(self) -> int:
        return len(self._records)

    def put(self, record: ResponseRecord) -> None:
        """Keep ``record`` retrievable (and findable by its idempotency key)."""
        self._records[record.id] = record
        if record.idempotency_key is not None:
            self._by_key[record.idempotency_key] = record.id

    def get(self, response_id: str, now: float) -> ResponseRecord | None:
        """Return the live record, or ``None`` if unknown, deleted or expired at ``now``."""
        record = self._records.get(response_id)
        if record is None:
            return None
        expires_at = record.expires_at(self._retention_s)
        if expires_at is not None and now >= expires_at:
            self._remove(record)
            return None
        return record

    def by_idempotency_key(self, key: str, now: float) -> ResponseRecord | None:
        """Return the live record created with ``key``, if any."""
        response_id = self._by_key.get(key)
        return None if response_id is None else self.get(response_id, now)

    def delete(self, response_id: str, now: float) -> bool:
        """Remove a live record; return whether there was one."""
        record = self.get(response_id, now)
        if record is None:
            return False
        self._remove(record)
        return True

    def sweep(self, now: float, *, every: int = 512) -> int:
        """Drop expired records, at most once per ``every`` calls, to bound memory.

        Returns:
            The number of records dropped.
        """
        self._sweep_counter += 1
        if self._sweep_counter % every:
            return 0
        expired = [
            r
            for r in self._records.values()
            if (e := r.expires_at(self._retention_s)) is not None and now >= e
        ]
        for record in expired:
            self._remove(record)
        return len(expired)

    def _remove(self, record: ResponseRecord) -> None:
        record.gone = True
        record.version += 1
        self._records.pop(record.id, None)
        if record.idempotency_key is not None and self._by_key.get(record.idempotency_key) == record.id:
            del self._by_key[record.idempotency_key]
