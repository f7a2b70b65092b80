"""The fault grammar: one string that makes the emulator misbehave in a chosen way.

A fault travels either in the ``emulator_fault`` metadata key of a create (it then belongs to that
response and to every later request that touches it) or in an ``X-Emulator-Fault`` header (it then
applies to that one request only). Several faults are joined with commas::

    stuck_queued                      never leaves queued
    hold                              generates on schedule but withholds the terminal status (stays
                                      in_progress, streams stay open) until Emulator.release()
    fail:<code>                       fails half-way with error.code <code> (e.g. server_error,
                                      rate_limit_exceeded; any ResponseError code)
    incomplete:<reason>               stops half-way as incomplete (max_output_tokens, content_filter,
                                      max_messages)
    drop_stream_after:<n>[:<times>]   the next <times> (default 1) streams of the response are cut
                                      abruptly after <n> events; the SDK raises APIConnectionError
    stream_error:<code>:<n>[:<times>] the next <times> (default 1) streams of the response that reach
                                      <n> events then send an SSE ``error`` event with error.code
                                      <code> ([a-z_]+, e.g. rate_limit_exceeded, server_error,
                                      overloaded) and end cleanly; the response goes on generating, so
                                      a resume gets the rest. The SDK raises a bare APIError
    reset_mid_body[:<times>]          the next <times> (default 1) plain reads (GET, cancel, a
                                      non-streamed create) send half of the JSON body, then reset
    cancel_race                       cancel answers "cancelled", but the response goes on and later
                                      reads "completed" (the race reported on Azure OpenAI)
    http:<status>[:<count>]           the next <count> (default 1) requests touching the response
                                      are answered <status> (429/503 carry Retry-After) before any
                                      processing; in a header, the request carrying it is answered so
    delay_ms:<ms>                     adds real latency before answering (header) or before every
                                      answer about the response (metadata)
    webhook_drop                      no webhook is sent when the response ends (the ledger records
                                      the drop), as if the delivery were lost for good
    webhook_duplicate[:<n>]           the webhook is delivered <n> (default 1) more times, with the
                                      same webhook-id, after the first successful delivery
    webhook_delay_ms:<ms>             the webhook is sent <ms> real milliseconds after the response ends
    webhook_hold                      the webhook waits until Emulator.release_webhooks(), so a test
                                      decides when it arrives (late, or before the create's reply)
    webhook_bad_signature             the webhook is signed with a key that is not the secret (a
                                      forgery, as the receiver sees it); every retry too

Response-level faults (``stuck_queued``, ``hold``, ``fail``, ``incomplete``, ``cancel_race`` and the
``webhook_*`` faults) in a header of a create apply to the response it creates, exactly as in metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import get_args

import httpx2
from openai.types.responses.response import IncompleteDetails
from openai.types.responses.response_error import ResponseError

from responses_emulator.errors import EmulatorError

FAIL_CODES: frozenset[str] = frozenset(get_args(ResponseError.model_fields["code"].annotation))
"""Every ``error.code`` the SDK's ``ResponseError`` accepts."""

STREAM_ERROR_CODE = re.compile(r"[a-z_]+")
"""What ``stream_error:<code>`` accepts: the live API sends codes beyond any enum the SDK declares."""

INCOMPLETE_REASONS: frozenset[str] = frozenset(
    r for r in get_args(get_args(IncompleteDetails.model_fields["reason"].annotation)[0]) if r != "steered"
)
"""The ``incomplete_details.reason`` values that make sense without WebSocket steering."""


@dataclass(frozen=True, slots=True)
class Faults:
    """The parsed form of a fault string; the empty instance means "behave".

    Attributes:
        stuck_queued: The response never leaves ``queued``.
        hold: The response reaches its terminal status only once released (``Emulator.release``), so a
            test, not a wall-clock duration, decides when it completes.
        fail_code: The response fails with this ``error.code``.
        incomplete_reason: The response ends ``incomplete`` with this reason.
        drop_stream_after: Number of events after which a stream is cut.
        drop_stream_times: How many streams are cut.
        stream_error_code: ``error.code`` of the SSE ``error`` event sent mid-stream.
        stream_error_after: Number of events a stream sends before that ``error`` event.
        stream_error_times: How many streams end with it.
        reset_mid_body: How many plain reads are cut half-way through the body.
        cancel_race: Cancel reports ``cancelled`` but generation continues to ``completed``.
        http_status: Status answered instead of processing the request.
        http_count: How many requests get ``http_status``.
        delay_ms: Real latency added to each answer.
        webhook_drop: No webhook is sent for the response.
        webhook_duplicates: Extra deliveries of the webhook, with the same ``webhook-id``.
        webhook_delay_ms: Real delay before the webhook is sent.
        webhook_hold: The webhook waits for ``Emulator.release_webhooks``.
        webhook_bad_signature: The webhook is signed with a wrong key.
        source: The original text, for the ledger.
    """

    stuck_queued: bool = False
    hold: bool = False
    fail_code: str | None = None
    incomplete_reason: str | None = None
    drop_stream_after: int | None = None
    drop_stream_times: int = 0
    stream_error_code: str | None = None
    stream_error_after: int | None = None
    stream_error_times: int = 0
    reset_mid_body: int = 0
    cancel_race: bool = False
    http_status: int | None = None
    http_count: int = 0
    delay_ms: float = 0.0
    webhook_drop: bool = False
    webhook_duplicates: int = 0
    webhook_delay_ms: float = 0.0
    webhook_hold: bool = False
    webhook_bad_signature: bool = False
    source: str | None = field(default=None, compare=False)

    @property
    def empty(self) -> bool:
        """Whether no fault is requested."""
        return self == Faults()

    def merged(self, other: Faults) -> Faults:
        """Return these faults with every fault set in ``other`` added (``other`` wins on conflict)."""
        if other.empty:
            return self
        sources = ",".join(s for s in (self.source, other.source) if s)
        return replace(
            self,
            stuck_queued=self.stuck_queued or other.stuck_queued,
            hold=self.hold or other.hold,
            fail_code=other.fail_code or self.fail_code,
            incomplete_reason=other.incomplete_reason or self.incomplete_reason,
            drop_stream_after=(
                other.drop_stream_after if other.drop_stream_after is not None else self.drop_stream_after
            ),
            drop_stream_times=other.drop_stream_times or self.drop_stream_times,
            stream_error_code=other.stream_error_code or self.stream_error_code,
            stream_error_after=(
                other.stream_error_after if other.stream_error_after is not None else self.stream_error_after
            ),
            stream_error_times=other.stream_error_times or self.stream_error_times,
            reset_mid_body=other.reset_mid_body or self.reset_mid_body,
            cancel_race=self.cancel_race or other.cancel_race,
            http_status=other.http_status or self.http_status,
            http_count=other.http_count or self.http_count,
            delay_ms=other.delay_ms or self.delay_ms,
            webhook_drop=self.webhook_drop or other.webhook_drop,
            webhook_duplicates=other.webhook_duplicates or self.webhook_duplicates,
            webhook_delay_ms=other.webhook_delay_ms or self.webhook_delay_ms,
            webhook_hold=self.webhook_hold or other.webhook_hold,
            webhook_bad_signature=self.webhook_bad_signature or other.webhook_bad_signature,
            source=sources or None,
        )


def _int(value: str, *, what: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise _syntax(f"{what} must be an integer, got {value!r}") from None
    if number < minimum:
        raise _syntax(f"{what} must be >= {minimum}, got {number}")
    return number


def _syntax(detail: str) -> EmulatorError:
    return EmulatorError(400, f"Invalid emulator fault: {detail}.", param="metadata.emulator_fault")


def parse_faults(text: str | None) -> Faults:
    """Parse the fault grammar documented in this module.

    Returns:
        The parsed faults; :class:`Faults` with no fault for ``None`` or an empty string.

    Raises:
        EmulatorError: A 400 naming the bad clause, so a typo in a test fails loudly.
    """
    if not text or not text.strip():
        return Faults()
    faults = Faults(source=text.strip())
    for clause in (c.strip() for c in text.split(",")):
        if not clause:
            continue
        name, _, rest = clause.partition(":")
        args = rest.split(":") if rest else []
        if name == "stuck_queued" and not args:
            faults = replace(faults, stuck_queued=True)
        elif name == "hold" and not args:
            faults = replace(faults, hold=True)
        elif name == "cancel_race" and not args:
            faults = replace(faults, cancel_race=True)
        elif name == "fail" and len(args) == 1:
            if args[0] not in FAIL_CODES:
                raise _syntax(f"unknown fail code {args[0]!r}")
            faults = replace(faults, fail_code=args[0])
        elif name == "incomplete" and len(args) == 1:
            if args[0] not in INCOMPLETE_REASONS:
                raise _syntax(f"unknown incomplete reason {args[0]!r}")
            faults = replace(faults, incomplete_reason=args[0])
        elif name == "drop_stream_after" and len(args) in (1, 2):
            times = _int(args[1], what="times", minimum=1) if len(args) == 2 else 1
            after = _int(args[0], what="drop_stream_after", minimum=0)
            faults = replace(faults, drop_stream_after=after, drop_stream_times=times)
        elif name == "stream_error" and len(args) in (2, 3):
            if not STREAM_ERROR_CODE.fullmatch(args[0]):
                raise _syntax(f"stream_error code must match [a-z_]+, got {args[0]!r}")
            after = _int(args[1], what="stream_error events", minimum=0)
            times = _int(args[2], what="times", minimum=1) if len(args) == 3 else 1
            faults = replace(
                faults, stream_error_code=args[0], stream_error_after=after, stream_error_times=times
            )
        elif name == "reset_mid_body" and len(args) <= 1:
            times = _int(args[0], what="times", minimum=1) if args else 1
            faults = replace(faults, reset_mid_body=times)
        elif name == "http" and len(args) in (1, 2):
            status = _int(args[0], what="status", minimum=400)
            if status > 599:
                raise _syntax(f"status must be 4xx or 5xx, got {status}")
            count = _int(args[1], what="count", minimum=1) if len(args) == 2 else 1
            faults = replace(faults, http_status=status, http_count=count)
        elif name in ("delay_ms", "webhook_delay_ms") and len(args) == 1:
            try:
                delay = float(args[0])
            except ValueError:
                raise _syntax(f"{name} must be a number, got {args[0]!r}") from None
            if name == "delay_ms":
                faults = replace(faults, delay_ms=max(0.0, delay))
            else:
                faults = replace(faults, webhook_delay_ms=max(0.0, delay))
        elif name == "webhook_drop" and not args:
            faults = replace(faults, webhook_drop=True)
        elif name == "webhook_hold" and not args:
            faults = replace(faults, webhook_hold=True)
        elif name == "webhook_bad_signature" and not args:
            faults = replace(faults, webhook_bad_signature=True)
        elif name == "webhook_duplicate" and len(args) <= 1:
            times = _int(args[0], what="webhook_duplicate", minimum=1) if args else 1
            faults = replace(faults, webhook_duplicates=times)
        else:
            raise _syntax(f"unknown clause {clause!r}")
    if faults.fail_code and faults.incomplete_reason:
        raise _syntax("fail and incomplete exclude each other")
    if faults.webhook_drop and (faults.webhook_duplicates or faults.webhook_hold):
        raise _syntax("webhook_drop excludes webhook_duplicate and webhook_hold")
    return faults


class EmulatedDisconnect(httpx2.RemoteProtocolError):
    """Raised inside a response body to cut it abruptly (``drop_stream_after``, ``reset_mid_body``).

    In-process (``httpx2.MockTransport``) it reaches the SDK as the transport error a real peer reset
    gives; the ASGI adapter turns it into a closed TCP connection without completing the body.
    """
