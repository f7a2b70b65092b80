"""ModelTaskWorkflow end to end: real dev server, real worker, real OpenAI SDK over HTTP to the emulator."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, cast

import pytest
from openai import AsyncOpenAI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError

from activities.failures import FailureType
from lanes.connect import openai_client
from lanes.dev.emulator_server import EmulatorServer
from lanes.jobs import wait_for_phase
from lanes.worker.serving import serving
from responses_emulator import Emulator
from workflows import search_attributes
from workflows.model_task import CancelInput, ModelTaskInput, ModelTaskResult, ModelTaskWorkflow

PROMPT_MARKER = "zebra-quartz-prompt"


async def start(
    client: Client, task_queue: str, task: ModelTaskInput
) -> WorkflowHandle[Any, ModelTaskResult]:
    return await client.start_workflow(
        ModelTaskWorkflow.run, task, id=f"test-{uuid.uuid4()}", task_queue=task_queue
    )


async def test_background_lane_creates_with_store_and_background_then_completes(
    client: Client, worker: str, emulator: Emulator, emulator_server: EmulatorServer
) -> None:
    task = ModelTaskInput(job_type="public_research", data_class="public", input=f"survey {PROMPT_MARKER}")
    handle = await start(client, worker, task)
    result = await handle.result()

    assert result.status == "completed"
    assert result.lane == "background"
    assert result.decision.lane == "background"
    assert result.rule == result.decision.rule
    assert result.response_id
    assert result.response_id.startswith("resp_")
    assert result.output_text
    # The output is the provider's, byte for byte: read it back with the real SDK.
    async with AsyncOpenAI(api_key="emulator", base_url=emulator_server.base_url, max_retries=0) as sdk:
        assert (await sdk.responses.retrieve(result.response_id)).output_text == result.output_text

    entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
    creates = [e for e in entries if e.method == "POST" and e.path == "/v1/responses"]
    assert len(creates) == 1
    assert creates[0].background is True
    assert creates[0].store is True
    assert creates[0].idempotency_key
    assert creates[0].metadata["lanes_job_type"] == "public_research"
    assert creates[0].metadata["lanes_policy_digest"] == result.decision.policy_digest

    described = await handle.describe()
    attrs = described.typed_search_attributes
    assert attrs.get(search_attributes.LANE) == "background"
    assert attrs.get(search_attributes.JOB_TYPE) == "public_research"
    assert attrs.get(search_attributes.DATA_CLASS) == result.decision.data_class


async def test_stateless_lane_never_stores_and_never_backgrounds(
    client: Client, worker: str, emulator: Emulator
) -> None:
    task = ModelTaskInput(
        job_type="support_analysis", data_class="confidential", input=f"ticket {PROMPT_MARKER}"
    )
    handle = await start(client, worker, task)
    result = await handle.result()

    assert result.status == "completed"
    assert result.lane == "stateless"
    assert result.output_text
    entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
    assert len(entries) == 1
    assert entries[0].method == "POST"
    assert entries[0].store is False
    assert entries[0].background is not True
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(search_attributes.LANE) == "stateless"
    assert attrs.get(search_attributes.DATA_CLASS) == "confidential"


async def test_denied_lane_fails_with_decision_and_calls_no_model(
    client: Client, worker: str, emulator: Emulator
) -> None:
    before = len(emulator.ledger.entries())
    task = ModelTaskInput(
        job_type="coding_analysis", data_class="restricted", input=f"account {PROMPT_MARKER}"
    )
    handle = await start(client, worker, task)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()

    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == FailureType.POLICY_DENIED
    assert cause.non_retryable
    decision = cause.details[0]
    assert decision["lane"] == "denied"
    assert decision["rule"]
    assert decision["reasons"]
    assert PROMPT_MARKER not in str(decision)
    assert emulator.ledger.tagged("lanes_workflow_id", handle.id) == []
    assert len(emulator.ledger.entries()) == before or all(
        e.metadata.get("lanes_workflow_id") != handle.id for e in emulator.ledger.entries()[before:]
    )
    attrs = (await handle.describe()).typed_search_attributes
    assert attrs.get(search_attributes.LANE) == "denied"


async def test_cancel_signal_cancels_at_the_provider(client: Client, worker: str, emulator: Emulator) -> None:
    task = ModelTaskInput(
        job_type="public_research", input="long survey", metadata={"emulator_duration": "120"}
    )
    handle = await start(client, worker, task)
    await wait_for_phase(handle, "running")
    await handle.signal(
        ModelTaskWorkflow.cancel, CancelInput(reason="no longer needed", requested_by="tester")
    )
    result = await handle.result()

    assert result.status == "cancelled"
    assert result.cancellation is not None
    assert result.cancellation.via == "signal"
    assert result.cancellation.requested_by == "tester"
    assert result.cancellation.reason == "no longer needed"
    assert result.cancellation.phase == "running"
    assert result.cancellation.effective
    entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
    cancels = [e for e in entries if e.path == f"/v1/responses/{result.response_id}/cancel"]
    assert len(cancels) >= 1
    assert cancels[0].status_code == 200
    status = await handle.query(ModelTaskWorkflow.status)
    assert status.provider_status == "cancelled"


async def test_workflow_cancellation_cleans_up_at_the_provider(
    client: Client, worker: str, emulator: Emulator
) -> None:
    task = ModelTaskInput(
        job_type="public_research", input="long survey", metadata={"emulator_duration": "120"}
    )
    handle = await start(client, worker, task)
    await wait_for_phase(handle, "running")
    await handle.cancel(reason="operator abort")
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    status = await handle.query(ModelTaskWorkflow.status)
    assert status.phase == "cancelled"
    assert status.cancellation is not None
    assert status.cancellation.via == "workflow-cancel"
    assert status.cancellation.reason == "operator abort"
    entries = emulator.ledger.tagged("lanes_workflow_id", handle.id)
    assert any(e.path.endswith("/cancel") for e in entries)


async def test_cancel_before_start_creates_nothing(client: Client, settings: Any, emulator: Emulator) -> None:
    # No worker yet: the signal is in history before the first activity runs.
    task = ModelTaskInput(job_type="public_research", input="never runs")
    handle = await start(client, settings.task_queue, task)
    await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason="changed my mind"))
    async with openai_client(settings) as provider, serving(client, settings, provider):
        result = await handle.result()
    assert result.status == "cancelled"
    assert result.response_id is None
    assert result.cancellation is not None
    assert result.cancellation.phase == "evaluating"
    assert emulator.ledger.tagged("lanes_workflow_id", handle.id) == []


async def test_decision_is_on_the_policy_span_and_every_activity_span_after_it(
    client: Client, worker: str, span_exporter: InMemorySpanExporter
) -> None:
    task = ModelTaskInput(job_type="public_research", input=f"traced {PROMPT_MARKER}")
    handle = await start(client, worker, task)
    result = await handle.result()

    run_spans = [
        s
        for s in span_exporter.get_finished_spans()
        if s.name.startswith("RunActivity:") and s.attributes is not None
    ]
    trace_ids = {
        s.context.trace_id
        for s in span_exporter.get_finished_spans()
        if s.attributes and s.attributes.get("temporalWorkflowID") == handle.id
    }
    mine = [s for s in run_spans if s.context.trace_id in trace_ids]
    names = {s.name for s in mine}
    assert "RunActivity:evaluate_policy" in names
    assert "RunActivity:start_background_response" in names
    assert "RunActivity:await_background_response" in names
    for span in mine:
        attrs = span.attributes or {}
        assert attrs.get("lanes.lane") == "background", span.name
        assert attrs.get("lanes.rule") == result.rule, span.name
        assert attrs.get("lanes.job_type") == "public_research", span.name
        assert attrs.get("lanes.data_class") == result.decision.data_class, span.name
    decision_spans = [
        s
        for s in span_exporter.get_finished_spans()
        if s.name == "lanes.decision" and s.context.trace_id in trace_ids
    ]
    assert len(decision_spans) == 1
    assert (decision_spans[0].attributes or {}).get("lanes.rule") == result.rule
    policy_span = next(s for s in mine if s.name == "RunActivity:evaluate_policy")
    assert policy_span.attributes is not None
    assert policy_span.attributes.get("lanes.policy.digest") == result.decision.policy_digest
    assert list(cast(Sequence[str], policy_span.attributes.get("lanes.reasons"))) == result.decision.reasons
    # No span of this trace carries prompt or output text.
    for span in span_exporter.get_finished_spans():
        if span.context.trace_id in trace_ids:
            text = str(dict(span.attributes or {})) + str([dict(e.attributes or {}) for e in span.events])
            assert PROMPT_MARKER not in text
            assert result.output_text[:40] not in text


async def test_unknown_job_type_from_a_client_that_skipped_validation_fails_fast(
    client: Client, worker: str, emulator: Emulator
) -> None:
    handle = await start(client, worker, ModelTaskInput(job_type="legal_reveiw", input="x"))
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == FailureType.UNKNOWN_JOB_TYPE
    assert "regulated_review" in cause.message
    assert emulator.ledger.tagged("lanes_workflow_id", handle.id) == []
