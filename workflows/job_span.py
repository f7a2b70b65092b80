"""The decision and outcome of a job on its workflow's root span, where every trace list looks.

``OpenTelemetryPlugin(add_temporal_spans=True)`` wraps the workflow's run in its ``RunWorkflow:
ModelTaskWorkflow`` span and makes it current in workflow code, so ``trace.get_current_span()`` in the
run method *is* that span: the root of the trace when the starter made no span (a schedule, another
service), the child of ``lanes submit``'s span otherwise. No span of lanes' own is held open across
awaits (temporalio/sdk-python#441): the plugin's span already is, and lanes only sets attributes,
status and events on it, at points that involve no await.

It is replay-safe: the plugin's provider ends a span only outside replay, with deterministic ids, so a
run replayed on another worker sets the same attributes again on the span that is finally exported.
Everything here is deterministic (the cancellation event carries the request's workflow time).

Only policy vocabulary, statuses and the cancellation's who, why and where are recorded, never prompt,
instructions or output text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from activities.outcome import Outcome

if TYPE_CHECKING:
    from workflows.model_task_io import CancellationRecord

OUTCOME = "lanes.outcome"
"""Span attribute: how the job ended (an :class:`~activities.outcome.Outcome`)."""
CANCELLED_EVENT = "lanes.cancelled"

ERROR_OUTCOMES = frozenset({Outcome.FAILED, Outcome.DENIED})
"""Outcomes that set the root span's status to ERROR (an ``incomplete`` job is a partial success)."""


def root_span() -> Span:
    """The workflow's ``RunWorkflow`` span (current in workflow code outside lanes' own short spans)."""
    return trace.get_current_span()


def record_outcome(span: Span, outcome: Outcome, cancellation: CancellationRecord | None) -> None:
    """Set ``lanes.outcome``, ERROR for failed and denied jobs, and the ``lanes.cancelled`` event."""
    span.set_attribute(OUTCOME, outcome.value)
    if outcome in ERROR_OUTCOMES:
        span.set_status(Status(StatusCode.ERROR, f"lanes job {outcome}"))
    if cancellation is not None:
        span.add_event(
            CANCELLED_EVENT,
            {
                "requested_by": cancellation.requested_by,
                "reason": cancellation.reason,
                "phase": cancellation.phase,
                "effective": cancellation.effective,
                "via": cancellation.via,
                "unconfirmed_create": cancellation.unconfirmed_create,
            },
            timestamp=int(cancellation.requested_at.timestamp() * 1_000_000_000),
        )
