"""Every error lanes raises on purpose, in one tree, so that callers catch by what they must do.

The message of each names the setting or field at fault and the fix, in one line: the CLI prints it after
the command's name and exits 2 (1 for a job that ended badly), the worker prints it and exits 1, and a
program catches the branch it can act on. Anything outside this tree is a bug and keeps its traceback.

Hierarchy::

    LanesError
    ├── ConfigurationError          fix the environment or a file, then run again
    │   ├── SettingsError           a LANES_* / TEMPORAL_* / OPENAI_* variable is malformed
    │   ├── KeyConfigError          encryption keys are malformed, ambiguous or in an unsafe file
    │   ├── UndecodablePayloadError a payload this client cannot decrypt (no key, another key)
    │   ├── PolicyConfigError       the policy file is invalid, or the worker refused it
    │   ├── ProviderNotConfiguredError   no key or base URL for a provider endpoint
    │   ├── TemporalConfigError     a Temporal profile or TEMPORAL_* value cannot be used
    │   ├── TemporalUnreachableError     nothing answers at the Temporal address
    │   ├── SearchAttributesMissingError the namespace lacks lanes' search attributes (`lanes setup`)
    │   ├── TelemetryConfigError    an OTEL_* variable asks for what lanes cannot provide
    │   ├── HealthFileError         LANES_WORKER_HEALTH_FILE cannot be written
    │   ├── SetupRefusedError       the server refused to register the search attributes
    │   ├── WatchEndpointError      this client cannot read the job's stream where its calls went
    │   └── WorkerConfigError       the lanes a worker should serve lack a queue
    ├── InvalidJobError             a submission is refused before anything starts; ``field`` names it
    │   ├── InvalidWorkflowIdError  the workflow id breaks the id rule
    │   └── JobIdInUseError         a job with this id exists
    ├── JobListError                a filter of a job listing is malformed
    ├── JobNotFoundError            no job has this id in the namespace
    ├── JobNotWatchableError        the job has no live output to follow
    └── JobError                    the job ended, and not as asked; ``outcome`` says how
        ├── JobFailedError          failed or incomplete: the provider's error, or partial output
        ├── JobDeniedError          the policy denied it; ``outcome.decision`` says by which rule
        └── JobCancelledError       someone cancelled it; ``outcome.cancellation`` says who and why

A job that ends badly is not an exception until a caller asks for its result as text
(:meth:`lanes.Job.result` returns the outcome; :meth:`lanes.Job.output` raises :class:`JobError`).
Errors that ``policy`` (pure, below lanes) raises are translated at lanes' edge: a malformed policy file
becomes :class:`PolicyConfigError` with the original as its ``__cause__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lanes.job_outcome import JobOutcome
    from lanes.job_status import JobStatus


class LanesError(Exception):
    """The root of every error lanes raises on purpose; its message is one line for a person."""


class ConfigurationError(LanesError):
    """The environment, a settings file, a key or the policy cannot be used as configured."""


class SettingsError(ConfigurationError):
    """A setting is malformed; the message names each environment variable and what is wrong with it.

    The values are left out: they may be secrets.
    """


class KeyConfigError(ConfigurationError):
    """The configured keys are malformed, ambiguous or in an unsafe file. The message says how to fix it."""


class UndecodablePayloadError(ConfigurationError):
    """A payload of a job is encrypted with a key this client does not have (or bound to another job).

    The job is fine; this client lacks the worker's key: the message names the key settings.
    """


class PolicyConfigError(ConfigurationError):
    """The policy file is invalid or was refused; ``lanes policy check FILE`` lists every problem."""


class ProviderNotConfiguredError(ConfigurationError):
    """A provider endpoint cannot be called as configured.

    Neither an OpenAI key nor a base URL for the default endpoint, or no key in the environment variable
    another endpoint names.
    """


class TemporalConfigError(ConfigurationError):
    """The Temporal client configuration (profile file, ``TEMPORAL_*`` variables) cannot be used."""


class TemporalUnreachableError(ConfigurationError):
    """Temporal did not answer at the configured address.

    Its message names the address and how to get a server, because "connection refused" alone does not
    tell a newcomer that ``lanes dev`` exists.
    """


class SearchAttributesMissingError(ConfigurationError):
    """The namespace lacks lanes' search attributes: a configuration error, fixed by ``lanes setup``."""


class TelemetryConfigError(ConfigurationError):
    """An ``OTEL_*`` variable asks for something lanes cannot provide."""


class HealthFileError(ConfigurationError):
    """``LANES_WORKER_HEALTH_FILE`` names a place the worker cannot write its heartbeat."""


class SetupRefusedError(ConfigurationError):
    """The server refused to register lanes' search attributes; ``commands`` do it by hand."""

    def __init__(self, message: str, *, commands: list[str]) -> None:
        super().__init__(message)
        self.commands = commands


class WatchEndpointError(ConfigurationError):
    """This client cannot read the job's stream where the job's calls went; the message says how to fix it."""


class WorkerConfigError(ConfigurationError):
    """The lanes a worker is asked to serve cannot be served as configured."""


class InvalidJobError(LanesError):
    """A submission was refused before anything started; ``field`` names the field at fault.

    Nothing was written to Temporal: fix the field and submit again.
    """

    def __init__(self, message: str, *, field: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(f"{field}: {message}" if problems is None else message)
        self.field = field
        self.problems = problems if problems is not None else [(field, message)]
        """Every ``(field, what is wrong)``; a front end names each field its own way (the CLI: flags)."""


class InvalidWorkflowIdError(InvalidJobError):
    """A workflow id breaks the id rule (``lanes.jobs.WORKFLOW_ID_RULE``); the message says where."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="workflow_id")


class JobIdInUseError(InvalidJobError):
    """A job with this workflow id exists (running, or finished and not to be replaced)."""

    def __init__(self, workflow_id: str, *, running: bool) -> None:
        self.workflow_id = workflow_id
        self.running = running
        state = "is still running" if running else "already exists"
        super().__init__(f"a job with workflow id {workflow_id!r} {state}", field="workflow_id")


class JobListError(LanesError):
    """A filter of a job listing is malformed; the message names the filter and the fix."""


class JobNotFoundError(LanesError):
    """No job has this workflow id in the client's namespace; the message names both and the fix."""

    def __init__(self, message: str, *, workflow_id: str) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id


class JobNotWatchableError(LanesError):
    """The job has no live output to follow at the provider; ``reason`` says why, ``status`` is where it is.

    Only a background job whose profile streams can be followed: its response was created with
    ``stream=true``, so the provider replays its events after a cursor. A poll-mode background response
    was not, a stateless call keeps nothing at the provider (``store=false``), a denied job made no call.
    """

    def __init__(self, workflow_id: str, reason: str, status: JobStatus) -> None:
        self.workflow_id = workflow_id
        self.reason = reason
        self.status = status
        super().__init__(f"job {workflow_id!r} cannot be watched: {reason}")


class JobError(LanesError):
    """The job ended, and not as asked: ``outcome`` is how (status, decision, error, cancellation)."""

    def __init__(self, message: str, *, outcome: JobOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class JobFailedError(JobError):
    """The job failed at the provider or in lanes, or ended ``incomplete`` with partial output."""


class JobDeniedError(JobError):
    """The policy denied the job: ``outcome.decision`` names the rule, policy version and reasons."""


class JobCancelledError(JobError):
    """The job was cancelled: ``outcome.cancellation`` records who, when, why and in which phase."""
