"""Where a job is, as a client reads it: the workflow's ``status`` query and the server's description.

Apart from :mod:`lanes.jobs` because :class:`lanes.errors.JobNotWatchableError` carries one, and the jobs
module raises those errors.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from workflows.model_task_io import Phase, StatusResult


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


class JobStatus(StatusResult):
    """Where a job is: its execution status, the workflow's ``status`` query, and pending activities.

    The query's fields are inherited from :class:`~workflows.model_task.StatusResult`; they are ``None``
    when the query could not be answered (no worker), and ``query_error`` then says why.
    ``provider_status`` is the freshest known: the await activity's heartbeat when it has one.
    """

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    execution_status: str
    phase: Phase | None = None  # type: ignore[assignment]
    job_type: str | None = None  # type: ignore[assignment]
    pending_activities: list[PendingActivity] = Field(default_factory=list)
    query_error: str | None = None
