"""The client's part of a job's trace: the span that starts it, and the link a cancel makes to it.

A job's trace starts where a person or program asked for it, not on the worker: ``lanes submit`` (or the
demo) opens :func:`job_root_span`, ``start_job`` starts the workflow inside it, and the Temporal plugin's
``StartWorkflow`` span carries its context in the workflow's headers, so the worker's ``RunWorkflow``
span and every activity span after it are its descendants: one trace from the submission to the last
provider call.

    with job_root_span("lanes submit", workflow_id=wid, task=task, decision=expected) as span:
        await start_job(client, task, workflow_id=wid, task_queue="lanes")
        record_job_outcome(span, await wait_for_outcome(client, wid))   # with --wait

A cancel is a separate operation, often by someone else and much later, so it gets a trace of its own
that *links* to the job's (:func:`job_trace_link`): ``start_job`` writes the submitting span's ids to
the memo (``lanes_trace``) and the workflow overwrites them with its root span's when it ends; the memo
is the only place a later process can find a job's trace id without reading history.

Attributes are ids and policy vocabulary only, never prompt or output text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, TraceFlags

from activities.decision_tags import DecisionTags
from policy import PolicyDecision
from workflows.model_task_io import TRACE_MEMO

if TYPE_CHECKING:
    from workflows.model_task_io import ModelTaskInput

WORKFLOW_ID = "temporalWorkflowID"
"""The attribute name Temporal's own spans use for the workflow id, so one filter finds all of a job's."""

_TRACER = trace.get_tracer("lanes.client")


@contextmanager
def job_root_span(
    name: str, *, workflow_id: str, task: ModelTaskInput, decision: PolicyDecision | None = None
) -> Iterator[Span]:
    """Open the root span of a new job's trace; start the job inside it.

    It always starts a new trace (whatever span is current), because a job outlives the command that
    submitted it. Trace lists that show root spans only (Phoenix's Traces tab) see this span, so it
    carries the decision the submitting client evaluated (the same policy engine; its digest says which
    policy) until :func:`record_job_outcome` replaces it with the worker's.

    Args:
        name: Span name, e.g. ``lanes submit``.
        workflow_id: The job's workflow id.
        task: The job (only its job type and declared data class are recorded).
        decision: The client's evaluation of the policy for this job, if it made one.
    """
    attributes: dict[str, str] = {WORKFLOW_ID: workflow_id, "lanes.job_type": task.job_type}
    if task.data_class is not None:
        attributes["lanes.declared_data_class"] = task.data_class
    if decision is not None:
        attributes.update(DecisionTags.of(decision).attributes())
    with _TRACER.start_as_current_span(
        name, context=Context(), kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span


def current_trace_memo() -> dict[str, dict[str, str]]:
    """The memo entry naming the current span's trace, or nothing when no sampled span is current."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return {}
    return {TRACE_MEMO: {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}}


def job_trace_link(memo: Mapping[str, Any]) -> Link | None:
    """A link to the job's trace from its memo, or ``None`` when the memo names none (or is malformed).

    A job started by a client that traced nothing has no ``lanes_trace`` until it ends.
    """
    entry = memo.get(TRACE_MEMO)
    if not isinstance(entry, Mapping):
        return None
    try:
        context = SpanContext(
            trace_id=int(str(entry["trace_id"]), 16),
            span_id=int(str(entry["span_id"]), 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    except (KeyError, ValueError):
        return None
    return Link(context, {"lanes.link": "job"}) if context.is_valid else None


@contextmanager
def cancel_span(workflow_id: str, *, link: Link | None, via: str) -> Iterator[Span]:
    """The span of a cancel request: a trace of its own, linked to the job's.

    The ``cancel`` signal sent inside it (and the worker's handler span) are its children; a Temporal
    workflow cancellation makes no span of Temporal's, so this one is its only trace.
    """
    attributes = {WORKFLOW_ID: workflow_id, "lanes.cancel.via": via}
    with _TRACER.start_as_current_span(
        "lanes cancel",
        context=Context(),
        kind=SpanKind.CLIENT,
        attributes=attributes,
        links=[link] if link is not None else None,
    ) as span:
        yield span
