"""Where a job is, as a client reads it: the workflow's ``status`` query and the server's description.

Apart from :mod:`lanes.jobs` because :class:`lanes.errors.JobNotWatchableError` carries one, and the jobs
module raises those errors.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from policy import Lane
from workflows.model_task_io import CancellationRecord, Phase, StatusResult


class PendingActivity(BaseModel):
    """An activity the job is running or waiting to retry, as the server describes it."""

    model_config = ConfigDict(frozen=True)

    activity: str
    """Activity type, e.g. ``await_background_response``."""
    state: str
    """``scheduled``, ``started`` or ``cancel_requested``."""
    attempt: int
    last_failure: str | None = None
    """Message of the previous attempt's failure: why a job is stuck retrying, or (for a poll-mode
    check, ``last_failure_type == "ResponseNotDone"``) what the last poll saw and when the next is due."""
    last_failure_type: str | None = None
    """``ApplicationError.type`` of that failure, e.g. ``ProviderError`` or ``ResponseNotDone``."""
    progress: dict[str, Any] | None = None
    """The last heartbeat's progress (mode, provider status, cursor, polls, ...); never any text."""
    last_worker: str | None = None
    """Identity (``pid@host``) of the worker that ran the last attempt or sent the last heartbeat."""


class JobStatus(BaseModel):
    """Where a job is: its execution status, the workflow's ``status`` query, and pending activities.

    ``query`` is the workflow's own answer, whole, or ``None`` when it could not answer (no worker
    polls its queue: ``query_error`` says why); what the server knows is here either way.
    ``provider_status`` is the freshest known: the await activity's heartbeat when it has one, else the
    query's.
    """

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    execution_status: str
    """Temporal's: ``RUNNING``, ``COMPLETED``, ``FAILED``, ``CANCELED``, ``TERMINATED``, ..."""
    query: StatusResult | None = None
    query_error: str | None = None
    provider_status: str | None = None
    pending_activities: list[PendingActivity] = Field(default_factory=list)

    @property
    def phase(self) -> Phase | None:
        """The workflow's phase, or ``None`` when its status query went unanswered."""
        return self.query.phase if self.query else None

    @property
    def lane(self) -> Lane | None:
        """The decided lane, once the policy has been evaluated."""
        return self.query.lane if self.query else None

    @property
    def response_id(self) -> str | None:
        """The provider's response id, once the create was answered."""
        return self.query.response_id if self.query else None

    @property
    def cancellation(self) -> CancellationRecord | None:
        """Who cancelled the job, when and why, once someone did."""
        return self.query.cancellation if self.query else None
