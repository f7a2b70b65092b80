"""JobOutcome reads every shape a job's end can take, without a server."""

from __future__ import annotations

from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, RetryState

from activities.failures import FailureType
from lanes.job_outcome import JobOutcome
from policy import PolicyQuery, evaluate, load_policy
from workflows.model_task import ModelTaskResult


def _decision(job_type: str, data_class: str):
    return evaluate(load_policy(), PolicyQuery(job_type=job_type, data_class=data_class))


def _failed_result() -> ModelTaskResult:
    decision = _decision("public_research", "public")
    return ModelTaskResult(
        status="failed",
        lane=decision.lane,
        rule=decision.rule,
        decision=decision,
        response_id="resp_1",
        error_code="server_error",
        error_message="the model failed",
    )


def test_a_provider_failed_workflow_failure_reads_as_failed_with_the_results_error():
    detail = _failed_result().model_dump(mode="json")
    cause = ApplicationError("provider failed", detail, type=FailureType.PROVIDER_FAILED, non_retryable=True)
    outcome = JobOutcome.from_failure("wf-1", WorkflowFailureError(cause=cause))
    assert outcome.status == "failed"
    assert not outcome.succeeded
    assert (outcome.error_type, outcome.error_code, outcome.error_message) == (
        "ProviderFailed",
        "server_error",
        "the model failed",
    )
    assert (outcome.lane, outcome.response_id) == ("background", "resp_1")


def test_a_failed_result_reads_as_failed():
    outcome = JobOutcome.from_result("wf-1", _failed_result())
    assert outcome.status == "failed"
    assert not outcome.succeeded


def test_a_denial_carries_its_decision_even_wrapped_in_an_activity_error():
    decision = _decision("sensitive_customer", "restricted")
    denied = ApplicationError("denied", decision.model_dump(mode="json"), type=FailureType.POLICY_DENIED)
    wrapped = ActivityError(
        "activity failed",
        scheduled_event_id=1,
        started_event_id=2,
        identity="w",
        activity_type="evaluate_policy",
        activity_id="1",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    wrapped.__cause__ = denied
    for cause in (denied, wrapped):
        outcome = JobOutcome.from_failure("wf-2", WorkflowFailureError(cause=cause))
        assert outcome.status == "denied"
        assert outcome.decision == decision
        assert outcome.rule == decision.rule


def test_a_temporal_cancellation_reads_as_cancelled():
    outcome = JobOutcome.from_failure("wf-3", WorkflowFailureError(cause=CancelledError("cancelled")))
    assert outcome.status == "cancelled"
    assert outcome.succeeded


def test_any_other_failure_reads_as_failed_with_its_type():
    cause = ApplicationError("gone", type=FailureType.RESULT_EXPIRED)
    outcome = JobOutcome.from_failure("wf-4", WorkflowFailureError(cause=cause))
    assert (outcome.status, outcome.error_type, outcome.error_message) == ("failed", "ResultExpired", "gone")


def test_an_outcome_keeps_every_field_of_the_result():
    # JobOutcome holds the result whole: a field added to the result (provider_deleted) cannot be dropped,
    # and the fields every ending has agree with the result's.
    result = _failed_result().model_copy(update={"provider_deleted": True, "polls": 7})
    outcome = JobOutcome.from_result("wf-1", result)
    assert outcome.result == result
    shared = set(JobOutcome.model_fields) & set(type(result).model_fields)
    assert shared == {
        "status",
        "lane",
        "rule",
        "decision",
        "response_id",
        "cancellation",
        "error_code",
        "error_message",
    }
    assert outcome.model_dump(include=shared) == result.model_dump(include=shared)
    assert (outcome.output_text, outcome.usage) == (result.output_text, result.usage)
