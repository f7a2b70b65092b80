"""A poll that says "not yet" travels without a stack trace; real failures keep theirs."""

from __future__ import annotations

import uuid

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.failures import FailureType
from lanes.jobs import job_status
from lanes.plugin import DATA_CONVERTER
from lanes.worker.benign_failures import EncodedAttributesFailureConverter, FailureConverter
from responses_emulator import Emulator
from tests.workflows.test_crash_recovery import until
from workflows.model_task import ModelTaskInput, ModelTaskWorkflow


def _raised(error: ApplicationError) -> ApplicationError:
    try:
        raise error
    except ApplicationError as caught:
        return caught


def test_converters_drop_the_trace_of_benign_errors_only() -> None:
    for converter in (FailureConverter(), EncodedAttributesFailureConverter()):
        benign = Failure()
        converter.to_failure(
            _raised(ApplicationError("not yet", category=ApplicationErrorCategory.BENIGN)),
            DATA_CONVERTER.payload_converter,
            benign,
        )
        real = Failure()
        converter.to_failure(_raised(ApplicationError("broken")), DATA_CONVERTER.payload_converter, real)
        assert benign.stack_trace == "", converter
        # With encoded attributes the trace moves into the payload; either way a real one is kept.
        assert "test_benign_failures.py" in (real.stack_trace or str(real.encoded_attributes)), converter
    assert DATA_CONVERTER.failure_converter_class is FailureConverter


async def test_a_poll_mode_jobs_not_yet_polls_carry_no_activity_frames(
    client: Client, worker: str, emulator: Emulator, span_exporter: InMemorySpanExporter
) -> None:
    tag = uuid.uuid4().hex
    handle = await client.start_workflow(
        ModelTaskWorkflow.run,
        ModelTaskInput(
            job_type="coding_analysis",
            data_class="internal",
            input="benign polls",
            metadata={"emulator_duration": "1", "emulator_fault": "hold", "benign": tag},
        ),
        id=f"benign-{tag}",
        task_queue=worker,
    )
    try:

        async def polled_twice() -> bool:
            pending = (await job_status(client, handle.id)).pending_activities
            return any(p.last_failure_type == FailureType.NOT_YET and p.attempt >= 3 for p in pending)

        await until("two not-yet polls of a held response", polled_twice)
        description = await handle.describe()
        [check] = [
            p
            for p in description.raw_description.pending_activities
            if p.activity_type.name == "check_background_response"
        ]
        decoded = await client.data_converter.decode_failure(check.last_failure)
        assert isinstance(decoded, ApplicationError)
        assert decoded.type == FailureType.NOT_YET
        assert decoded.failure is not None
        assert decoded.failure.stack_trace == ""
    finally:
        emulator.release(metadata={"benign": tag})
    result = await handle.result()
    assert result.status == "completed"

    not_yet = [
        event
        for span in span_exporter.get_finished_spans()
        if (span.attributes or {}).get("temporalWorkflowID") == handle.id
        and span.name == "RunActivity:check_background_response"
        for event in span.events
        if event.name == "exception"
    ]
    assert len(not_yet) >= 2
    for event in not_yet:
        trace = str((event.attributes or {}).get("exception.stacktrace"))
        assert "ResponseNotDone" in trace or "ApplicationError" in trace
        # Cleared before the tracing interceptor saw it: none of the activity's own frames.
        assert "activities/responses.py" not in trace, trace
