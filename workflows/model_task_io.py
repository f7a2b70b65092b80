"""The model-task workflow's contract: input, result, signals, status query, their names, the memo keys.

These models live apart from the workflow so that the workflow's sandbox imports them once, passed
through, instead of building every pydantic class again for each job it runs; and so that code that
only starts, signals or reads jobs (the CLI, a client program) imports them without the activities and
the OpenAI SDK that the workflow needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio.exceptions import ApplicationError

from activities.failures import FailureType
from activities.outcome import Outcome, ProviderOutcome, TokenUsage, provider_status
from policy import Lane, PolicyDecision, ProviderEndpoint

MAX_INPUT_CHARS = 400_000
"""Hard ceiling on input text, whatever the policy says: four bytes a character stays under Temporal's
2 MiB payload limit. Policies set lower limits per job type."""

MAX_INSTRUCTIONS_CHARS = 64_000
"""Hard ceiling on instructions text."""

MAX_USER_METADATA = 12
"""OpenAI accepts 16 metadata pairs; lanes keeps 4 for its own ``lanes_*`` keys."""

Phase = Literal[
    "evaluating", "starting", "running", "cancelling", "completed", "denied", "cancelled", "failed"
]
"""Where a job is, as the ``status`` query reports it."""


class ExecutionOptions(BaseModel):
    """Operational knobs of one job, which do not change its lane."""

    model_config = ConfigDict(extra="ignore")

    heartbeat_timeout_s: float = Field(default=10.0, ge=0.2, le=300)
    """How soon a dead worker is noticed while a response is awaited."""

    stream_slot_wait_s: float = Field(default=30.0, ge=0.5, le=3600)
    """How long a stream-mode job waits for a free stream slot (``LANES_WORKER_MAX_CONCURRENT_STREAMS``
    across the workers) before it follows its response by polling instead."""

    stateless_task_queue: str | None = Field(default=None, min_length=1, max_length=200)
    """Task queue of the stateless activity (``LANES_STATELESS_TASK_QUEUE`` of the client that starts the
    job); ``None`` runs it on the workflow's own queue."""


class ModelTaskInput(BaseModel):
    """One model job, as a client submits it.

    Only ``job_type`` and ``input`` are required; every other field has a default so that older and newer
    clients and workers keep understanding each other.
    """

    model_config = ConfigDict(extra="ignore")

    job_type: str = Field(min_length=1, max_length=64)
    """A job type of the policy, e.g. ``public_research``: the unit the lane decision is attached to."""
    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    """The prompt. It goes to the provider and into history, never into spans, logs or search attributes."""
    data_class: str | None = Field(default=None, max_length=64)
    """Declared data class. It can raise the job type's floor, never lower it."""
    model: str | None = Field(default=None, max_length=128)
    """Model name; ``None`` takes the model of the lane's provider profile."""
    instructions: str | None = Field(default=None, max_length=MAX_INSTRUCTIONS_CHARS)
    max_output_tokens: int | None = Field(default=None, ge=16, le=128_000)
    metadata: dict[str, str] = Field(default_factory=dict)
    """Sent to the provider with the request (never the prompt's place: metadata is stored with it)."""
    approval: str | None = Field(default=None, max_length=128)
    """Security-review approval reference, for job types whose background lane requires one."""
    tenant: str | None = Field(default=None, max_length=64)
    """Tenant whose (stricter) policy overrides apply."""
    options: ExecutionOptions = Field(default_factory=ExecutionOptions)

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_USER_METADATA:
            raise ValueError(
                f"at most {MAX_USER_METADATA} metadata pairs (lanes adds its own); got {len(value)}"
            )
        for key, item in value.items():
            if key.startswith("lanes_"):
                raise ValueError(f"metadata key {key!r}: the lanes_ prefix is reserved for lanes' own keys")
            if not 1 <= len(key) <= 64:
                raise ValueError(f"metadata key {key[:70]!r}: keys must be 1 to 64 characters")
            if len(item) > 512:
                raise ValueError(f"metadata value of {key!r}: values must be at most 512 characters")
        return value


class CancelInput(BaseModel):
    """The ``cancel`` signal's argument: who asks and why, for the result's record."""

    model_config = ConfigDict(extra="ignore")

    reason: str = Field(default="", max_length=500)
    requested_by: str = Field(default="client", max_length=128)


class ProviderFinishedInput(BaseModel):
    """The ``provider_finished`` signal's argument: the terminal outcome of one of the job's responses.

    ``lanes webhooks`` sends it after a verified webhook named the response, with the outcome it read
    from the provider (never from the webhook, which carries only ids); the signal's payload is encrypted
    like every other.
    """

    model_config = ConfigDict(extra="ignore")

    response_id: str = Field(min_length=1, max_length=256)
    outcome: ProviderOutcome
    event_id: str | None = Field(default=None, max_length=256)
    """The webhook event's ``evt_…`` id, for the audit trail."""
    event_type: str | None = Field(default=None, max_length=64)
    """``response.completed``, ``response.failed``, ``response.cancelled`` or ``response.incomplete``."""


class CancellationRecord(BaseModel):
    """Who cancelled a job, when, why, in which phase, and whether it took effect at the provider."""

    model_config = ConfigDict(extra="ignore")

    via: Literal["signal", "workflow-cancel"]
    requested_by: str
    reason: str
    requested_at: datetime
    phase: str
    effective: bool = True
    """False when the provider had already finished: the completed result then stands."""
    unconfirmed_create: bool = False
    """True when the cancel stopped a create that had been tried but never answered (a lost reply or
    an unreachable provider): no further attempt was made, but an earlier one may have reached the
    provider, and a response it started would carry ``lanes_workflow_id`` metadata naming this job."""


class RerunRecord(BaseModel):
    """A generation the policy allowed to be replaced by a fresh one, and why."""

    model_config = ConfigDict(extra="ignore")

    cause: str
    """``rate_limit_exceeded``, ``server_error``, ``stuck_queued`` or ``result_expired``."""
    response_id: str | None
    """The replaced response (its id is kept for the audit trail; it was billed if it generated)."""
    at: datetime


class ModelTaskResult(BaseModel):
    """The outcome of a job that was allowed to run.

    A denied job fails with ``PolicyDenied`` instead, and a job the provider failed (``status ==
    "failed"``) fails with ``ProviderFailed`` carrying this result (:func:`provider_failed_result`).
    An ``incomplete`` job completes: its partial output is a result, and the status says it is partial.
    """

    model_config = ConfigDict(extra="ignore")

    status: Outcome
    """Never ``denied``: a denied job fails instead."""
    lane: Lane
    rule: str
    decision: PolicyDecision
    response_id: str | None = None
    output_text: str = ""
    incomplete_reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    usage: TokenUsage | None = None
    cancellation: CancellationRecord | None = None
    polls: int = 0
    """Polls of the response whose answer the workflow read. In webhook mode, safety-net polls that the
    webhook overtook (their check was cancelled while it waited for its next attempt) are not counted."""
    reconnects: int = 0
    provider_deleted: bool = False
    """True when the response was deleted at the provider right after its result was read (the policy's
    ``delete_after_harvest``), instead of being kept for the provider's retention window."""
    reruns: list[RerunRecord] = Field(default_factory=list)
    """Generations replaced under the policy's ``rerun_on``; empty for almost every job."""
    by_webhook: bool = False
    """True when a provider webhook (``provider_finished``) ended the wait for the response, instead of
    the await activity's stream or polls."""

    _not_denied = field_validator("status")(provider_status)


def provider_failed_result(failure: BaseException | None) -> ModelTaskResult | None:
    """The result carried by a ``ProviderFailed`` workflow failure, or ``None`` for any other failure.

    Args:
        failure: The cause of a ``WorkflowFailureError`` (what ``handle.result()`` raises).
    """
    if not isinstance(failure, ApplicationError) or failure.type != FailureType.PROVIDER_FAILED:
        return None
    if not failure.details:
        return None
    return ModelTaskResult.model_validate(failure.details[0])


class StatusResult(BaseModel):
    """The ``status`` query's answer: where the job is, without any text of it."""

    model_config = ConfigDict(extra="ignore")

    phase: Phase
    job_type: str
    lane: Lane | None = None
    rule: str | None = None
    data_class: str | None = None
    policy_version: str | None = None
    response_id: str | None = None
    provider_status: str | None = None
    cancellation: CancellationRecord | None = None
    reruns: int = 0
    endpoint: ProviderEndpoint | None = None
    """The provider endpoint the decision sends the job's calls to (name, host, port): ``lanes watch``
    reads the response's stream there, with the same key, never through Temporal."""
    stream: bool | None = None
    """Whether the lane's profile streams (a background response can only be followed live, and
    resumed, if it was created with ``stream=true``)."""


WORKFLOW_TYPE = "ModelTaskWorkflow"
"""The workflow's type name, for clients that start, signal and query jobs by name (and for visibility
queries): they then import these models, not the workflow, its activities and the OpenAI SDK.
``tests/workflows/test_model_task_io.py`` checks these names against the workflow's definition."""

STATUS_QUERY = "status"
"""Name of the query that answers a :class:`StatusResult`."""

CANCEL_SIGNAL = "cancel"
"""Name of the signal that takes a :class:`CancelInput`."""

PROVIDER_FINISHED_SIGNAL = "provider_finished"
"""Name of the signal that takes a :class:`ProviderFinishedInput`."""

OUTCOME_MEMO = "lanes_outcome"
"""Memo key of how the job ended (an :class:`~activities.outcome.Outcome` value), set when it ends."""

DECISION_MEMO = "lanes_decision"
"""Memo key of the decision's tags (:class:`~activities.decision_tags.DecisionTags`: no text)."""

TRACE_MEMO = "lanes_trace"
"""Memo key of a trace's ``trace_id`` and ``span_id``: the submitting client's span while the job runs,
the workflow's root span once it ends (:mod:`lanes.job_trace`)."""
