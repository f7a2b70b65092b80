"""Client-side entry points for jobs: start, cancel, read the state of and wait for a job.

The CLI, the demo and user code share these typed entry points; the CLI only parses and renders.

    handle = await start_job(client, task, workflow_id="lanes-42", task_queue="lanes")
    status = await job_status(client, "lanes-42")       # JobStatus: phase, lane, live progress
    await cancel_job(client, "lanes-42", reason="not needed")
    outcome = await wait_for_outcome(client, "lanes-42")  # JobOutcome: completed, denied, failed, ...
    async for item in watch_job(client, "lanes-42", clients):  # text deltas live, then the JobOutcome
        ...
    jobs = await list_jobs(client, lane="background", since=timedelta(days=7))  # one visibility query

A client that wants to act at a point of a job's life (cancel it once it runs, show progress once the
provider has an id) waits on the workflow's own account of its phase instead of sleeping and hoping.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx2
from pydantic import BaseModel, ConfigDict
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import (
    WorkflowAlreadyStartedError,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.endpoint_clients import EndpointClient, UnknownEndpointError
from activities.outcome import Outcome
from lanes.errors import (
    InvalidWorkflowIdError,
    JobIdInUseError,
    JobListError,
    JobNotFoundError,
    JobNotWatchableError,
    UndecodablePayloadError,
    WatchEndpointError,
)
from lanes.job_outcome import JobOutcome
from lanes.job_status import JobStatus, PendingActivity
from lanes.job_trace import cancel_span, current_trace_memo, job_trace_link
from policy import DEFAULT_ENDPOINT, Lane
from workflows import search_attributes
from workflows.model_task_io import (
    CANCEL_SIGNAL,
    DECISION_MEMO,
    STATUS_QUERY,
    TRACE_MEMO,
    WORKFLOW_TYPE,
    CancelInput,
    ModelTaskInput,
    ModelTaskResult,
    Phase,
    StatusResult,
)

QUERY_TIMEOUT = timedelta(seconds=5)
"""How long a ``status`` query may take; a query needs a running worker."""

MAX_WORKFLOW_ID_CHARS = 200
"""Longest workflow id lanes accepts: it travels in the provider's metadata (64-character keys, 512-
character values) and in every ``Idempotency-Key``, and is typed by people."""

WORKFLOW_ID_RULE = (
    f"1 to {MAX_WORKFLOW_ID_CHARS} printable ASCII characters with no spaces "
    "(letters, digits and punctuation such as - _ . : / @)"
)
"""The rule :func:`check_workflow_id` enforces, as error messages state it."""


POLL_INTERVAL_S = 0.1
"""How often the status query is asked; a query is cheap and adds nothing to history."""


async def wait_for_status(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[StatusResult], bool], *, timeout_s: float = 60
) -> StatusResult:
    """Query a job's status until ``predicate`` holds.

    Args:
        handle: The job's workflow handle.
        predicate: What to wait for.
        timeout_s: How long to wait.

    Returns:
        The first status for which ``predicate`` holds.

    Raises:
        TimeoutError: It did not hold within ``timeout_s``.
    """
    async with asyncio.timeout(timeout_s):
        while True:
            status: StatusResult = await handle.query(STATUS_QUERY, result_type=StatusResult)
            if predicate(status):
                return status
            await asyncio.sleep(POLL_INTERVAL_S)


async def wait_for_phase(
    handle: WorkflowHandle[Any, Any], phase: Phase, *, timeout_s: float = 60
) -> StatusResult:
    """Wait until the job reports ``phase``; see :func:`wait_for_status`."""
    return await wait_for_status(handle, lambda status: status.phase == phase, timeout_s=timeout_s)


def check_workflow_id(workflow_id: str) -> str:
    """Return ``workflow_id`` if it follows :data:`WORKFLOW_ID_RULE`.

    Checked before anything starts: a newline in an id otherwise surfaces minutes later as a provider
    error, because the id travels in HTTP headers and provider metadata.

    Raises:
        InvalidWorkflowIdError: Naming the first offending character and its position.
    """
    if not 1 <= len(workflow_id) <= MAX_WORKFLOW_ID_CHARS:
        raise InvalidWorkflowIdError(f"must be {WORKFLOW_ID_RULE}; got {len(workflow_id)} characters")
    for position, char in enumerate(workflow_id):
        if not "!" <= char <= "~":
            raise InvalidWorkflowIdError(f"must be {WORKFLOW_ID_RULE}; got {char!r} at position {position}")
    return workflow_id


def workflow_summary(task: ModelTaskInput) -> str:
    """The job as the Temporal UI's workflow list shows it: job type, declared class and tenant, no text.

    The lane is the workflow's to decide: its current details say which lane, rule and policy version.
    """
    parts = [f"lanes {task.job_type}"]
    if task.data_class:
        parts.append(f"data class {task.data_class}")
    if task.tenant:
        parts.append(f"tenant {task.tenant}")
    return ", ".join(parts)


async def start_job(
    client: Client, task: ModelTaskInput, *, workflow_id: str, task_queue: str, new_run: bool = False
) -> WorkflowHandle[Any, ModelTaskResult]:
    """Start a job under ``workflow_id``, refusing an id that is already in use.

    Temporal's default would start a new run under the id of a finished job, and a reader of that id
    would then see the new job where they expected the old one. A new run under a used id is therefore
    opt-in (``new_run``); a running job's id is never reused.

    Raises:
        InvalidWorkflowIdError: The id breaks :data:`WORKFLOW_ID_RULE`.
        JobIdInUseError: The id is in use (and ``new_run`` is false, or the job still runs).
    """
    check_workflow_id(workflow_id)
    policy = WorkflowIDReusePolicy.ALLOW_DUPLICATE if new_run else WorkflowIDReusePolicy.REJECT_DUPLICATE
    try:
        return await client.start_workflow(
            WORKFLOW_TYPE,
            task,
            result_type=ModelTaskResult,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=policy,
            # The trace the job starts in (when the caller traces), so that a cancel can link to it
            # while the job runs; the workflow replaces it with its root span's when it ends.
            memo=current_trace_memo() or None,
            static_summary=workflow_summary(task),
        )
    except WorkflowAlreadyStartedError:
        running = new_run
        if not new_run:
            description = await client.get_workflow_handle(workflow_id).describe()
            running = description.close_time is None
        raise JobIdInUseError(workflow_id, running=running) from None


async def _existing(client: Client, workflow_id: str) -> WorkflowHandle[Any, ModelTaskResult]:
    handle = client.get_workflow_handle(workflow_id, result_type=ModelTaskResult)
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise JobNotFoundError(
                f"no job with workflow id {workflow_id!r} in namespace {client.namespace!r} at "
                f"{client.service_client.config.target_host}; use the id that `lanes submit` printed",
                workflow_id=workflow_id,
            ) from None
        raise
    return handle


async def _pending_activity(client: Client, raw: PendingActivityInfo) -> PendingActivity:
    """A pending activity as the server describes it, its payloads decoded through the client's codec.

    Heartbeat details and failures are stored encrypted when keys are configured: they go through the
    data converter's codec (and its failure converter, which keeps messages in encoded attributes).
    """
    progress: dict[str, Any] | None = None
    if raw.HasField("heartbeat_details"):
        details = await client.data_converter.decode(raw.heartbeat_details.payloads)
        if details and isinstance(details[0], dict):
            progress = details[0]
    last_failure: str | None = None
    last_failure_type: str | None = None
    if raw.HasField("last_failure"):
        error = await client.data_converter.decode_failure(raw.last_failure)
        last_failure = getattr(error, "message", None) or str(error)
        last_failure_type = getattr(error, "type", None)
    state = PendingActivityState.Name(raw.state).removeprefix("PENDING_ACTIVITY_STATE_").lower()
    return PendingActivity(
        activity=raw.activity_type.name,
        state=state,
        attempt=raw.attempt,
        last_failure=last_failure,
        last_failure_type=last_failure_type,
        progress=progress,
        last_worker=raw.last_worker_identity or None,
    )


async def job_status(client: Client, workflow_id: str) -> JobStatus:
    """Read a job's state (what ``lanes status`` shows); costs the workflow no history.

    Raises:
        JobNotFoundError: No job has this id.
    """
    handle = await _existing(client, workflow_id)
    description = await handle.describe()
    fields: dict[str, Any] = {
        "workflow_id": workflow_id,
        "execution_status": description.status.name if description.status else "UNKNOWN",
    }
    try:
        query = await handle.query(STATUS_QUERY, result_type=StatusResult, rpc_timeout=QUERY_TIMEOUT)
        fields["query"] = StatusResult.model_validate(query)
        fields["provider_status"] = fields["query"].provider_status
    except UndecodablePayloadError:
        raise  # this client lacks the key: the answer exists, a query without a worker would not help
    except Exception as exc:  # a query needs a worker; without one, the description still tells a lot
        fields["query_error"] = f"{type(exc).__name__}: {exc}"
    pending = [await _pending_activity(client, raw) for raw in description.raw_description.pending_activities]
    for activity in pending:
        heartbeat_status = (activity.progress or {}).get("provider_status")
        if activity.activity == "await_background_response" and isinstance(heartbeat_status, str):
            fields["provider_status"] = heartbeat_status
    return JobStatus(**fields, pending_activities=pending)


class CancelReceipt(BaseModel):
    """What :func:`cancel_job` did."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    requested: bool
    """False when the job had already ended: nothing to cancel, its result stands."""
    execution_status: str
    via: Literal["signal", "workflow-cancel"]


async def cancel_job(
    client: Client,
    workflow_id: str,
    *,
    reason: str = "",
    requested_by: str = "client",
    workflow_cancel: bool = False,
) -> CancelReceipt:
    """Ask a running job to stop: the ``cancel`` signal, or Temporal's workflow cancellation.

    A signal ends the job with a ``cancelled`` result recording who and why; a workflow cancellation
    (``workflow_cancel``) ends it CANCELED after the same cleanup at the provider.

    The request is traced as a ``lanes cancel`` span of its own trace, linked to the job's trace (from
    the memo: see ``lanes/job_trace.py``), with the signal's spans as its children.

    Raises:
        JobNotFoundError: No job has this id.
    """
    handle = await _existing(client, workflow_id)
    description = await handle.describe()
    status = description.status.name if description.status else "UNKNOWN"
    via: Literal["signal", "workflow-cancel"] = "workflow-cancel" if workflow_cancel else "signal"
    try:
        link = job_trace_link(await description.memo())
    except Exception:  # a memo this client cannot decode (another key) must not stop a cancel
        link = None
    with cancel_span(workflow_id, link=link, via=via) as span:
        requested = description.status == WorkflowExecutionStatus.RUNNING
        span.set_attribute("lanes.cancel.requested", requested)
        if not requested:
            return CancelReceipt(workflow_id=workflow_id, requested=False, execution_status=status, via=via)
        if workflow_cancel:
            await handle.cancel(reason=reason)
        else:
            await handle.signal(CANCEL_SIGNAL, CancelInput(reason=reason, requested_by=requested_by))
    return CancelReceipt(workflow_id=workflow_id, requested=True, execution_status=status, via=via)


async def _outcome(handle: WorkflowHandle[Any, ModelTaskResult]) -> JobOutcome:
    try:
        result = await handle.result()
    except WorkflowFailureError as failure:
        outcome = JobOutcome.from_failure(handle.id, failure)
        if outcome.status != Outcome.CANCELLED:
            return outcome
        # A Temporal cancellation has no result: the status query tells who cancelled, why and where.
        try:
            status = await handle.query(STATUS_QUERY, result_type=StatusResult, rpc_timeout=QUERY_TIMEOUT)
        except Exception as exc:  # a query needs a worker; the cancellation itself is certain
            return outcome.model_copy(update={"query_error": f"{type(exc).__name__}: {exc}"})
        # Attributes, not model_dump(): model_copy does not validate, and a dumped record stays a dict.
        update = {name: getattr(status, name) for name in ("lane", "rule", "response_id", "cancellation")}
        return outcome.model_copy(update=update)
    return JobOutcome.from_result(handle.id, result)


async def job_outcome(client: Client, workflow_id: str) -> JobOutcome | None:
    """How a job ended, or ``None`` while it still runs.

    Raises:
        JobNotFoundError: No job has this id.
    """
    handle = await _existing(client, workflow_id)
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        return None
    return await _outcome(handle)


async def wait_for_outcome(client: Client, workflow_id: str, *, timeout_s: float | None = None) -> JobOutcome:
    """Wait for a job to end and return how it ended.

    Raises:
        JobNotFoundError: No job has this id.
        TimeoutError: It did not end within ``timeout_s``.
    """
    handle = await _existing(client, workflow_id)
    async with asyncio.timeout(timeout_s):
        return await _outcome(handle)


# --- following a job's output live ---------------------------------------------------------------------

WATCH_STREAM_TIMEOUT = httpx2.Timeout(None, connect=10.0, write=30.0, pool=30.0)
"""No read timeout while following a stream: a reasoning model may be silent for minutes."""

MAX_WATCH_RETRIES = 20
"""Connections in a row that may fail without delivering an event before the watcher stops following
the stream and only waits for the outcome; any event delivered resets the count."""


def _not_watchable_reason(lane: Lane | None, stream: bool | None) -> str | None:
    if lane is Lane.DENIED:
        return "it was denied by the policy, so no model call was made"
    if lane is Lane.STATELESS:
        return (
            "it runs on the stateless lane: one synchronous store=false call, so the provider keeps "
            "nothing to follow or resume"
        )
    if lane is Lane.BACKGROUND and stream is False:
        return (
            "its background response runs in poll mode (its profile has stream = false), and the "
            "provider only replays the events of a response created with stream=true"
        )
    return None


def _endpoint_for(status: StatusResult, endpoints: Mapping[str, EndpointClient]) -> EndpointClient:
    """This client's client for the endpoint the job used, checked to connect where the job's did."""
    recorded = status.endpoint
    name = recorded.name if recorded is not None else DEFAULT_ENDPOINT
    endpoint = endpoints.get(name)
    if endpoint is None:
        raise WatchEndpointError(str(UnknownEndpointError(name, endpoints)))
    moved = recorded is not None and (recorded.host, recorded.port) != (endpoint.host, endpoint.port)
    if recorded is not None and recorded.host is not None and moved:
        raise WatchEndpointError(
            f"the job's calls went to endpoint {name!r} at {recorded.host}:{recorded.port}, but this "
            f"client's endpoint {name!r} is at {endpoint.host}:{endpoint.port}; run with the "
            "worker's settings (OPENAI_BASE_URL, LANES_POLICY) so the same endpoint is read"
        )
    return endpoint


async def watch_job(
    client: Client,
    workflow_id: str,
    endpoints: Mapping[str, EndpointClient],
    *,
    reconnect_delay_s: float = 0.1,
) -> AsyncIterator[str | JobOutcome]:
    """Follow a running stream-mode background job's output live; yield text deltas, then the outcome.

    The response id and endpoint come from the job's ``status`` query, and the text from the provider:
    ``responses.retrieve(id, stream=True, starting_after=cursor)`` with the client of the endpoint the
    job's decision names (same base URL, same key). Nothing is read from Temporal history. The stream is
    replayed from its start, so a watcher that connects late (or reconnects a UI) sees the whole text.
    When the connection drops, it resumes after the last event's cursor; when the provider refuses to
    stream the response again or it ends without a terminal event (cancelled), it stops following and
    waits for the job. An ended job yields its outcome at once.

    Args:
        client: A Temporal client (``lanes.connect.connect``).
        workflow_id: The job.
        endpoints: This process's provider clients by endpoint name (``lanes.connect.endpoint_clients``).
        reconnect_delay_s: First pause before resuming a dropped stream (grows to 2 s while failing).

    Yields:
        Each ``response.output_text.delta``'s text, in order, then the job's :class:`JobOutcome`.

    Raises:
        JobNotFoundError: No job has this id.
        JobNotWatchableError: The job is stateless, denied or a poll-mode background job.
        WatchEndpointError: This client has no client for the job's endpoint, or it connects elsewhere.
    """
    handle = await _existing(client, workflow_id)
    while True:
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            outcome = await _outcome(handle)
            reason = _not_watchable_reason(
                outcome.lane,
                outcome.decision.profile.stream if outcome.decision and outcome.decision.profile else None,
            )
            if reason is not None:
                raise JobNotWatchableError(workflow_id, reason, await job_status(client, workflow_id))
            yield outcome
            return
        status = StatusResult.model_validate(
            await handle.query(STATUS_QUERY, result_type=StatusResult, rpc_timeout=QUERY_TIMEOUT)
        )
        reason = _not_watchable_reason(status.lane, status.stream)
        if reason is not None:
            raise JobNotWatchableError(workflow_id, reason, await job_status(client, workflow_id))
        if status.lane is Lane.BACKGROUND and status.response_id is not None:
            break
        await asyncio.sleep(POLL_INTERVAL_S)  # deciding or creating: the provider has no id yet
    # The SDK is imported here, where the provider is called: other commands never load it.
    import openai
    from openai.types.responses import (
        ResponseCompletedEvent,
        ResponseFailedEvent,
        ResponseIncompleteEvent,
        ResponseTextDeltaEvent,
    )

    api = _endpoint_for(status, endpoints).api
    response_id = status.response_id
    cursor: int | None = None
    failures = 0
    while True:
        delivered = False
        try:
            stream = await api.responses.retrieve(
                response_id,
                stream=True,
                starting_after=cursor if cursor is not None else openai.omit,
                timeout=WATCH_STREAM_TIMEOUT,
            )
            async with stream:
                async for event in stream:
                    cursor, delivered = event.sequence_number, True
                    if isinstance(event, ResponseTextDeltaEvent):
                        yield event.delta
                    elif isinstance(
                        event, ResponseCompletedEvent | ResponseFailedEvent | ResponseIncompleteEvent
                    ):
                        break
            break  # a terminal event, or the stream ended without one (a cancelled response)
        except (openai.BadRequestError, openai.NotFoundError):
            break  # no longer replayable (or gone): the job's outcome still tells how it ended
        except openai.APIError:
            # A dropped connection, an error event mid-stream, or a transient refusal: resume after
            # the cursor, so no delta is shown twice or lost.
            failures = 0 if delivered else failures + 1
            if failures > MAX_WATCH_RETRIES:
                break
            await asyncio.sleep(min(reconnect_delay_s * max(failures, 1), 2.0))
    yield await _outcome(handle)


_SINCE = re.compile(r"(\d+)\s*(m|h|d|w)")
_SINCE_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_KEYWORD_VALUE = re.compile(r"[A-Za-z0-9_.:@/-]{1,200}")
"""Characters a filter value may have: policy names and ids, never a quote that would end the string."""


def parse_since(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d`` or ``2w`` as a duration.

    Raises:
        JobListError: Anything else.
    """
    match = _SINCE.fullmatch(text.strip().lower())
    if not match or int(match[1]) == 0:
        raise JobListError(f"since: {text!r} is not a duration; use a number and a unit: 30m, 24h, 7d or 2w")
    return timedelta(**{_SINCE_UNITS[match[2]]: int(match[1])})


def jobs_query(
    *,
    lane: str | None = None,
    job_type: str | None = None,
    outcome: str | None = None,
    started_after: datetime | None = None,
) -> str:
    """The visibility query of :func:`list_jobs`: lanes' search attributes, ``AND``-ed.

    Raises:
        JobListError: An unknown lane or outcome, or a job type with characters a policy name never has.
    """
    clauses = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    if lane is not None:
        if lane not in {str(known) for known in Lane}:
            raise JobListError(f"lane: unknown lane {lane!r}; choose {', '.join(str(k) for k in Lane)}")
        clauses.append(f"{search_attributes.LANE.name} = '{lane}'")
    if job_type is not None:
        if not _KEYWORD_VALUE.fullmatch(job_type):
            raise JobListError(f"job type: {job_type!r} is not a job type name (letters, digits, _ . : - /)")
        clauses.append(f"{search_attributes.JOB_TYPE.name} = '{job_type}'")
    if outcome is not None:
        if outcome not in set(Outcome):
            raise JobListError(f"outcome: unknown outcome {outcome!r}; choose {', '.join(Outcome)}")
        clauses.append(f"{search_attributes.OUTCOME.name} = '{outcome}'")
    if started_after is not None:
        instant = started_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        clauses.append(f"StartTime >= '{instant}'")
    return " AND ".join(clauses)


class JobSummary(BaseModel):
    """One job as visibility knows it: when it started, its decision and outcome, without its history.

    The decision comes from the search attributes the workflow upserts once the policy decided (so a
    running job has it too); ``policy_version`` from the memo, written when the job ends. ``None`` where
    the job has not got that far (or ran before the attribute existed).
    """

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    run_id: str
    start_time: datetime
    close_time: datetime | None = None
    execution_status: str
    lane: str | None = None
    rule: str | None = None
    job_type: str | None = None
    data_class: str | None = None
    policy_digest: str | None = None
    policy_version: str | None = None
    outcome: str | None = None
    """``LanesOutcome``; ``None`` while the job runs."""
    trace_id: str | None = None
    """The job's trace (from the memo), to open it in a trace backend."""


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


async def _summary(execution: WorkflowExecution) -> JobSummary:
    attrs = execution.typed_search_attributes
    try:
        memo = await execution.memo()
    except Exception:  # a memo this client cannot decode (another key): the search attributes still tell
        memo = {}
    decision = _mapping(memo.get(DECISION_MEMO))
    job_trace = _mapping(memo.get(TRACE_MEMO))
    return JobSummary(
        workflow_id=execution.id,
        run_id=execution.run_id,
        start_time=execution.start_time,
        close_time=execution.close_time,
        execution_status=execution.status.name if execution.status else "UNKNOWN",
        lane=attrs.get(search_attributes.LANE),
        rule=attrs.get(search_attributes.RULE),
        job_type=attrs.get(search_attributes.JOB_TYPE),
        data_class=attrs.get(search_attributes.DATA_CLASS),
        policy_digest=attrs.get(search_attributes.POLICY_DIGEST),
        policy_version=decision.get("policy_version"),
        outcome=attrs.get(search_attributes.OUTCOME),
        trace_id=job_trace.get("trace_id"),
    )


async def list_jobs(
    client: Client,
    *,
    lane: str | None = None,
    job_type: str | None = None,
    outcome: str | None = None,
    since: timedelta | None = None,
    limit: int = 100,
) -> list[JobSummary]:
    """Jobs matching the filters, newest first, from one visibility query (no history is read).

    "Which jobs used stored provider state this week, and why?" is
    ``list_jobs(client, lane="background", since=timedelta(days=7))``: each summary names the rule and
    the policy that decided. Visibility is eventually consistent: a job started a moment ago, or its
    outcome, may appear a little later.

    Args:
        client: A connected client.
        lane: Only jobs the policy sent to this lane.
        job_type: Only jobs of this job type.
        outcome: Only jobs that ended so (``completed``, ``incomplete``, ``denied``, ``failed``,
            ``cancelled``).
        since: Only jobs started within this duration before now.
        limit: At most this many jobs.

    Raises:
        JobListError: A filter is malformed.
    """
    if limit < 1:
        raise JobListError(f"limit: {limit} is not a positive number of jobs")
    started_after = datetime.now(UTC) - since if since is not None else None
    query = jobs_query(lane=lane, job_type=job_type, outcome=outcome, started_after=started_after)
    return [await _summary(execution) async for execution in client.list_workflows(query, limit=limit)]
