"""Every failure type lanes raises, in one enum that raisers, the workflow, the CLI and the tests share.

A failure's ``ApplicationError.type`` is how a workflow decides what to do next (fail, rerun, retry) and
how a client decides what to tell its user. Spelled as string literals in several modules, a rename
would silently turn a rerun or an exit code off; as members of one enum, it is a type error.
"""

from __future__ import annotations

from enum import StrEnum


class FailureType(StrEnum):
    """``ApplicationError.type`` values of lanes' failures."""

    POLICY_DENIED = "PolicyDenied"
    """The policy denies the job (non-retryable); the first detail is the decision."""
    UNKNOWN_JOB_TYPE = "UnknownJobType"
    """The job type is not in the policy (non-retryable)."""
    PROVIDER_ERROR = "ProviderError"
    """The provider refused or failed a request; retryable or not by its status (``activities/errors.py``)."""
    PROVIDER_FAILED = "ProviderFailed"
    """The provider ran the job and ended it ``failed``; the first detail is the job's result."""
    RESULT_EXPIRED = "ResultExpired"
    """The provider no longer has the response (retention window passed; non-retryable)."""
    STUCK_QUEUED = "StuckQueued"
    """The response stayed queued past the job type's limit and was cancelled (non-retryable)."""
    WORKER_SHUTDOWN = "WorkerShutdown"
    """The worker is shutting down; retryable, so another worker resumes at once."""
    NOT_YET = "ResponseNotDone"
    """A poll found the response still running: a benign, retryable failure whose ``next_retry_delay`` is
    the next poll interval (the retry policy paces the polls, and no history event is written per poll)."""
    ENDPOINT_NOT_CONFIGURED = "EndpointNotConfigured"
    """The decision names a provider endpoint the worker has no client for (non-retryable): the policy
    gained it after the worker started; restart the worker with its key."""
