"""The decision in the Temporal UI: the workflow's summary and current details, activity summaries, and a
denied job that reads as the policy's denial, not as a stack trace. Read back through Temporal's own
APIs (describe, the metadata query the UI calls, history), with no text of the job anywhere in them."""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowFailureError

from lanes.jobs import start_job
from workflows.model_task_io import ModelTaskInput

PROMPT = "details test prompt that must stay out of every summary"


async def _summaries(client: Client, workflow_id: str) -> list[str]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    converter = client.data_converter
    found: list[str] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            assert event.user_metadata.HasField("summary"), event
            [summary] = await converter.decode([event.user_metadata.summary], [str])
            found.append(summary)
    return found


async def test_a_job_shows_its_lane_rule_and_policy_and_each_step_says_what_it_does(
    client: Client, worker: str
) -> None:
    task = ModelTaskInput(job_type="public_research", data_class="public", tenant=None, input=PROMPT)
    handle = await start_job(client, task, workflow_id=f"details-{uuid.uuid4()}", task_queue=worker)
    result = await handle.result()
    description = await handle.describe()
    assert await description.static_summary() == "lanes public_research, data class public"
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    details = metadata.current_details
    assert details.startswith("**Background lane (stored state at the provider)**")
    assert f"rule `{result.rule}` of policy {result.decision.policy_version}" in details
    assert "stored state acceptable: yes" in details
    summaries = await _summaries(client, handle.id)
    assert summaries[0].startswith("decide the lane")
    assert any(s.startswith("create the background response") for s in summaries), summaries
    for text in (details, await description.static_summary() or "", *summaries):
        assert "details test" not in text


async def test_a_denied_job_reads_as_the_policys_denial_without_a_stack_trace(
    client: Client, worker: str
) -> None:
    task = ModelTaskInput(job_type="coding_analysis", data_class="restricted", input=PROMPT)
    handle = await start_job(client, task, workflow_id=f"details-{uuid.uuid4()}", task_queue=worker)
    try:
        await handle.result()
        raise AssertionError("a restricted coding_analysis job must be denied")
    except WorkflowFailureError:
        pass
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert metadata.current_details.startswith("**Denied by policy: no model is called**")
    history = await handle.fetch_history()
    [failed] = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED]
    failure = failed.workflow_execution_failed_event_attributes.failure
    assert failure.application_failure_info.type == "PolicyDenied"
    assert failure.stack_trace == ""
    # The message (encrypted in history, as every failure message is) names the policy and rule.
    [decoded] = [await client.data_converter.decode_failure(failure)]
    assert "denies job type 'coding_analysis'" in str(decoded)
    assert PROMPT not in str(decoded)
