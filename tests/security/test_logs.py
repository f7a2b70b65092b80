"""Issue 20, low item "prompt fragments reach the worker log": nothing a job carries reaches a log record.

A real worker (in this process, through ``worker.serving``) runs jobs against the real dev server and the
emulator while every record of every logger is captured with the root logger at DEBUG, as
``LANES_LOG_LEVEL=DEBUG`` sets it. Each job's prompt and instructions carry a canary made for it; the
provider echoes the instructions in the response object it returns, and, for the provider-error job, a
metadata value in its error message (as the real API's ``invalid_prompt`` errors can quote a prompt). No
record may carry a canary or a job's output text: not its message, its arguments, its extra fields, its
exception text or its formatted traceback.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import BaseModel, ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from lanes.dev.stack import WorkerProcess
from lanes.job_outcome import JobOutcome
from lanes.jobs import wait_for_outcome, wait_for_phase
from lanes.plugin import DATA_CONVERTER
from lanes.settings import Settings
from lanes.telemetry import PAYLOAD_LOGGERS, quiet_payload_loggers
from responses_emulator import Emulator
from workflows.model_task import ModelTaskInput, ModelTaskResult, ModelTaskWorkflow, ProviderFinishedInput


def canary() -> str:
    """A string no log line can contain by chance, short enough that pydantic would quote it whole."""
    return f"CANARY-{uuid.uuid4().hex[:12]}"


def fragments(secret: str) -> list[str]:
    """``secret`` and its ends: a truncated repr (pydantic's, say) still leaks its first and last part."""
    return [secret] if len(secret) <= 30 else [secret, secret[:30], secret[-30:]]


class Capture(logging.Handler):
    """Every record that reaches the root logger, whatever its level."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def leaks(self, *secrets: str) -> list[str]:
        """The records (rendered in full) that contain any of ``secrets``."""
        found = []
        searched = [fragment for secret in secrets for fragment in fragments(secret)]
        for record in self.records:
            text = render(record)
            if any(fragment in text for fragment in searched):
                found.append(text)
        return found


_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def render(record: logging.LogRecord) -> str:
    """Everything a handler could write of ``record``: message, args, extras, exception and stack."""
    parts = [record.name, str(record.msg), repr(record.args)]
    try:
        parts.append(record.getMessage())
    except Exception as exc:  # a malformed record is still searched through its parts
        parts.append(repr(exc))
    parts.extend(f"{key}={value!r}" for key, value in record.__dict__.items() if key not in _STANDARD)
    if record.exc_info and record.exc_info[1] is not None:
        parts.append("".join(traceback.format_exception(record.exc_info[1])))
        parts.append(repr(record.exc_info[1]))
    for extra in (record.exc_text, record.stack_info):
        if extra:
            parts.append(extra)
    return "\n".join(parts)


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    """The root logger at DEBUG with lanes' logging policy, as a worker runs with ``LANES_LOG_LEVEL=DEBUG``.

    Requested before the worker fixture, so the worker's start-up records are captured too.
    """
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in PAYLOAD_LOGGERS}
    previous = root.level
    capture = Capture()
    root.setLevel(logging.DEBUG)
    quiet_payload_loggers()
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        root.setLevel(previous)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def secret_task(secret: str, job_type: str, data_class: str, **fields: Any) -> ModelTaskInput:
    return ModelTaskInput(
        job_type=job_type,
        data_class=data_class,
        input=f"prompt {secret} with more words",
        instructions=f"instructions {secret}",
        **fields,
    )


async def run_job(client: Client, task_queue: str, task: ModelTaskInput) -> JobOutcome:
    handle = await client.start_workflow(
        ModelTaskWorkflow.run, task, id=f"logs-{uuid.uuid4()}", task_queue=task_queue
    )
    return await wait_for_outcome(client, handle.id, timeout_s=60)


LANES = {
    "background-stream": ("public_research", "public", {}, "completed"),
    "background-poll": ("coding_analysis", "internal", {}, "completed"),
    "stateless": ("support_analysis", "confidential", {}, "completed"),
    "denied": ("coding_analysis", "confidential", {}, "denied"),
    "provider-failed": ("public_research", "public", {"emulator_fault": "fail:server_error"}, "failed"),
}


@pytest.mark.parametrize("lane", sorted(LANES))
async def test_no_prompt_instructions_or_output_in_any_log_record(
    debug_logs: Capture, client: Client, worker: str, lane: str
) -> None:
    secret = canary()
    job_type, data_class, metadata, status = LANES[lane]
    outcome = await run_job(client, worker, secret_task(secret, job_type, data_class, metadata=metadata))

    assert outcome.status == status, outcome
    secrets = [secret]
    if outcome.output_text:
        secrets.append(outcome.output_text)
    assert debug_logs.records, "nothing was captured: the capture is broken, not the logs clean"
    assert debug_logs.leaks(*secrets) == []


async def test_a_provider_error_message_reaches_the_result_but_no_log(
    debug_logs: Capture, client: Client, worker: str
) -> None:
    # The emulator's 400 for a malformed emulator_tokens quotes the value back, as provider messages may
    # quote a prompt: every provider message is treated as text of the job.
    secret = canary()
    task = secret_task(secret, "public_research", "public", metadata={"emulator_tokens": secret})
    outcome = await run_job(client, worker, task)

    assert outcome.status == "failed"
    assert outcome.error_type == "ProviderError"
    # `lanes result` prints the provider's code and message: they travel in the (encrypted) failure.
    assert outcome.error_message is not None
    assert secret in outcome.error_message
    assert "HTTP 400" in outcome.error_message
    assert debug_logs.leaks(secret) == []
    # The failure is logged (an operator sees that and why a job failed), without the provider's words.
    failures = [r for r in debug_logs.records if "Completing activity as failed" in r.getMessage()]
    assert failures
    assert all("HTTP 400" in render(r) for r in failures)


async def test_a_provider_error_message_reaches_no_span(
    client: Client, worker: str, span_exporter: InMemorySpanExporter
) -> None:
    # Spans are held to the same rule: the workflow's span records its failure, not the provider's words.
    secret = canary()
    task = secret_task(secret, "public_research", "public", metadata={"emulator_tokens": secret})
    handle = await client.start_workflow(
        ModelTaskWorkflow.run, task, id=f"logs-{uuid.uuid4()}", task_queue=worker
    )
    outcome = await wait_for_outcome(client, handle.id, timeout_s=60)

    assert outcome.error_message is not None
    assert secret in outcome.error_message
    spans = [
        s
        for s in span_exporter.get_finished_spans()
        if handle.id in repr(s.attributes) or s.name.startswith("Run")
    ]
    failed = [
        s
        for s in spans
        if s.name == "RunWorkflow:ModelTaskWorkflow" and s.status.status_code == StatusCode.ERROR
    ]
    assert failed, "the workflow's span records that it failed"
    for span in spans:
        text = (
            repr(span.attributes) + repr(span.status.description) + repr([e.attributes for e in span.events])
        )
        assert secret not in text, span.name


async def history_has(
    handle: WorkflowHandle[Any, Any], event_type: EventType.ValueType, after: int = 0
) -> int:
    """Wait until the workflow's history has an ``event_type`` event after event ``after``; its id."""
    async with asyncio.timeout(60):
        while True:
            async for event in handle.fetch_history_events():
                if event.event_id > after and event.event_type == event_type:
                    return event.event_id
            await asyncio.sleep(0.05)


async def test_an_invalid_workflow_input_is_refused_without_its_values_in_the_log(
    debug_logs: Capture, client: Client, worker: str
) -> None:
    secret = canary()
    # A raw start, as any client of the namespace can make: the prompt is fine, another field is not.
    # Without a job type, pydantic's "Field required" error quotes the whole object: the prompt with it.
    raw = {"input": secret, "instructions": secret}
    handle = await client.start_workflow(
        "ModelTaskWorkflow", raw, id=f"logs-{uuid.uuid4()}", task_queue=worker
    )
    try:
        await history_has(handle, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    finally:
        await handle.terminate("test over")

    refused = [r for r in debug_logs.records if r.exc_info and isinstance(r.exc_info[1], Exception)]
    assert any("job_type" in render(r) for r in refused), "the refusal names the field"
    assert debug_logs.leaks(secret) == []


async def test_an_invalid_signal_is_dropped_without_its_values_in_the_log(
    debug_logs: Capture, client: Client, worker: str, emulator: Emulator
) -> None:
    secret = canary()
    task = secret_task(secret, "public_research", "public", metadata={"emulator_fault": "hold"})
    handle = await client.start_workflow(
        ModelTaskWorkflow.run, task, id=f"logs-{uuid.uuid4()}", task_queue=worker
    )
    await wait_for_phase(handle, "running")
    # A forged provider_finished whose outcome carries output text but an impossible status.
    bogus = {"response_id": "resp_x", "outcome": {"output_text": secret}}
    await handle.signal("provider_finished", bogus)
    signalled = await history_has(handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    await history_has(handle, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, after=signalled)
    emulator.release(metadata={"lanes_workflow_id": handle.id})
    result: ModelTaskResult = await handle.result()

    assert result.status == "completed"
    dropped = [r for r in debug_logs.records if "dropping the signal" in r.getMessage()]
    assert dropped, "the SDK logs the dropped signal"
    assert debug_logs.leaks(secret, result.output_text or secret) == []


async def test_a_worker_process_at_debug_logs_no_job_text(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    # `python worker.py` as an operator runs it, with every debug switch on: LANES_LOG_LEVEL=DEBUG and the
    # OpenAI SDK's own OPENAI_LOG=debug (which logs request bodies, prompts included).
    log = tmp_path / "worker.log"
    worker = WorkerProcess(settings, log_path=log, env={"LANES_LOG_LEVEL": "DEBUG", "OPENAI_LOG": "debug"})
    await worker.start()
    secret = canary()
    try:
        done = await run_job(client, settings.task_queue, secret_task(secret, "public_research", "public"))
        echoed = secret_task(secret, "support_analysis", "confidential", metadata={"emulator_tokens": secret})
        refused = await run_job(client, settings.task_queue, echoed)
        raw = await client.start_workflow(
            "ModelTaskWorkflow", {"input": secret}, id=f"logs-{uuid.uuid4()}", task_queue=settings.task_queue
        )
        await history_has(raw, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)
        await raw.terminate("test over")
    finally:
        await worker.stop()
    text = log.read_text()

    assert [f for f in fragments(secret) + fragments(done.output_text or secret) if f in text] == []
    assert done.status == "completed"
    assert refused.error_message is not None
    assert secret in refused.error_message
    assert "Completing activity as failed" in text  # the failure is logged, and why (the status)
    assert "HTTP 400" in text
    assert "job_type" in text  # so is the refused input, by its field
    assert " DEBUG " in text  # the worker did log at DEBUG


REFUSED: dict[str, tuple[type[BaseModel], Callable[[str], object]]] = {
    "a prompt without a job type": (ModelTaskInput, lambda text: {"input": text}),
    "a job type too long": (ModelTaskInput, lambda text: {"job_type": text * 65, "input": "x"}),
    "a job type of the wrong type": (ModelTaskInput, lambda text: {"job_type": [text], "input": text}),
    "a forged outcome without a status": (
        ProviderFinishedInput,
        lambda text: {"response_id": "resp_x", "outcome": {"response_id": "resp_x", "output_text": text}},
    ),
}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(REFUSED)), st.text(min_size=1, max_size=40))
def test_a_payload_the_converter_refuses_never_carries_its_values(case: str, text: str) -> None:
    # Whatever the text, and wherever it sits, a refusal names the field and the rule, never a value.
    model, build = REFUSED[case]
    secret = f"{text}{uuid.uuid4().hex[:8]}"
    (payload,) = DATA_CONVERTER.payload_converter.to_payloads([build(secret)])
    with pytest.raises(ValidationError) as refused:
        DATA_CONVERTER.payload_converter.from_payloads([payload], [model])
    error = refused.value
    rendered = "".join(traceback.format_exception(error)) + repr(error) + repr(error.errors())
    assert error.error_count() >= 1
    assert "input_value" not in rendered
    assert secret not in rendered
    assert all(repr(line.get("input")) == "None" for line in error.errors())
    assert error.__context__ is None
    assert error.__cause__ is None
    assert "job_type" in rendered or "status" in rendered
