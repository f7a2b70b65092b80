"""Activities that call the OpenAI Responses API, one per step of a lane.

:class:`ResponsesActivities` owns the ``AsyncOpenAI`` clients, one per provider endpoint (built with
``max_retries=0`` in ``lanes/connect.py``: Temporal owns retries); each activity calls through the
endpoint its decision names (``DecisionTags.endpoint``). Its activities:

* :meth:`~ResponsesActivities.start_background_response` creates a background response with
  ``background=True, store=True`` both explicit and an ``Idempotency-Key`` stable across retries, and
  returns its id, so that the id is in workflow history before any waiting starts.
* :meth:`~ResponsesActivities.await_background_response` is one long, heartbeating activity that follows
  the response to a terminal status, by resuming its event stream (``starting_after`` the last cursor) or
  by polling with an adaptive interval, and resumes from its heartbeat details after any crash.
* :meth:`~ResponsesActivities.cancel_background_response` cancels at the provider and re-reads the final
  state, because a cancel can race with completion.
* :meth:`~ResponsesActivities.create_stateless_response` is the stateless lane: ``store=False``, no
  background, one synchronous call.

Prompt and output text pass through these activities but never reach spans or logs: spans carry only
the decision tags, the response id, statuses and counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import httpx2
import openai
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseFailedEvent,
    ResponseIncompleteEvent,
    ResponseInProgressEvent,
    ResponseQueuedEvent,
    ResponseTextDeltaEvent,
)
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities import genai
from activities.decision_tags import DecisionTags
from activities.endpoint_clients import EndpointClients, UnknownEndpointError
from activities.errors import is_transient_code, to_application_error
from activities.failures import FailureType
from activities.heartbeat import heartbeating
from activities.outcome import TERMINAL_STATUSES, ProviderOutcome
from activities.poll_schedule import next_interval_s

_T = TypeVar("_T")

StreamMode = Literal["stream", "poll"]
"""How the await activity follows a background response."""

MAX_STREAM_RECONNECTS = 20
"""Dropped streams tolerated in one attempt before the activity falls back to polling."""

STREAM_QUIET_CHECK_S = 300.0
"""Silence after which a plain GET is made beside an open stream (which stays open): it notices a
response that ended while its connection died without a reset. Reasoning models are quiet for minutes."""

STREAM_TIMEOUT = httpx2.Timeout(None, connect=10.0, write=30.0, pool=30.0)
"""No read timeout on a followed stream: the SDK's default (600 s between bytes) would cut a long,
quiet generation. The quiet check and the activity's start-to-close timeout bound it instead."""

StreamEnd = Literal["ended", "dropped"]
"""How a followed stream stopped without a terminal event: the server ended it, or the connection failed
(a reset, or a transient ``error`` event)."""

CHECK_TIMEOUT_S = 10.0
"""Timeout of a poll's GET: a response object is small, so a slow answer is a failed attempt, retried at
the next interval, rather than a slot held (and a worker crash noticed) only after minutes."""

CANCEL_SETTLE_S = 30.0
"""How long the cancel activity waits for a cancelled response to reach a terminal status."""


class ModelCall(BaseModel):
    """What both lanes send to the model: the same call, whichever way it is made."""

    model_config = ConfigDict(extra="ignore")

    tags: DecisionTags
    model: str
    input: str
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    """The job's metadata plus lanes' own ``lanes_*`` keys naming the workflow, job type and policy."""


class StartBackgroundInput(ModelCall):
    """A background create."""

    stream: bool = False
    completion_window: Literal["soonest", "2h", "8h"] | None = None


class StartBackgroundResult(BaseModel):
    """The provider's id of the new response and, when streaming, the cursor to resume after."""

    model_config = ConfigDict(extra="ignore")

    response_id: str
    status: str
    cursor: int | None = None


class AwaitBackgroundInput(BaseModel):
    """Which response to follow, and how."""

    model_config = ConfigDict(extra="ignore")

    tags: DecisionTags
    response_id: str
    mode: StreamMode = "poll"
    cursor: int | None = None
    poll_interval_cap_s: float = 30.0
    queued_timeout_s: float = 600.0
    min_poll_interval_s: float = 0.0
    """The least wait before each poll, the first one included: set when the profile expects webhooks,
    which end the wait at once, so that polling is only the safety net for a lost one."""


class CheckBackgroundInput(BaseModel):
    """Which response to look at once, and how to pace the next look."""

    model_config = ConfigDict(extra="ignore")

    tags: DecisionTags
    response_id: str
    poll_interval_cap_s: float = 30.0
    queued_timeout_s: float = 600.0
    min_poll_interval_s: float = 0.0
    """The least wait between polls: set when the profile expects webhooks (polls are the safety net)."""
    previous_polls: int = 0
    """Polls made before this activity was scheduled (by a stream follower that handed over), so the
    pace carries on instead of restarting at the fastest interval."""


class AwaitProgress(BaseModel):
    """Heartbeat details of the await activity.

    Everything a retry needs to resume, and what ``lanes status`` shows: counts and positions, never text.
    """

    model_config = ConfigDict(extra="ignore")

    response_id: str
    mode: StreamMode
    cursor: int | None = None
    provider_status: str | None = None
    polls: int = 0
    reconnects: int = 0
    chars: int = 0
    queued_since: float | None = None
    queued_s: float = 0.0
    """Time the response was seen ``queued`` before this point, for the await span."""
    attempt: int = 1


class AwaitBackgroundResult(ProviderOutcome):
    """The terminal outcome, with how it was reached."""

    mode: StreamMode = "poll"
    polls: int = 0
    reconnects: int = 0


class CancelBackgroundInput(BaseModel):
    """The response to cancel."""

    model_config = ConfigDict(extra="ignore")

    tags: DecisionTags
    response_id: str


class CancelBackgroundResult(BaseModel):
    """What the provider reported after the cancel.

    Usually ``cancelled``; but a cancel can lose the race with completion, and then the completed outcome
    stands.
    """

    model_config = ConfigDict(extra="ignore")

    response_id: str
    provider_status: str
    outcome: ProviderOutcome | None = None


class DeleteBackgroundInput(BaseModel):
    """The response to delete at the provider once its result is in history."""

    model_config = ConfigDict(extra="ignore")

    tags: DecisionTags
    response_id: str


class DeleteBackgroundResult(BaseModel):
    """Whether the provider still had the response (``deleted``) or it was already gone."""

    model_config = ConfigDict(extra="ignore")

    response_id: str
    deleted: bool


class StatelessInput(ModelCall):
    """A synchronous, unstored model call."""

    timeout_s: float = 600.0


class StatelessResult(ProviderOutcome):
    """The outcome of the stateless call."""


def _record_response(response_id: str, status: str | None) -> None:
    span = trace.get_current_span()
    span.set_attribute("openai.response_id", response_id)
    if status:
        span.set_attribute("openai.response_status", status)


class ResponsesActivities:
    """Model-calling activities sharing one OpenAI client per provider endpoint.

    Args:
        openai_client: The clients by endpoint name (``lanes.connect.endpoint_clients``), or one client
            with ``max_retries=0`` serving the default endpoint only.
    """

    def __init__(self, openai_client: openai.AsyncOpenAI | EndpointClients) -> None:
        self._endpoints = (
            openai_client
            if isinstance(openai_client, EndpointClients)
            else EndpointClients.default_only(openai_client)
        )

    def _provider(self, tags: DecisionTags) -> openai.AsyncOpenAI:
        """The client of the endpoint the decision names, recording it on the activity span.

        Raises:
            ApplicationError: Non-retryable ``EndpointNotConfigured`` when this worker has no client
                for it (the policy gained the endpoint after the worker started).
        """
        try:
            endpoint = self._endpoints.get_client(tags.endpoint)
        except UnknownEndpointError as exc:
            raise ApplicationError(
                str(exc),
                {"endpoint": exc.name, "known": exc.known},
                type=FailureType.ENDPOINT_NOT_CONFIGURED,
                non_retryable=True,
            ) from None
        trace.get_current_span().set_attributes(
            {"server.address": endpoint.host, "server.port": endpoint.port}
        )
        return endpoint.api

    def definitions(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for a worker to register."""
        return [
            self.start_background_response,
            self.await_background_response,
            self.check_background_response,
            self.cancel_background_response,
            self.delete_background_response,
            self.create_stateless_response,
        ]

    @activity.defn
    async def start_background_response(self, input: StartBackgroundInput) -> StartBackgroundResult:
        """Create a background response and return its id.

        The ``Idempotency-Key`` names the workflow run and the activity (:func:`idempotency_key`): the same on
        every retry of this activity, so a retry after a lost reply does not start (and bill) a second
        generation where the provider honours the key; and different for every run, so a new job that
        reuses a finished job's workflow id never receives that job's response.

        It heartbeats while the create is in flight, so a dead worker is noticed within the heartbeat
        timeout, and a cancel reaches it; a cancel never abandons a create in flight (see below).

        Raises:
            ApplicationError: The provider refused or failed (see ``activities/errors.py``).
        """
        input.tags.tag_current_span()
        genai.record_request(input.model)
        create = asyncio.ensure_future(self._create_background(input))
        async with heartbeating():
            try:
                return await asyncio.shield(create)
            except asyncio.CancelledError:
                # The job was cancelled while the create was in flight. Dropping the request would not
                # stop a create the provider already received; it would only lose the id of the response
                # it starts. Wait for the reply instead, so the workflow can cancel that response.
                with contextlib.suppress(Exception):
                    return await create
                raise

    async def _create_background(self, input: StartBackgroundInput) -> StartBackgroundResult:
        info = activity.info()
        headers = {"Idempotency-Key": idempotency_key(info)}
        background_options: openai.types.responses.response_create_params.BackgroundOptions | openai.Omit = (
            {"completion_window": input.completion_window} if input.completion_window else openai.omit
        )
        try:
            created = await self._provider(input.tags).responses.create(
                model=input.model,
                input=input.input,
                instructions=_or_omit(input.instructions),
                max_output_tokens=_or_omit(input.max_output_tokens),
                metadata=input.metadata,
                background=True,
                store=True,
                stream=input.stream,
                background_options=background_options,
                extra_headers=headers,
            )
            if isinstance(created, Response):
                _record_response(created.id, created.status)
                genai.record_response(created)
                return StartBackgroundResult(response_id=created.id, status=created.status or "queued")
            async with created as stream:
                async for event in stream:
                    if isinstance(
                        event, ResponseCreatedEvent | ResponseQueuedEvent | ResponseInProgressEvent
                    ):
                        # Only the id and the cursor matter here; the await activity resumes the stream
                        # after this event, so closing the connection loses nothing.
                        _record_response(event.response.id, event.response.status)
                        genai.record_response(event.response)
                        return StartBackgroundResult(
                            response_id=event.response.id,
                            status=event.response.status or "queued",
                            cursor=event.sequence_number,
                        )
        except openai.OpenAIError as exc:
            raise to_application_error(exc) from None
        raise ApplicationError(
            "the provider's stream ended before it named the response", type=FailureType.PROVIDER_ERROR
        )

    @activity.defn
    async def await_background_response(self, input: AwaitBackgroundInput) -> AwaitBackgroundResult:
        """Follow a background response to its terminal status.

        Resumes from the last heartbeat details when this is a retry, so a worker crash costs at most the
        events since the last heartbeat, which the resumed stream sends again. On worker shutdown it
        heartbeats and fails at once (retryably) instead of waiting for a heartbeat timeout, so another
        worker takes over within a retry interval.

        Raises:
            ApplicationError: ``ResultExpired`` (non-retryable) if the provider no longer has the response,
                ``StuckQueued`` (non-retryable) if it stayed queued too long, ``WorkerShutdown`` (retryable)
                on shutdown, or a mapped provider error.
        """
        input.tags.tag_current_span()
        genai.record_request(None)
        _record_response(input.response_id, None)
        progress = _resume(input)
        async with heartbeating(lambda: progress.model_dump(mode="json")):
            follower = asyncio.create_task(self._follow(input, progress))
            shutdown = asyncio.create_task(activity.wait_for_worker_shutdown())
            try:
                await asyncio.wait({follower, shutdown}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (follower, shutdown):
                    if not task.done():
                        task.cancel()
                        # Drained even if this attempt is cancelled again meanwhile: the follower's
                        # stream must not be closed (or collected) while its reader still runs.
                        await _drain(task)
            if not follower.done() or follower.cancelled():
                _record_await(progress)
                activity.heartbeat(progress.model_dump(mode="json"))
                raise ApplicationError(
                    "worker shutting down; the next attempt resumes from the last cursor",
                    type=FailureType.WORKER_SHUTDOWN,
                )
            response = follower.result()
        _record_response(response.id, response.status)
        genai.record_response(response)
        _record_await(progress)
        outcome = ProviderOutcome.from_response(response)
        return AwaitBackgroundResult(
            **outcome.model_dump(), mode=progress.mode, polls=progress.polls, reconnects=progress.reconnects
        )

    @activity.defn
    async def check_background_response(self, input: CheckBackgroundInput) -> AwaitBackgroundResult:
        """Look at a background response once: its outcome if it is terminal, else a benign "not yet".

        This is how a poll-mode job waits: Temporal's infrequent-polling pattern. Each attempt is one GET
        and holds a worker slot only for that GET; a response still running fails the attempt with
        :attr:`FailureType.NOT_YET`, whose ``next_retry_delay`` is the next poll interval
        (:mod:`activities.poll_schedule`), so the retry policy paces the polls and the server holds the
        waiting job. Retries write no history event, so a job polled for hours keeps a short history; a
        worker that dies between polls costs nothing, and one that dies during a poll costs one retry.

        The attempt number is the poll count (one GET per attempt), and the stuck-in-queued limit counts
        from the moment the activity was first scheduled, so no heartbeat state is needed.

        Raises:
            ApplicationError: ``ResponseNotDone`` (benign, retryable) while the response runs,
                ``ResultExpired`` or ``StuckQueued`` (non-retryable), or a mapped provider error.
        """
        info = activity.info()
        input.tags.tag_current_span()
        genai.record_request(None)
        _record_response(input.response_id, None)
        polls = input.previous_polls + info.attempt
        follow = AwaitBackgroundInput(
            tags=input.tags,
            response_id=input.response_id,
            poll_interval_cap_s=input.poll_interval_cap_s,
            queued_timeout_s=input.queued_timeout_s,
        )
        progress = AwaitProgress(
            response_id=input.response_id,
            mode="poll",
            queued_since=info.scheduled_time.timestamp(),
            polls=polls - 1,
            attempt=info.attempt,
        )
        response = await self._poll(follow, progress, timeout_s=CHECK_TIMEOUT_S)
        trace.get_current_span().set_attributes({"lanes.await.mode": "poll", "lanes.await.polls": polls})
        if response.status not in TERMINAL_STATUSES:
            # Paced by the time waited as well as the attempt: checks that ran late (a backlog on the
            # poll queue) skip the fast intervals they slept through instead of replaying them.
            waited = (datetime.now(UTC) - info.scheduled_time).total_seconds()
            delay = max(
                next_interval_s(polls, input.poll_interval_cap_s, elapsed_s=waited),
                input.min_poll_interval_s,
            )
            raise ApplicationError(
                f"response {input.response_id} is {response.status}; next look in {delay:.1f} s",
                type=FailureType.NOT_YET,
                next_retry_delay=timedelta(seconds=delay),
                category=ApplicationErrorCategory.BENIGN,
            )
        _record_response(response.id, response.status)
        genai.record_response(response)
        outcome = ProviderOutcome.from_response(response)
        return AwaitBackgroundResult(**outcome.model_dump(), mode="poll", polls=polls, reconnects=0)

    async def _follow(self, input: AwaitBackgroundInput, progress: AwaitProgress) -> Response:
        while True:
            if progress.mode == "stream":
                terminal: Response | StreamEnd
                try:
                    terminal = await self._follow_stream(input, progress)
                except openai.BadRequestError:
                    # The provider refuses to stream it again (more than ~5 minutes old, or not created
                    # with background=true): polling still works until the retention window ends.
                    _switch_to_poll(progress, "stream_refused")
                    continue
                except openai.APIConnectionError:
                    terminal = "dropped"
                except openai.APIStatusError as exc:
                    raise self._map(exc, input.response_id) from None
                except openai.APIError as exc:
                    # An ``error`` event mid-stream: a rate limit or an overload after generation began
                    # is a dropped stream (the response goes on); any other code fails the attempt.
                    if not is_transient_code(exc.code):
                        raise self._map(exc, input.response_id) from None
                    terminal = "dropped"
                except openai.OpenAIError as exc:
                    raise self._map(exc, input.response_id) from None
                if isinstance(terminal, Response):
                    return terminal
                progress.reconnects += 1
                if progress.reconnects > MAX_STREAM_RECONNECTS * progress.attempt:
                    _switch_to_poll(progress, "too_many_reconnects")
                    continue
                if terminal == "dropped":
                    # The connection failed: resume after the cursor; the resumed stream also carries
                    # a terminal event the response reached meanwhile, so no poll is needed.
                    await asyncio.sleep(min(0.1 * progress.reconnects, 2.0))
                    continue
                # The server ended the stream without a terminal event (a cancelled response does):
                # look once before resuming.
                response = await self._poll(input, progress)
                if response.status in TERMINAL_STATUSES:
                    return response
                continue
            if progress.polls == 0 and input.min_poll_interval_s > 0:
                await asyncio.sleep(input.min_poll_interval_s)
            response = await self._poll(input, progress)
            if response.status in TERMINAL_STATUSES:
                return response
            interval = next_interval_s(progress.polls, input.poll_interval_cap_s)
            await asyncio.sleep(max(interval, input.min_poll_interval_s))

    async def _follow_stream(
        self, input: AwaitBackgroundInput, progress: AwaitProgress
    ) -> Response | StreamEnd:
        """Read the stream after the cursor for as long as it stays open, however quiet it is.

        A reasoning model may send nothing for minutes while it thinks: that is not a failure, and
        closing the stream to poll would cost requests and lag. The stream is read with no read timeout
        (heartbeats go on from their own ticker, and the activity's start-to-close timeout bounds it);
        after :data:`STREAM_QUIET_CHECK_S` of silence, or when a queued response reaches its queued
        timeout, one plain GET is made beside the open stream, which catches a response that ended while
        the connection died silently and a response stuck in ``queued``.

        Returns:
            The terminal response, or ``"ended"`` if the server ended the stream without one.
        """
        stream = await self._provider(input.tags).responses.retrieve(
            input.response_id,
            stream=True,
            starting_after=_or_omit(progress.cursor),
            timeout=STREAM_TIMEOUT,
        )
        async with stream:
            events = stream.__aiter__()
            while True:
                pending = asyncio.ensure_future(events.__anext__())
                try:
                    while not (await asyncio.wait({pending}, timeout=_quiet_wait_s(input, progress)))[0]:
                        response = await self._poll(input, progress)
                        if response.status in TERMINAL_STATUSES:
                            return response
                    event = pending.result()
                except StopAsyncIteration:
                    return "ended"
                finally:
                    if not pending.done():
                        pending.cancel()
                        await _drain(pending)
                progress.cursor = event.sequence_number
                if isinstance(event, ResponseTextDeltaEvent):
                    progress.chars += len(event.delta)
                elif isinstance(
                    event, ResponseCompletedEvent | ResponseFailedEvent | ResponseIncompleteEvent
                ):
                    progress.provider_status = event.response.status
                    return event.response
                elif isinstance(event, ResponseCreatedEvent | ResponseQueuedEvent | ResponseInProgressEvent):
                    _observe_status(progress, event.response.status)

    async def _poll(
        self, input: AwaitBackgroundInput, progress: AwaitProgress, *, timeout_s: float | None = None
    ) -> Response:
        """One plain GET, with the stuck-in-queued check."""
        try:
            if timeout_s is None:
                response = await self._provider(input.tags).responses.retrieve(input.response_id)
            else:
                response = await self._provider(input.tags).responses.retrieve(
                    input.response_id, timeout=timeout_s
                )
        except openai.OpenAIError as exc:
            raise self._map(exc, input.response_id) from None
        progress.polls += 1
        _observe_status(progress, response.status)
        if response.status == "queued":
            assert progress.queued_since is not None
            if time.time() - progress.queued_since >= input.queued_timeout_s:
                try:
                    await self._provider(input.tags).responses.cancel(input.response_id)
                except (openai.NotFoundError, openai.BadRequestError):
                    pass  # gone, or no longer cancellable: nothing is left running
                except openai.OpenAIError as exc:
                    # A transient failure must not leave a queued response behind to start (and bill)
                    # later: retry, and the next attempt cancels again before failing.
                    raise to_application_error(exc) from None
                raise ApplicationError(
                    f"response {input.response_id} stayed queued for more than {input.queued_timeout_s:g} s; "
                    "it was cancelled at the provider",
                    {"response_id": input.response_id, "queued_timeout_s": input.queued_timeout_s},
                    type=FailureType.STUCK_QUEUED,
                    non_retryable=True,
                )
        return response

    @staticmethod
    def _map(exc: openai.OpenAIError, response_id: str) -> ApplicationError:
        if isinstance(exc, openai.NotFoundError):
            return ApplicationError(
                f"response {response_id} no longer exists at the provider: its stored state expired (or was "
                "deleted) before a worker could read the result",
                {"response_id": response_id},
                type=FailureType.RESULT_EXPIRED,
                non_retryable=True,
            )
        return to_application_error(exc)

    @activity.defn
    async def cancel_background_response(self, input: CancelBackgroundInput) -> CancelBackgroundResult:
        """Cancel a background response, then re-read it until it is terminal.

        Cancelling is idempotent at the provider, so this activity may be retried freely. A 404 means the
        response no longer exists, which leaves nothing to cancel.
        """
        input.tags.tag_current_span()
        genai.record_request(None)
        _record_response(input.response_id, None)
        provider = self._provider(input.tags)
        try:
            with contextlib.suppress(openai.BadRequestError):
                # 400: not cancellable (already terminal, or not background); the re-read tells which.
                await provider.responses.cancel(input.response_id)
            deadline = time.monotonic() + CANCEL_SETTLE_S
            async with heartbeating():
                while True:
                    response = await provider.responses.retrieve(input.response_id)
                    if response.status in TERMINAL_STATUSES or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.5)
        except openai.NotFoundError:
            return CancelBackgroundResult(response_id=input.response_id, provider_status="not_found")
        except openai.OpenAIError as exc:
            raise to_application_error(exc) from None
        _record_response(response.id, response.status)
        genai.record_response(response)
        terminal = response.status in TERMINAL_STATUSES
        return CancelBackgroundResult(
            response_id=response.id,
            provider_status=response.status or "unknown",
            outcome=ProviderOutcome.from_response(response) if terminal else None,
        )

    @activity.defn
    async def delete_background_response(self, input: DeleteBackgroundInput) -> DeleteBackgroundResult:
        """Delete a harvested background response at the provider (``DELETE /v1/responses/{id}``).

        Where the policy asks for it (``delete_after_harvest``), this shrinks the time the provider
        keeps the job's stored state from its retention window (about ten minutes) to seconds. A 404
        means it is already gone, which is what was wanted.
        """
        input.tags.tag_current_span()
        _record_response(input.response_id, None)
        try:
            await self._provider(input.tags).responses.delete(input.response_id)
        except openai.NotFoundError:
            return DeleteBackgroundResult(response_id=input.response_id, deleted=False)
        except openai.OpenAIError as exc:
            raise to_application_error(exc) from None
        return DeleteBackgroundResult(response_id=input.response_id, deleted=True)

    @activity.defn
    async def create_stateless_response(self, input: StatelessInput) -> StatelessResult:
        """Run the model call synchronously with ``store=False`` and no background.

        Cancelling the activity closes the connection, which is how a synchronous response is cancelled.
        """
        input.tags.tag_current_span()
        genai.record_request(input.model)
        provider = self._provider(input.tags)
        try:
            async with heartbeating():
                response = await provider.responses.create(
                    model=input.model,
                    input=input.input,
                    instructions=_or_omit(input.instructions),
                    max_output_tokens=_or_omit(input.max_output_tokens),
                    metadata=input.metadata,
                    store=False,
                    timeout=input.timeout_s,
                )
        except openai.OpenAIError as exc:
            raise to_application_error(exc) from None
        _record_response(response.id, response.status)
        genai.record_response(response)
        return StatelessResult(**ProviderOutcome.from_response(response).model_dump())


def idempotency_key(info: activity.Info) -> str:
    """The ``Idempotency-Key`` of a create: stable across retries of one activity, unique across runs.

    The workflow id alone is not enough: a finished job's id may be reused for a new run, which must
    generate afresh rather than be handed the first run's response (or refused for a different body).
    """
    return f"lanes-{info.workflow_id}-{info.workflow_run_id}-{info.activity_id}"


def _or_omit(value: _T | None) -> _T | openai.Omit:
    """Leave a field out of the request rather than send ``null`` for it."""
    return openai.omit if value is None else value


async def _drain(task: asyncio.Future[Any]) -> None:
    """Wait until a cancelled task has finished, even if this task is cancelled meanwhile.

    The stream's reader must be done before the stream is closed (closing an async generator that is
    still running raises "already executing"); a cancel of this task is re-raised afterwards.
    """
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if not task.cancelled():
        task.exception()  # retrieved, so an expected error is not reported as never retrieved
    if cancelled:
        raise asyncio.CancelledError


def _observe_status(progress: AwaitProgress, status: str | None) -> None:
    """Record the provider's status, and since when it has been queued (for the stuck-queued limit)."""
    progress.provider_status = status
    if status == "queued":
        if progress.queued_since is None:
            progress.queued_since = time.time()
    else:
        if progress.queued_since is not None:
            progress.queued_s += max(0.0, time.time() - progress.queued_since)
        progress.queued_since = None


def _switch_to_poll(progress: AwaitProgress, reason: str) -> None:
    """Fall back from streaming to polling, as an event on the await span."""
    trace.get_current_span().add_event(
        "lanes.await.mode_switch",
        {"from": progress.mode, "to": "poll", "reason": reason, "reconnects": progress.reconnects},
    )
    progress.mode = "poll"


def _record_await(progress: AwaitProgress) -> None:
    """How the await went: mode (the final one), polls, reconnects, queued time, attempt."""
    trace.get_current_span().set_attributes(
        {
            "lanes.await.mode": progress.mode,
            "lanes.await.polls": progress.polls,
            "lanes.await.reconnects": progress.reconnects,
            "lanes.await.queued_s": progress.queued_s,
            "lanes.await.attempt": progress.attempt,
        }
    )


def _quiet_wait_s(input: AwaitBackgroundInput, progress: AwaitProgress) -> float:
    """How long an open stream may stay silent before a plain GET is made beside it."""
    if progress.provider_status == "queued" and progress.queued_since is not None:
        left = progress.queued_since + input.queued_timeout_s - time.time()
        return max(0.0, min(STREAM_QUIET_CHECK_S, left))
    return STREAM_QUIET_CHECK_S


def _resume(input: AwaitBackgroundInput) -> AwaitProgress:
    """Progress from the last heartbeat of a previous attempt, or a fresh start from the input."""
    info = activity.info()
    details = info.heartbeat_details
    if details:
        # Heartbeat details are decoded without type hints: a dict, validated here.
        previous = AwaitProgress.model_validate(details[0])
        if previous.response_id == input.response_id:
            return previous.model_copy(update={"attempt": info.attempt})
    return AwaitProgress(
        response_id=input.response_id, mode=input.mode, cursor=input.cursor, attempt=info.attempt
    )
