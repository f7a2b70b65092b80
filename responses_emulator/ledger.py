"""The request ledger: what the emulator was asked to do, without what was said.

Tests assert on the ledger to prove properties of the calling code, for example "exactly one
generation per job", "every background create sent store=true" or "the sensitive job never went to
the background lane". It deliberately records shapes and routing facts only, never prompt,
instructions or output text, so it is safe to dump in CI logs.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LedgerEntry(BaseModel):
    """One request the emulator answered (including the faults it injected).

    Attributes:
        method: HTTP method.
        path: URL path without the query string.
        background: The ``background`` field of a create body, else ``None``.
        store: The ``store`` field of a create body (``None`` when omitted).
        stream: ``stream`` of a create body, or of a retrieve query.
        metadata: The ``metadata`` of a create body (user-chosen routing tags, never prompt text).
        idempotency_key: The ``Idempotency-Key`` header, if any.
        response_id: The response the request created or touched.
        status_code: HTTP status the emulator answered with.
        model: The ``model`` of a create body.
        generated: True only when this request started a new generation.
        starting_after: The ``starting_after`` cursor of a stream resume.
        fault: The fault injected into this request, if any (e.g. ``http:429``, ``drop_stream_after:5``).
        stateful: The create fields present that need stored provider state (``previous_response_id``,
            ``conversation``): names only, never values.
        zdr_project: The request carried a key of a Zero Data Retention project
            (``EmulatorConfig.zdr_api_keys``); never the key itself.
        at: Emulator clock time of the request.
    """

    model_config = ConfigDict(frozen=True)

    method: str
    path: str
    background: bool | None = None
    store: bool | None = None
    stream: bool | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str | None = None
    response_id: str | None = None
    status_code: int
    model: str | None = None
    generated: bool = False
    starting_after: int | None = None
    fault: str | None = None
    stateful: list[str] = Field(default_factory=list)
    zdr_project: bool = False
    at: float


class WebhookDelivery(BaseModel):
    """One webhook delivery attempt the emulator made (or, for a ``webhook_drop`` fault, skipped).

    Kept apart from the request entries: a delivery is the provider calling the receiver, not a request
    a client made, so "provider requests per job" never counts it.

    Attributes:
        webhook_id: The ``webhook-id`` header, the same on every attempt and duplicate of one event.
        event_id: The event's ``evt_…`` id.
        event_type: ``response.completed``, ``response.failed``, ``response.cancelled`` or
            ``response.incomplete``.
        response_id: The response the event is about.
        attempt: 1 for the first try, counting retries; 0 for a dropped delivery (nothing was sent).
        status_code: The receiver's HTTP status; ``None`` when nothing was sent or no answer came.
        fault: ``drop``, ``duplicate``, ``bad_signature`` or ``late`` (sent after a ``webhook_hold``).
        error: The transport error's class name when the receiver could not be reached.
        at: Emulator clock time of the attempt.
    """

    model_config = ConfigDict(frozen=True)

    webhook_id: str
    event_id: str
    event_type: str
    response_id: str
    attempt: int
    status_code: int | None = None
    fault: str | None = None
    error: str | None = None
    at: float


class Ledger:
    """Append-only, in-memory list of :class:`LedgerEntry`, with the queries tests keep writing."""

    def __init__(self) -> None:
        self._entries: list[LedgerEntry] = []
        self._deliveries: list[WebhookDelivery] = []

    def record(self, entry: LedgerEntry) -> None:
        """Append one entry; the emulator calls this once per answered request."""
        self._entries.append(entry)

    def entries(self) -> list[LedgerEntry]:
        """Return a copy of every entry, oldest first."""
        return list(self._entries)

    def clear(self) -> None:
        """Forget every entry and webhook delivery, e.g. between the phases of one test."""
        self._entries.clear()
        self._deliveries.clear()

    def record_delivery(self, delivery: WebhookDelivery) -> None:
        """Append one webhook delivery attempt; the webhook sender calls this once per attempt."""
        self._deliveries.append(delivery)

    def deliveries(self, response_id: str | None = None) -> list[WebhookDelivery]:
        """Return the webhook delivery attempts, oldest first (only those about ``response_id`` if given)."""
        return [d for d in self._deliveries if response_id is None or d.response_id == response_id]

    def creates(self) -> list[LedgerEntry]:
        """Return the ``POST /v1/responses`` entries, whatever their outcome."""
        return [e for e in self._entries if e.method == "POST" and e.path.rstrip("/") == "/v1/responses"]

    def generations(self) -> list[LedgerEntry]:
        """Return the entries that started a new generation (what a real account is billed for)."""
        return [e for e in self._entries if e.generated]

    def stored(self) -> list[LedgerEntry]:
        """Return creates that asked for storage: ``store`` true or omitted (the API default)."""
        return [e for e in self.creates() if e.store is not False]

    def for_response(self, response_id: str) -> list[LedgerEntry]:
        """Return every entry that created or touched ``response_id``."""
        return [e for e in self._entries if e.response_id == response_id]

    def with_metadata(self, key: str, value: str | None = None) -> list[LedgerEntry]:
        """Return creates whose metadata has ``key`` (and equals ``value`` when given)."""
        return [
            e for e in self.creates() if key in e.metadata and (value is None or e.metadata[key] == value)
        ]

    def tagged(self, key: str, value: str) -> list[LedgerEntry]:
        """Return the creates whose metadata has ``key == value`` and every request on their responses.

        A caller that names its jobs in metadata (lanes sends ``lanes_workflow_id``) gets everything one
        job sent, including the retrieves, streams and cancels, which carry no metadata.
        """
        ids = {e.response_id for e in self.with_metadata(key, value) if e.response_id}
        return [e for e in self._entries if e.metadata.get(key) == value or (e.response_id in ids)]

    def __len__(self) -> int:
        return len(self._entries)
