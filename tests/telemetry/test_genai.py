"""GenAI semantic-convention attributes and the await span's account, on the model-calling activity spans."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes
from temporalio.client import Client

from activities import genai, responses
from workflows.model_task import ModelTaskInput, ModelTaskWorkflow


def activity_spans(exporter: InMemorySpanExporter, workflow_id: str, activity: str) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.name == f"RunActivity:{activity}"
        and (s.attributes or {}).get("temporalWorkflowID") == workflow_id
    ]


def test_the_attribute_names_are_the_pinned_semantic_conventions() -> None:
    assert genai.OPERATION_NAME == gen_ai_attributes.GEN_AI_OPERATION_NAME
    assert genai.PROVIDER_NAME == gen_ai_attributes.GEN_AI_PROVIDER_NAME
    assert genai.REQUEST_MODEL == gen_ai_attributes.GEN_AI_REQUEST_MODEL
    assert genai.RESPONSE_ID == gen_ai_attributes.GEN_AI_RESPONSE_ID
    assert genai.RESPONSE_MODEL == gen_ai_attributes.GEN_AI_RESPONSE_MODEL
    assert genai.RESPONSE_FINISH_REASONS == gen_ai_attributes.GEN_AI_RESPONSE_FINISH_REASONS
    assert genai.USAGE_INPUT_TOKENS == gen_ai_attributes.GEN_AI_USAGE_INPUT_TOKENS
    assert genai.USAGE_OUTPUT_TOKENS == gen_ai_attributes.GEN_AI_USAGE_OUTPUT_TOKENS
    assert gen_ai_attributes.GenAiProviderNameValues.OPENAI.value == genai.PROVIDER
    assert gen_ai_attributes.GenAiOperationNameValues.CHAT.value == genai.OPERATION


async def test_a_stateless_call_carries_the_genai_attributes(
    client: Client, worker: str, span_exporter: InMemorySpanExporter
) -> None:
    task = ModelTaskInput(job_type="support_analysis", data_class="confidential", input="genai stateless")
    handle = await client.start_workflow(
        ModelTaskWorkflow.run, task, id=f"genai-{uuid.uuid4()}", task_queue=worker
    )
    result = await handle.result()
    [span] = activity_spans(span_exporter, handle.id, "create_stateless_response")
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == result.decision.profile.model  # type: ignore[union-attr]
    assert attrs["gen_ai.response.id"] == result.response_id
    assert attrs["gen_ai.response.model"]
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert result.usage is not None
    assert attrs["gen_ai.usage.input_tokens"] == result.usage.input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == result.usage.output_tokens


async def test_the_await_span_records_mode_polls_reconnects_and_a_switch_to_polling(
    client: Client, worker: str, span_exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker runs in this process: two dropped streams are already too many.
    monkeypatch.setattr(responses, "MAX_STREAM_RECONNECTS", 1)
    task = ModelTaskInput(
        job_type="public_research",
        data_class="public",
        input="genai await",
        metadata={"emulator_fault": "drop_stream_after:2:10"},
    )
    handle = await client.start_workflow(
        ModelTaskWorkflow.run, task, id=f"genai-{uuid.uuid4()}", task_queue=worker
    )
    result = await handle.result()
    assert result.status == "completed"
    [span] = activity_spans(span_exporter, handle.id, "await_background_response")
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.response.id"] == result.response_id
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["lanes.await.mode"] == "poll"
    assert attrs["lanes.await.reconnects"] == result.reconnects >= 2
    assert attrs["lanes.await.polls"] == result.polls >= 1
    assert isinstance(attrs["lanes.await.queued_s"], float)
    [switch] = [e for e in span.events if e.name == "lanes.await.mode_switch"]
    assert dict(switch.attributes or {}) == {
        "from": "stream",
        "to": "poll",
        "reason": "too_many_reconnects",
        "reconnects": 2,
    }
    [start] = activity_spans(span_exporter, handle.id, "start_background_response")
    assert (start.attributes or {})["gen_ai.request.model"] == result.decision.profile.model  # type: ignore[union-attr]
