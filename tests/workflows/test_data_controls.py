"""The security invariants, over every cell of the default policy and random text, through the real stack.

1. A job whose lane is not background never causes a ``store=true`` (or ``background=true``) request, and
   a job whose data class forbids stored state (``stored_state = "deny"`` or ``zdr``) never gets the
   background lane.
2. No prompt, instructions or output text ever lands in spans, logs or search attributes.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.failures import FailureType
from lanes.telemetry import quiet_payload_loggers
from policy import load_policy
from responses_emulator import Emulator
from workflows import search_attributes
from workflows.model_task import ModelTaskInput, ModelTaskResult, ModelTaskWorkflow

POLICY = load_policy()
FORBIDS_STORED_STATE = {
    name for name, cls in POLICY.document.data_classes.items() if cls.stored_state == "deny" or cls.zdr
}

# Text that is easy to find again: a random token inside arbitrary printable text.
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=0, max_size=200
)


def telemetry_text(exporter: InMemorySpanExporter, workflow_ids: set[str]) -> str:
    """Every attribute and event of every span of these workflows' traces, as one string."""
    spans = exporter.get_finished_spans()
    traces = {
        s.context.trace_id
        for s in spans
        if s.attributes is not None and s.attributes.get("temporalWorkflowID") in workflow_ids
    }
    parts = []
    for span in spans:
        if span.context.trace_id in traces:
            parts.append(span.name)
            parts.append(repr(dict(span.attributes or {})))
            parts += [repr(dict(e.attributes or {})) for e in span.events]
    return "\n".join(parts)


async def outcome(handle: WorkflowHandle[Any, ModelTaskResult]) -> tuple[dict[str, Any], str]:
    """The decision and output text of a job, whether it ran or was denied."""
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        cause = exc.cause
    else:
        return result.decision.model_dump(mode="json"), result.output_text
    assert isinstance(cause, ApplicationError)
    assert cause.type == FailureType.POLICY_DENIED
    return cause.details[0], ""


# Each example runs all 35 cells through the real stack, so a few examples cover a lot of ground.
@pytest.mark.long(12)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=texts, instructions=texts)
async def test_every_cell_of_the_default_policy_keeps_its_data_controls(
    client: Client,
    worker: str,
    emulator: Emulator,
    span_exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    prompt: str,
    instructions: str,
) -> None:
    # Even at DEBUG, lanes' logging keeps the payload-dumping libraries at INFO.
    quiet_payload_loggers()
    caplog.set_level(logging.DEBUG)
    token = f"secret-{uuid.uuid4().hex}"
    handles: dict[tuple[str, str], WorkflowHandle[Any, ModelTaskResult]] = {}
    for job_type in POLICY.job_type_names:
        for data_class in POLICY.class_names:
            task = ModelTaskInput(
                job_type=job_type,
                data_class=data_class,
                input=f"{prompt} {token}",
                instructions=f"{instructions} {token}",
            )
            handles[(job_type, data_class)] = await client.start_workflow(
                ModelTaskWorkflow.run,
                task,
                id=f"dc-{job_type}-{data_class}-{uuid.uuid4()}",
                task_queue=worker,
            )
    outcomes = dict(zip(handles, await asyncio.gather(*(outcome(h) for h in handles.values())), strict=True))

    entries = emulator.ledger.entries()
    outputs = [text for _, text in outcomes.values() if text]
    for (job_type, data_class), (decision, _) in outcomes.items():
        workflow_id = handles[(job_type, data_class)].id
        sent = [e for e in entries if e.metadata.get("lanes_workflow_id") == workflow_id]
        if decision["lane"] != "background":
            assert not any(e.store for e in sent), (job_type, data_class, decision["rule"])
            assert not any(e.background for e in sent), (job_type, data_class, decision["rule"])
            assert not any(e.stateful for e in sent), (job_type, data_class, decision["rule"])
        if decision["data_class"] in FORBIDS_STORED_STATE:
            assert decision["lane"] != "background", (job_type, data_class)
        if decision["lane"] == "denied":
            assert sent == []
        attrs = (await handles[(job_type, data_class)].describe()).typed_search_attributes
        values = {attrs.get(key) for key in search_attributes.ALL}
        outcome_values = {"completed", "incomplete", "failed", "cancelled", "denied"}
        allowed = {
            decision["lane"],
            job_type,
            decision["data_class"],
            decision["rule"],
            decision["policy_digest"],
        }
        assert values <= allowed | outcome_values
        memo = repr(
            (await handles[(job_type, data_class)].describe()).raw_description.workflow_execution_info.memo
        )
        assert token not in memo

    telemetry = telemetry_text(span_exporter, {h.id for h in handles.values()})
    logs = caplog.text
    ledger = repr([e.model_dump() for e in entries])
    for place, text in (("spans", telemetry), ("logs", logs), ("ledger", ledger)):
        assert token not in text, place
        for output in outputs:
            assert output[:60] not in text, place
