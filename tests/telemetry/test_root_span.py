"""The decision, the outcome and a cancellation on the workflow's root span, the plugin's ``RunWorkflow``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from lanes.jobs import wait_for_phase
from workflows import search_attributes
from workflows.model_task import CancelInput, ModelTaskInput, ModelTaskResult, ModelTaskWorkflow

DECISION_KEYS = {
    "lanes.lane",
    "lanes.rule",
    "lanes.policy.digest",
    "lanes.policy.version",
    "lanes.job_type",
    "lanes.data_class",
}


def root_span(exporter: InMemorySpanExporter, workflow_id: str) -> ReadableSpan:
    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.name == "RunWorkflow:ModelTaskWorkflow"
        and (s.attributes or {}).get("temporalWorkflowID") == workflow_id
    ]
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


async def start(
    client: Client, task_queue: str, task: ModelTaskInput
) -> WorkflowHandle[Any, ModelTaskResult]:
    return await client.start_workflow(
        ModelTaskWorkflow.run, task, id=f"root-{uuid.uuid4()}", task_queue=task_queue
    )


async def test_a_completed_job_has_its_decision_and_outcome_on_the_root_span(
    client: Client, worker: str, span_exporter: InMemorySpanExporter
) -> None:
    task = ModelTaskInput(job_type="support_analysis", data_class="confidential", input="root span")
    handle = await start(client, worker, task)
    result = await handle.result()
    span = root_span(span_exporter, handle.id)
    attrs = dict(span.attributes or {})
    assert attrs.keys() >= DECISION_KEYS
    assert attrs["lanes.lane"] == "stateless"
    assert attrs["lanes.rule"] == result.rule
    assert attrs["lanes.policy.digest"] == result.decision.policy_digest
    assert attrs["lanes.policy.version"] == result.decision.policy_version
    assert attrs["lanes.outcome"] == "completed"
    assert span.status.status_code != StatusCode.ERROR
    assert not [e for e in span.events if e.name == "lanes.cancelled"]


async def test_a_denied_job_is_an_error_with_outcome_denied(
    client: Client, worker: str, span_exporter: InMemorySpanExporter
) -> None:
    task = ModelTaskInput(job_type="coding_analysis", data_class="restricted", input="root denied")
    handle = await start(client, worker, task)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    span = root_span(span_exporter, handle.id)
    attrs = dict(span.attributes or {})
    assert attrs["lanes.lane"] == "denied"
    assert attrs["lanes.outcome"] == "denied"
    assert span.status.status_code == StatusCode.ERROR


async def test_a_failed_job_is_an_error_with_outcome_failed(
    client: Client, worker: str, span_exporter: InMemorySpanExporter
) -> None:
    task = ModelTaskInput(
        job_type="public_research",
        input="root failed",
        metadata={"emulator_fault": "fail:invalid_prompt"},
    )
    handle = await start(client, worker, task)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    span = root_span(span_exporter, handle.id)
    assert (span.attributes or {})["lanes.outcome"] == "failed"
    assert span.status.status_code == StatusCode.ERROR


async def test_a_signal_cancellation_is_an_event_on_the_root_span(
    client: Client, worker: str, span_exporter: InMemorySpanExporter
) -> None:
    task = ModelTaskInput(
        job_type="public_research", input="root cancel", metadata={"emulator_duration": "120"}
    )
    handle = await start(client, worker, task)
    await wait_for_phase(handle, "running")
    await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason="not needed", requested_by="tester"))
    await handle.result()
    span = root_span(span_exporter, handle.id)
    assert (span.attributes or {})["lanes.outcome"] == "cancelled"
    [event] = [e for e in span.events if e.name == "lanes.cancelled"]
    assert dict(event.attributes or {}) == {
        "requested_by": "tester",
        "reason": "not needed",
        "phase": "running",
        "effective": True,
        "via": "signal",
        "unconfirmed_create": False,
    }


async def test_a_workflow_cancellation_is_an_event_on_the_root_span(
    client: Client, worker: str, span_exporter: InMemorySpanExporter
) -> None:
    task = ModelTaskInput(
        job_type="public_research", input="root abort", metadata={"emulator_duration": "120"}
    )
    handle = await start(client, worker, task)
    await wait_for_phase(handle, "running")
    await handle.cancel(reason="operator abort")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    span = root_span(span_exporter, handle.id)
    assert (span.attributes or {})["lanes.outcome"] == "cancelled"
    [event] = [e for e in span.events if e.name == "lanes.cancelled"]
    assert (event.attributes or {})["via"] == "workflow-cancel"
    assert (event.attributes or {})["reason"] == "operator abort"


async def test_the_outcome_rule_and_digest_are_search_attributes_and_the_memo_holds_the_decision(
    client: Client, worker: str, span_exporter: InMemorySpanExporter
) -> None:
    task = ModelTaskInput(job_type="coding_analysis", data_class="restricted", input="audit denied")
    handle = await start(client, worker, task)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    description = await handle.describe()
    attrs = description.typed_search_attributes
    span = root_span(span_exporter, handle.id)
    rule = (span.attributes or {})["lanes.rule"]
    assert attrs.get(search_attributes.OUTCOME) == "denied"
    assert attrs.get(search_attributes.RULE) == rule
    assert attrs.get(search_attributes.POLICY_DIGEST) == (span.attributes or {})["lanes.policy.digest"]
    memo = await description.memo()
    assert memo["lanes_outcome"] == "denied"
    assert memo["lanes_decision"]["rule"] == rule
    assert memo["lanes_trace"] == {
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
    }
