"""The client API: start lanes jobs from code, follow them, cancel them, read how they ended.

    import lanes

    async with await lanes.LanesClient.connect() as client:   # settings from the environment / lanes dev
        job = await client.submit("public_research", "Survey durable execution")
        await job.wait_for_phase("awaiting")                  # the provider is working on it
        await job.cancel(reason="not needed after all")
        outcome = await job.result()                          # lanes.JobOutcome: status "cancelled"

A :class:`LanesClient` is a Temporal client with lanes' converter, codec and plugins, plus what a job
needs besides: the policy (checked before a start, exactly as ``lanes submit`` checks), the lanes' task
queues from the settings, and the provider clients a live watch reads from (built on first use, closed
with the client). A :class:`Job` is a handle by workflow id; it holds no state of its own, so a program
may make one for any id (``client.job("lanes-...")``) and every method asks Temporal afresh.

Errors are those of :mod:`lanes.errors`: a refused submission raises :class:`~lanes.errors.InvalidJobError`
before anything starts, an unknown id :class:`~lanes.errors.JobNotFoundError`; :meth:`Job.result` returns
how the job ended whatever it was, and :meth:`Job.output` raises :class:`~lanes.errors.JobError` unless
it completed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from types import TracebackType
from typing import Self

from temporalio.client import Client

from activities.endpoint_clients import EndpointClients
from lanes.connect import connect, endpoint_clients
from lanes.errors import JobCancelledError, JobDeniedError, JobError, JobFailedError
from lanes.job_outcome import JobOutcome
from lanes.job_status import JobStatus
from lanes.job_trace import job_root_span
from lanes.jobs import (
    CancelReceipt,
    cancel_job,
    job_outcome,
    job_status,
    list_jobs,
    start_job,
    wait_for_outcome,
    wait_for_phase,
    watch_job,
)
from lanes.jobs import JobSummary as JobSummary
from lanes.settings import Settings, client_environ, load_settings
from lanes.submission import build_task, client_policy
from policy import CompiledPolicy
from workflows.model_task_io import Phase, StatusResult


class LanesClient:
    """Starts and reads lanes jobs; make one with :meth:`connect` and close it (``async with``).

    Args:
        temporal: A client connected with lanes' plugins (:func:`lanes.connect.connect`).
        settings: The settings it was connected with: task queues, policy, keys, provider endpoints.
    """

    def __init__(self, temporal: Client, settings: Settings) -> None:
        self.temporal = temporal
        self.settings = settings
        self._policy: CompiledPolicy | None = None
        self._endpoints: EndpointClients | None = None
        self._closing = contextlib.AsyncExitStack()

    @classmethod
    async def connect(cls, settings: Settings | None = None) -> LanesClient:
        """Connect to Temporal as the settings say.

        Without ``settings``, they are read like the CLI's: the environment (``TEMPORAL_*``, ``LANES_*``,
        ``OPENAI_*``, Temporal's own profiles), and a running ``lanes dev`` stack's for the rest.

        Raises:
            lanes.errors.ConfigurationError: A setting is malformed, the keys are unusable, or Temporal
                does not answer (the message names the address and how to get a server).
        """
        settings = settings if settings is not None else load_settings()
        return cls(await connect(settings), settings)

    @property
    def policy(self) -> CompiledPolicy:
        """The policy submissions are checked against (``LANES_POLICY`` or the shipped default).

        Raises:
            lanes.errors.PolicyConfigError: The file is invalid.
        """
        if self._policy is None:
            self._policy = client_policy(self.settings)
        return self._policy

    async def submit(
        self,
        job_type: str,
        input: str,
        *,
        data_class: str | None = None,
        model: str | None = None,
        instructions: str | None = None,
        max_output_tokens: int | None = None,
        metadata: dict[str, str] | None = None,
        approval: str | None = None,
        tenant: str | None = None,
        workflow_id: str | None = None,
        new_run: bool = False,
    ) -> Job:
        """Check a job as ``lanes submit`` does, then start it; the job runs on whatever lane it is allowed.

        Args:
            job_type: A job type of the policy.
            input: The prompt.
            data_class: The data's class; the job type's default when ``None``.
            model: The model; the lane profile's when ``None``.
            instructions: System instructions.
            max_output_tokens: 16 to 128000.
            metadata: Provider metadata (keys must not start with ``lanes_``).
            approval: A security-review approval reference, for classes that need one.
            tenant: The tenant whose policy overrides apply.
            workflow_id: The job's id; ``lanes-<job type>-<random>`` when ``None``.
            new_run: Start a new run under the id of a job that has ended.

        Raises:
            lanes.errors.InvalidJobError: A field is invalid, or the policy would deny the job for a
                reason the caller can fix; nothing was started.
            lanes.errors.JobIdInUseError: ``workflow_id`` is taken (and ``new_run`` is false, or the
                job still runs).
            lanes.errors.PolicyConfigError: The policy file is invalid.
        """
        task, decision = build_task(
            self.settings,
            self.policy,
            job_type=job_type,
            input=input,
            data_class=data_class,
            model=model,
            instructions=instructions,
            max_output_tokens=max_output_tokens,
            metadata=metadata,
            approval=approval,
            tenant=tenant,
        )
        job_id = workflow_id if workflow_id is not None else f"lanes-{job_type}-{uuid.uuid4().hex[:12]}"
        with job_root_span("lanes submit", workflow_id=job_id, task=task, decision=decision):
            await start_job(
                self.temporal, task, workflow_id=job_id, task_queue=self.settings.task_queue, new_run=new_run
            )
        return Job(self, job_id)

    def job(self, workflow_id: str) -> Job:
        """A handle on the job with this id; nothing is asked until a method is called."""
        return Job(self, workflow_id)

    async def status(self, workflow_id: str) -> JobStatus:
        """Where the job is (``lanes status``); see :meth:`Job.status`."""
        return await job_status(self.temporal, workflow_id)

    async def cancel(
        self, workflow_id: str, *, reason: str = "", requested_by: str = "client"
    ) -> CancelReceipt:
        """Ask the job to stop (``lanes cancel``); see :meth:`Job.cancel`."""
        return await cancel_job(self.temporal, workflow_id, reason=reason, requested_by=requested_by)

    async def result(
        self, workflow_id: str, *, wait: bool = True, timeout_s: float | None = None
    ) -> JobOutcome | None:
        """How the job ended (``lanes result``); see :meth:`Job.result`."""
        if not wait:
            return await job_outcome(self.temporal, workflow_id)
        return await wait_for_outcome(self.temporal, workflow_id, timeout_s=timeout_s)

    async def watch(self, workflow_id: str) -> AsyncIterator[str | JobOutcome]:
        """Follow the job's text live (``lanes watch``); see :meth:`Job.watch`."""
        if self._endpoints is None:
            self._endpoints = await self._closing.enter_async_context(
                endpoint_clients(self.settings, self.policy, environ=client_environ())
            )
        async for item in watch_job(self.temporal, workflow_id, self._endpoints):
            yield item

    async def list(
        self,
        *,
        lane: str | None = None,
        job_type: str | None = None,
        outcome: str | None = None,
        since: timedelta | None = None,
        limit: int = 100,
    ) -> list[JobSummary]:
        """Jobs with their decision and outcome, newest first, from one visibility query (``lanes list``).

        Raises:
            lanes.errors.JobListError: A filter is malformed.
        """
        return await list_jobs(
            self.temporal, lane=lane, job_type=job_type, outcome=outcome, since=since, limit=limit
        )

    async def aclose(self) -> None:
        """Close the provider clients a watch opened. The Temporal connection closes with the process."""
        await self._closing.aclose()
        self._endpoints = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Job:
    """One job, by workflow id. Every method asks Temporal (or, for :meth:`watch`, the provider) afresh."""

    def __init__(self, client: LanesClient, workflow_id: str) -> None:
        self.client = client
        self.id = workflow_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    async def status(self) -> JobStatus:
        """Where the job is: phase, lane, rule, provider status, pending activities.

        Raises:
            lanes.errors.JobNotFoundError: No job has this id.
            lanes.errors.UndecodablePayloadError: Its payloads are encrypted with a key this client lacks.
        """
        return await self.client.status(self.id)

    async def wait_for_phase(self, phase: Phase, *, timeout_s: float = 60) -> StatusResult:
        """Wait until the job reports ``phase`` (e.g. ``awaiting``: the provider is working on it).

        The job's own account of where it is, asked every 0.1 s: a program that cancels mid-job waits for
        this instead of sleeping and hoping.

        Raises:
            TimeoutError: The phase was not reached within ``timeout_s``.
        """
        handle = self.client.temporal.get_workflow_handle(self.id)
        return await wait_for_phase(handle, phase, timeout_s=timeout_s)

    async def cancel(self, *, reason: str = "", requested_by: str = "client") -> CancelReceipt:
        """Ask the job to stop; its result records who, when, why and in which phase.

        A job that has ended is left alone (``requested`` is false): its result stands.
        """
        return await self.client.cancel(self.id, reason=reason, requested_by=requested_by)

    async def result(self, *, wait: bool = True, timeout_s: float | None = None) -> JobOutcome | None:
        """How the job ended (completed, incomplete, denied, failed or cancelled); never raises for it.

        Args:
            wait: Wait for a running job to end; with ``False`` a running job gives ``None``.
            timeout_s: How long to wait.

        Raises:
            TimeoutError: It did not end within ``timeout_s``.
        """
        return await self.client.result(self.id, wait=wait, timeout_s=timeout_s)

    async def output(self, *, timeout_s: float | None = None) -> str:
        """The job's output text once it completes.

        Raises:
            lanes.errors.JobDeniedError: The policy denied it (``outcome.decision`` says by which rule).
            lanes.errors.JobCancelledError: It was cancelled (``outcome.cancellation`` says by whom).
            lanes.errors.JobFailedError: It failed, or ended incomplete (the partial text is in
                ``outcome.output_text``).
        """
        outcome = await self.result(timeout_s=timeout_s)
        assert outcome is not None  # waited
        if outcome.status == "completed":
            return outcome.output_text or ""
        raise _job_error(outcome)

    async def watch(self) -> AsyncIterator[str | JobOutcome]:
        """The job's text as the provider streams it, then its :class:`~lanes.JobOutcome`.

        Raises:
            lanes.errors.JobNotWatchableError: The job is stateless, denied or a poll-mode job.
            lanes.errors.WatchEndpointError: This client cannot reach the job's provider endpoint.
        """
        async for item in self.client.watch(self.id):
            yield item


def _job_error(outcome: JobOutcome) -> JobError:
    if outcome.status == "denied":
        rule = outcome.rule or "-"
        return JobDeniedError(f"job {outcome.workflow_id!r} was denied by rule {rule}", outcome=outcome)
    if outcome.status == "cancelled":
        return JobCancelledError(f"job {outcome.workflow_id!r} was cancelled", outcome=outcome)
    # The provider's message stays in ``outcome.error_message``: an exception's text ends up in logs, and
    # a provider may quote the request in it. The code names what went wrong.
    detail = outcome.error_code or outcome.error_type or outcome.incomplete_reason or outcome.status
    return JobFailedError(f"job {outcome.workflow_id!r} {outcome.status}: {detail}", outcome=outcome)
