"""How a job ended, as a client reads it: from the workflow's result or from its failure.

One model for every ending (completed, incomplete, denied, failed, cancelled), so that the CLI, the demo,
:class:`lanes.Job` and the errors of :mod:`lanes.errors` read the same fields. It lives apart from
:mod:`lanes.jobs` because :class:`lanes.errors.JobError` carries one, and the jobs module raises those
errors.
"""

from __future__ import annotations

from opentelemetry.trace import Span, Status, StatusCode
from pydantic import BaseModel, ConfigDict
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError, FailureError

from activities.decision_tags import DecisionTags
from activities.failures import FailureType
from activities.outcome import Outcome, TokenUsage
from policy import Lane, PolicyDecision
from workflows.job_span import ERROR_OUTCOMES, OUTCOME
from workflows.model_task_io import CancellationRecord, ModelTaskResult


class JobOutcome(BaseModel):
    """How a job ended, from its result or from its workflow's failure.

    ``completed`` and ``cancelled`` are successes (a cancellation is what someone asked for);
    ``incomplete`` (partial output), ``failed`` and ``denied`` are not. A denied job carries its policy
    decision; a failed one its error code and message; a cancelled one its cancellation record.

    The workflow's own :class:`~workflows.model_task_io.ModelTaskResult` is held whole in ``result``
    when there is one (it is required there: lane, rule and decision always exist once a job ran), and
    the fields every ending has are this model's own, so that none of the result's are loosened: a job
    denied, failed before its decision or cancelled by Temporal has no result, and says what it knows.
    """

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    status: Outcome
    lane: Lane | None = None
    rule: str | None = None
    decision: PolicyDecision | None = None
    response_id: str | None = None
    cancellation: CancellationRecord | None = None
    error_type: str | None = None
    """The failure's type (e.g. ``ProviderFailed``, ``PolicyDenied``) when the workflow failed."""
    error_code: str | None = None
    error_message: str | None = None
    query_error: str | None = None
    """Why a workflow-cancelled job's lane and record could not be read (the query needs a worker)."""
    result: ModelTaskResult | None = None
    """What the workflow returned (or its ``ProviderFailed`` failure carried): output, usage, polls."""

    @property
    def succeeded(self) -> bool:
        """True for ``completed`` and ``cancelled``."""
        return self.status in (Outcome.COMPLETED, Outcome.CANCELLED)

    @property
    def output_text(self) -> str:
        """The provider's output (partial for ``incomplete``), or ``""`` when the job produced none."""
        return self.result.output_text if self.result else ""

    @property
    def usage(self) -> TokenUsage | None:
        """Token counts of the job's response, when the provider reported them."""
        return self.result.usage if self.result else None

    @property
    def incomplete_reason(self) -> str | None:
        """Why the provider stopped early (``max_output_tokens``, ...), for an ``incomplete`` job."""
        return self.result.incomplete_reason if self.result else None

    @classmethod
    def from_result(
        cls, workflow_id: str, result: ModelTaskResult, *, error_type: str | None = None
    ) -> JobOutcome:
        """The outcome a workflow's :class:`ModelTaskResult` describes."""
        return cls(
            workflow_id=workflow_id,
            status=result.status,
            lane=result.lane,
            rule=result.rule,
            decision=result.decision,
            response_id=result.response_id,
            cancellation=result.cancellation,
            error_type=error_type,
            error_code=result.error_code,
            error_message=result.error_message,
            result=result,
        )

    @classmethod
    def from_failure(cls, workflow_id: str, failure: WorkflowFailureError) -> JobOutcome:
        """The outcome a workflow failure describes.

        ``PolicyDenied`` carries the decision in its first detail and ``ProviderFailed`` the job's result;
        a Temporal cancellation reads as ``cancelled`` (without its record: see :func:`wait_for_outcome`);
        anything else is ``failed`` with the failure's type and message.
        """
        if isinstance(failure.cause, CancelledError):
            return cls(workflow_id=workflow_id, status=Outcome.CANCELLED)
        cause: BaseException | None = failure.cause
        while cause is not None and not isinstance(cause, ApplicationError):
            cause = cause.cause if isinstance(cause, FailureError) else None
        if isinstance(cause, ApplicationError):
            details = cause.details
            if cause.type == FailureType.POLICY_DENIED and details:
                decision = PolicyDecision.model_validate(details[0])
                return cls(
                    workflow_id=workflow_id,
                    status=Outcome.DENIED,
                    lane=decision.lane,
                    rule=decision.rule,
                    decision=decision,
                    error_type=cause.type,
                    error_message=cause.message,
                )
            if cause.type == FailureType.PROVIDER_FAILED and details:
                result = ModelTaskResult.model_validate(details[0])
                outcome = cls.from_result(workflow_id, result, error_type=cause.type)
                if outcome.status != Outcome.FAILED or outcome.error_message is None:
                    message = outcome.error_message or cause.message
                    update = {"status": Outcome.FAILED, "error_message": message}
                    outcome = outcome.model_copy(update=update)
                return outcome
            return cls(
                workflow_id=workflow_id,
                status=Outcome.FAILED,
                error_type=cause.type,
                error_message=cause.message,
            )
        unknown = failure.cause or failure
        return cls(
            workflow_id=workflow_id,
            status=Outcome.FAILED,
            error_type=type(unknown).__name__,
            error_message=str(unknown),
        )


def record_job_outcome(span: Span, outcome: JobOutcome) -> None:
    """Put how the job ended on its root span: the worker's decision, ``lanes.outcome``, ERROR if failed."""
    if outcome.decision is not None:
        span.set_attributes(DecisionTags.of(outcome.decision).attributes())
    elif outcome.lane is not None:
        span.set_attribute("lanes.lane", str(outcome.lane))
    if outcome.rule:
        span.set_attribute("lanes.rule", outcome.rule)
    span.set_attribute(OUTCOME, outcome.status.value)
    if outcome.status in ERROR_OUTCOMES:
        span.set_status(Status(StatusCode.ERROR, f"lanes job {outcome.status}"))
