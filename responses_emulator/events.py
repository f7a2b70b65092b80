"""Response objects and stream events, built from the ``openai`` package's own types.

Rendering through the SDK's pydantic models (and dumping them with ``mode="json"``) means that the
objects the emulator sends are, by construction, objects the SDK can parse; the fields set are those
the real API sends, with its explicit ``null`` values, so ``exclude_unset`` rather than
``exclude_none`` is used when dumping.

The stream of a response is a fixed *timeline*: a list of steps, each with the clock time at which it
happens. The step's index is its ``sequence_number``, which is why any stream (first or resumed from
``starting_after``) of the same response carries the same events with the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseQueuedEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from pydantic import BaseModel

from responses_emulator.store import TERMINAL, ResponseRecord, Status

StepKind = Literal[
    "created",
    "queued",
    "in_progress",
    "item_added",
    "part_added",
    "delta",
    "text_done",
    "part_done",
    "item_done",
    "terminal",
]

ECHO_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "service_tier": "default",
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}
"""Fields the real API always echoes, with the value it reports when the request omitted them."""

ECHO_OPTIONAL = ("prompt_cache_key", "safety_identifier", "max_tool_calls", "top_logprobs")
"""Fields echoed only when the request set them."""


@dataclass(frozen=True, slots=True)
class Step:
    """One event of a response's timeline.

    Attributes:
        at: Clock time at which the event exists.
        kind: What the event is.
        index: Token index for ``delta`` steps.
    """

    at: float
    kind: StepKind
    index: int = 0


def build_response(record: ResponseRecord, *, status: Status, emitted: int, output: bool) -> Response:
    """Build the ``Response`` object of ``record`` in a given state.

    Args:
        record: The response.
        status: Status to report.
        emitted: Number of tokens generated so far (drives ``output`` and ``usage``).
        output: Whether to include the output message (lifecycle events and polls of unfinished
            responses carry ``output: []``).

    Returns:
        The validated SDK object.
    """
    items: list[dict[str, Any]] = []
    if output and status != "failed" and (emitted > 0 or status in ("completed", "incomplete")):
        items.append(_message(record, emitted, "completed" if status == "completed" else "incomplete"))
    data: dict[str, Any] = {
        "id": record.id,
        "object": "response",
        "created_at": int(record.created_at),
        "status": status,
        "background": record.background,
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "metadata": dict(record.metadata),
        "model": record.model,
        "output": items,
        "store": record.store,
        "usage": None,
    }
    for key, default in ECHO_DEFAULTS.items():
        value = record.echo.get(key)
        data[key] = default if value is None else value
    for key in ECHO_OPTIONAL:
        if record.echo.get(key) is not None:
            data[key] = record.echo[key]
    if status == "completed" and record.terminal_at is not None:
        data["completed_at"] = int(record.terminal_at)
    if status == "failed":
        data["error"] = {"code": record.fail_code, "message": _fail_message(record.fail_code)}
    if status == "incomplete":
        data["incomplete_details"] = {"reason": record.incomplete_reason}
    if status in TERMINAL:
        data["usage"] = {
            "input_tokens": record.input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": emitted,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": record.input_tokens + emitted,
        }
    return Response.model_validate(data)


def _fail_message(code: str | None) -> str:
    if code == "rate_limit_exceeded":
        return "Rate limit reached while processing the response. Please try again."
    return "The model failed to generate a response (emulated fault)."


def _message(record: ResponseRecord, emitted: int, status: str) -> dict[str, Any]:
    return ResponseOutputMessage.model_validate(
        {
            "id": record.message_id,
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": [_part(record.text(emitted))],
        }
    ).model_dump(mode="json", exclude_unset=True)


def _part(text: str) -> dict[str, Any]:
    return ResponseOutputText.model_validate(
        {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    ).model_dump(mode="json", exclude_unset=True)


def dump(model: BaseModel) -> dict[str, Any]:
    """Serialise an SDK object the way the API sends it (explicit nulls kept, unset fields left out).

    Returns:
        A JSON-ready dict.
    """
    return model.model_dump(mode="json", exclude_unset=True)


def snapshot(record: ResponseRecord, now: float) -> dict[str, Any]:
    """Render what ``GET /v1/responses/{id}`` returns at ``now``.

    An unfinished response reports ``output: []`` (the stricter reading: the real API is not
    documented to expose partial output to pollers); a cancelled one reports what was generated.

    Returns:
        The JSON body.
    """
    status = record.status(now)
    emitted = record.emitted(now)
    return dump(build_response(record, status=status, emitted=emitted, output=status in TERMINAL))


def final_snapshot(record: ResponseRecord) -> dict[str, Any]:
    """Render the object at its natural end, for synchronous (foreground) answers.

    Returns:
        The JSON body.
    """
    status: Status = record.outcome
    return dump(build_response(record, status=status, emitted=record.limit, output=True))


def timeline(record: ResponseRecord) -> list[Step]:
    """Return every event the response's stream will ever carry, in ``sequence_number`` order.

    A cancelled response's timeline stops after the last delta generated before the cancel: the SDK
    has no ``response.cancelled`` stream event, so the stream simply ends (unconfirmed in the real API).
    A held response's timeline stops after its last delta until it is released; releasing it appends
    the closing events without renumbering anything, so a resume cursor stays valid.

    Returns:
        The steps; index ``i`` has ``sequence_number`` ``i``.
    """
    created = record.created_at
    steps = [Step(created, "created")]
    if record.background:
        steps.append(Step(created, "queued"))
    start = record.start_at
    if start is None:
        return steps
    steps.append(Step(start, "in_progress"))
    steps.append(Step(start, "item_added"))
    steps.append(Step(start, "part_added"))
    steps.extend(Step(record.token_time(i), "delta", i) for i in range(record.limit))
    end = record.terminal_at
    if end is not None:
        if record.outcome != "failed":
            steps.extend(Step(end, kind) for kind in ("text_done", "part_done", "item_done"))
        steps.append(Step(end, "terminal"))
    if record.cancelled and record.cancelled_at is not None:
        cut = record.cancelled_at
        steps = [s for s in steps if s.at <= cut and s.kind not in ("text_done", "part_done", "item_done")]
        steps = [s for s in steps if s.kind != "terminal"]
    return steps


def render_step(record: ResponseRecord, step: Step, sequence_number: int) -> tuple[str, dict[str, Any]]:
    """Build the SDK event for one step of the timeline.

    Returns:
        The event type and its JSON body.
    """
    event: BaseModel
    seq = sequence_number
    item_id = record.message_id
    if step.kind in ("created", "queued", "in_progress"):
        status: Status = "queued" if record.background and step.kind != "in_progress" else "in_progress"
        response = build_response(record, status=status, emitted=0, output=False)
        if step.kind == "created":
            event = ResponseCreatedEvent(type="response.created", sequence_number=seq, response=response)
        elif step.kind == "queued":
            event = ResponseQueuedEvent(type="response.queued", sequence_number=seq, response=response)
        else:
            event = ResponseInProgressEvent(
                type="response.in_progress", sequence_number=seq, response=response
            )
    elif step.kind == "item_added":
        msg = {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        event = ResponseOutputItemAddedEvent.model_validate(
            {"type": "response.output_item.added", "sequence_number": seq, "output_index": 0, "item": msg}
        )
    elif step.kind == "part_added":
        event = ResponseContentPartAddedEvent.model_validate(
            {
                "type": "response.content_part.added",
                "sequence_number": seq,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "part": _part(""),
            }
        )
    elif step.kind == "delta":
        event = ResponseTextDeltaEvent(
            type="response.output_text.delta",
            sequence_number=seq,
            item_id=item_id,
            output_index=0,
            content_index=0,
            delta=record.tokens[step.index],
            logprobs=[],
        )
    elif step.kind == "text_done":
        event = ResponseTextDoneEvent(
            type="response.output_text.done",
            sequence_number=seq,
            item_id=item_id,
            output_index=0,
            content_index=0,
            text=record.text(),
            logprobs=[],
        )
    elif step.kind == "part_done":
        event = ResponseContentPartDoneEvent.model_validate(
            {
                "type": "response.content_part.done",
                "sequence_number": seq,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "part": _part(record.text()),
            }
        )
    elif step.kind == "item_done":
        item_status = "completed" if record.outcome == "completed" else "incomplete"
        event = ResponseOutputItemDoneEvent.model_validate(
            {
                "type": "response.output_item.done",
                "sequence_number": seq,
                "output_index": 0,
                "item": _message(record, record.limit, item_status),
            }
        )
    else:
        final = build_response(record, status=record.outcome, emitted=record.limit, output=True)
        if record.outcome == "completed":
            event = ResponseCompletedEvent(type="response.completed", sequence_number=seq, response=final)
        elif record.outcome == "failed":
            event = ResponseFailedEvent(type="response.failed", sequence_number=seq, response=final)
        else:
            event = ResponseIncompleteEvent(type="response.incomplete", sequence_number=seq, response=final)
    body = dump(event)
    return str(body["type"]), body


_STREAM_ERRORS: dict[str, tuple[str, str]] = {
    "rate_limit_exceeded": (
        "tokens",
        "Rate limit reached for {model} in organization org-emulator on tokens per min (TPM): "
        "Limit 30000, Used 30000, Requested 1. Please try again in 1s.",
    ),
    "insufficient_quota": (
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "server_error": (
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
    ),
    "overloaded": (
        "service_unavailable_error",
        "Our servers are currently overloaded. Please try again later.",
    ),
    "server_is_overloaded": (
        "service_unavailable_error",
        "Our servers are currently overloaded. Please try again later.",
    ),
}
"""``error.type`` and message of the mid-stream errors the live API is known to send; other codes get
``server_error`` and a generic message."""


def stream_error_event(record: ResponseRecord, code: str, sequence_number: int) -> tuple[str, dict[str, Any]]:
    """Build the SSE ``error`` event the live API sends when a stream fails after it began.

    The live API nests the error under ``error`` (as in an HTTP error body), not the flat ``code``/
    ``message`` fields of the SDK's ``ResponseErrorEvent``; the nested shape is what makes the SDK's
    stream raise ``openai.APIError``, so that is the shape a client must be tested against.

    Returns:
        The event type (``error``) and its JSON body.
    """
    type_, message = _STREAM_ERRORS.get(
        code, ("server_error", f"An error occurred while streaming the response ({code}).")
    )
    error = {"type": type_, "code": code, "message": message.format(model=record.model), "param": None}
    return "error", {"type": "error", "error": error, "sequence_number": sequence_number}


def sse(event_type: str, data: dict[str, Any]) -> bytes:
    """Frame one event as the API does: ``event: <type>``, ``data: <json>``, blank line.

    Returns:
        The bytes to write.
    """
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event_type}\ndata: {payload}\n\n".encode()
