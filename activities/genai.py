"""OpenTelemetry GenAI semantic conventions on the model-calling activity spans.

Follows the GenAI semantic conventions of OpenTelemetry semantic conventions **v1.44.0** (the
``gen_ai.*`` registry, status Development; the version ``opentelemetry-semantic-conventions`` 0.66b2
ships). The names are written out here rather than imported from the package's ``_incubating`` module,
and ``tests/telemetry/test_genai.py`` checks them against it.

Only identifiers, statuses and counts: never ``gen_ai.input.messages``, ``gen_ai.output.messages`` or
``gen_ai.system_instructions``, which would carry prompt and output text.
"""

from __future__ import annotations

from openai.types.responses import Response
from opentelemetry import trace

SEMCONV_VERSION = "1.44.0"
"""The semantic-conventions release these attribute names follow."""

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"

OPERATION = "chat"
"""A Responses API call generates a model turn: the conventions' ``chat`` operation (as for Chat
Completions; the conventions define no separate value for the Responses API)."""

PROVIDER = "openai"


def record_request(model: str | None) -> None:
    """Operation, provider and (when the activity knows it) the requested model on the current span."""
    span = trace.get_current_span()
    span.set_attribute(OPERATION_NAME, OPERATION)
    span.set_attribute(PROVIDER_NAME, PROVIDER)
    if model:
        span.set_attribute(REQUEST_MODEL, model)


def finish_reason(response: Response) -> str | None:
    """The Responses API has no finish reason: the status stands in, and an incomplete response's reason.

    ``completed`` → ``stop``; ``incomplete`` → its reason (``max_output_tokens`` → ``length``, as in
    Chat Completions; ``content_filter``); ``failed`` → ``error``; ``cancelled`` → ``cancelled``; a
    response still queued or running has none.
    """
    if response.status == "completed":
        return "stop"
    if response.status == "incomplete":
        reason = response.incomplete_details.reason if response.incomplete_details else None
        return "length" if reason == "max_output_tokens" else (reason or "incomplete")
    if response.status == "failed":
        return "error"
    if response.status == "cancelled":
        return "cancelled"
    return None


def record_response(response: Response) -> None:
    """Response id and model, finish reason and token usage on the current span."""
    span = trace.get_current_span()
    span.set_attribute(RESPONSE_ID, response.id)
    if response.model:
        span.set_attribute(RESPONSE_MODEL, str(response.model))
    reason = finish_reason(response)
    if reason:
        span.set_attribute(RESPONSE_FINISH_REASONS, [reason])
    if response.usage is not None:
        span.set_attribute(USAGE_INPUT_TOKENS, response.usage.input_tokens)
        span.set_attribute(USAGE_OUTPUT_TOKENS, response.usage.output_tokens)
