"""The model-task workflow: decide the lane, then run the job on it, cancellable at every step.

    handle = await client.start_workflow(
        ModelTaskWorkflow.run,
        ModelTaskInput(job_type="public_research", input="..."),
        id="lanes-...", task_queue=settings.task_queue,
    )

1. ``evaluate_policy`` decides the lane from the job type and data class. The decision is an activity
   result, so it is in history with its rule, policy version and digest: replay never re-decides.
2. ``background``: ``start_background_response`` returns the provider's response id (now in history),
   then ``await_background_response`` follows it to a terminal status, heartbeating its progress.
   ``stateless``: ``create_stateless_response`` makes one ``store=False`` call. ``denied``: the workflow
   fails with a non-retryable ``PolicyDenied`` error carrying the decision, and no model is called.
3. With a profile that expects webhooks, ``lanes webhooks`` sends the ``provider_finished`` signal with the
   response's terminal outcome as soon as the provider announces it: the wait ends at once, the await
   activity (polling only as a safety net) is cancelled, and the job finishes as if it had polled it.
4. A ``cancel`` signal, or Temporal's own workflow cancellation, stops the job in any phase: a response
   being started is cancelled as soon as its id is known, a running one is cancelled at the provider and
   re-read (a cancel can race with completion). A signal ends the workflow normally with a ``cancelled``
   result recording who, when and why; a Temporal cancellation ends it CANCELED after the same cleanup.

Workflow code never sees ``os``, ``time``, ``random`` or I/O; activity and policy modules are imported
through the sandbox pass-through only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    TimeoutError,
    TimeoutType,
)
from temporalio.workflow import ActivityHandle

with workflow.unsafe.imports_passed_through():
    from opentelemetry import trace

    from activities.decision_tags import DecisionTags
    from activities.failures import FailureType
    from activities.outcome import Outcome, ProviderOutcome
    from activities.policy import PolicyActivities
    from activities.responses import (
        AwaitBackgroundInput,
        AwaitBackgroundResult,
        CancelBackgroundInput,
        CancelBackgroundResult,
        CheckBackgroundInput,
        DeleteBackgroundInput,
        ModelCall,
        ResponsesActivities,
        StartBackgroundInput,
        StartBackgroundResult,
        StatelessInput,
        StatelessResult,
    )
    from policy import Lane, PolicyDecision, PolicyQuery
    from workflows import activity_options, job_span, search_attributes, task_queues
    from workflows.job_details import decision_details
    from workflows.model_task_io import (
        DECISION_MEMO,
        MAX_INPUT_CHARS,
        MAX_INSTRUCTIONS_CHARS,
        MAX_USER_METADATA,
        OUTCOME_MEMO,
        TRACE_MEMO,
        CancelInput,
        CancellationRecord,
        ExecutionOptions,
        ModelTaskInput,
        ModelTaskResult,
        Phase,
        ProviderFinishedInput,
        RerunRecord,
        StatusResult,
        provider_failed_result,
    )

__all__ = [
    "MAX_INPUT_CHARS",
    "MAX_INSTRUCTIONS_CHARS",
    "MAX_USER_METADATA",
    "CancelInput",
    "CancellationRecord",
    "ExecutionOptions",
    "ModelTaskInput",
    "ModelTaskResult",
    "ModelTaskWorkflow",
    "Phase",
    "ProviderFinishedInput",
    "RerunRecord",
    "StatusResult",
    "provider_failed_result",
]

OUTCOME_FIELDS = set(ProviderOutcome.model_fields) - {"response_id"}
"""What a result copies from a provider outcome (the response id is the workflow's own record)."""

RERUN_FAILURE_TYPES: dict[str, str] = {
    FailureType.STUCK_QUEUED: "stuck_queued",
    FailureType.RESULT_EXPIRED: "result_expired",
}
"""Activity failure types that a job type's ``rerun_on`` may turn into a fresh generation."""

RERUN_ERROR_CODES = frozenset({"rate_limit_exceeded", "server_error"})
"""Provider error codes of a ``failed`` response that ``rerun_on`` may turn into a fresh generation."""

AUDIT_PATCH = "lanes-audit-outcome-memo"
"""Patch id of the ``LanesOutcome`` upsert and the memo at the end of a job (``_audit``)."""

FOLLOW_PATCH = "lanes-follow-by-retry"
"""Patch id of following a response by retry-paced polls (``check_background_response``) and of streams
on their own task queue; before it, one long await activity on the main queue did both."""

WEBHOOK_PATCH = "lanes-webhook-provider-finished"
"""Patch id of ending a generation on a ``provider_finished`` signal (cancelling the await activity, or
never starting it), so histories recorded before the signal existed replay unchanged."""

MAX_FINISHED_OUTCOMES = 8
"""How many ``provider_finished`` outcomes a job keeps before its response id is known (a webhook can
arrive before the create's reply is read): a bound, so stray signals cannot grow the workflow's state."""


def _no_stream_slot(handle: ActivityHandle[Any]) -> bool:
    """Whether a finished stream follower timed out waiting for a worker slot (never started)."""
    if handle.cancelled():
        return False
    exc = handle.exception()
    return (
        isinstance(exc, ActivityError)
        and isinstance(exc.cause, TimeoutError)
        and exc.cause.type == TimeoutType.SCHEDULE_TO_START
    )


@workflow.defn
class ModelTaskWorkflow:
    """Runs one model job on the lane its policy allows."""

    def __init__(self) -> None:
        self._job_type = ""
        self._phase: Phase = "evaluating"
        self._decision: PolicyDecision | None = None
        self._response_id: str | None = None
        self._provider_status: str | None = None
        self._cancel: CancellationRecord | None = None
        self._start: ActivityHandle[StartBackgroundResult] | None = None
        self._running: ActivityHandle[Any] | None = None
        self._reruns: list[RerunRecord] = []
        self._polls = 0
        self._reconnects = 0
        self._provider_deleted = False
        self._options = ExecutionOptions()
        self._finished: dict[str, ProviderOutcome] = {}
        self._by_webhook = False
        self._ended = False

    @workflow.run
    async def run(self, input: ModelTaskInput) -> ModelTaskResult:
        """Decide, then run the job on its lane.

        Raises:
            ApplicationError: ``PolicyDenied`` (non-retryable) when the policy denies the job.
        """
        self._job_type = input.job_type
        root = job_span.root_span()
        try:
            result = await self._run(input)
        except asyncio.CancelledError:
            # Temporal's own cancellation: the same cleanup as the signal, then end CANCELED.
            self._request_cancel(
                via="workflow-cancel", requested_by="temporal", reason=workflow.cancellation_reason() or ""
            )
            await self._stop_and_cancel_at_provider()
            self._phase = "cancelled"
            job_span.record_outcome(root, Outcome.CANCELLED, self._cancel)
            self._audit(Outcome.CANCELLED, root)
            raise
        except FailureError as exc:
            denied = isinstance(exc, ApplicationError) and exc.type == FailureType.POLICY_DENIED
            outcome = Outcome.DENIED if denied else Outcome.FAILED
            job_span.record_outcome(root, outcome, self._cancel)
            self._audit(outcome, root)
            raise
        self._ended = True
        job_span.record_outcome(root, result.status, result.cancellation)
        self._audit(result.status, root)
        return result

    def _audit(self, outcome: Outcome, root: trace.Span) -> None:
        """The outcome as a search attribute, and the decision (no text) and trace in the memo.

        Behind a patch: histories recorded before it replay without these two commands.
        """
        if not workflow.patched(AUDIT_PATCH):
            return
        workflow.upsert_search_attributes([search_attributes.OUTCOME.value_set(outcome.value)])
        context = root.get_span_context()
        decision = self._decision
        memo: dict[str, Any] = {OUTCOME_MEMO: outcome.value}
        if decision is not None:
            memo[DECISION_MEMO] = DecisionTags.of(decision).model_dump()
        if context.is_valid:
            memo[TRACE_MEMO] = {
                "trace_id": f"{context.trace_id:032x}",
                "span_id": f"{context.span_id:016x}",
            }
        workflow.upsert_memo(memo)

    @workflow.signal
    def cancel(self, input: CancelInput) -> None:
        """Ask the job to stop. Only the first request is recorded; later ones change nothing."""
        self._request_cancel(via="signal", requested_by=input.requested_by, reason=input.reason)

    @workflow.signal
    def provider_finished(self, input: ProviderFinishedInput) -> None:
        """Record a response's terminal outcome, announced by a provider webhook.

        Kept only while the job runs, for a response that may be this job's (the current one, or one whose
        create reply is not read yet), and only the first outcome per response: a duplicate, a late one or
        one for a replaced generation changes nothing.
        """
        outcome = input.outcome
        current = self._response_id
        reason: str | None = None
        if self._ended or self._phase in ("completed", "denied", "cancelled", "failed"):
            reason = "job ended"
        elif outcome.response_id != input.response_id:
            reason = "outcome names another response"
        elif current is not None and input.response_id != current:
            reason = "not the job's current response"
        elif input.response_id in self._finished:
            reason = "duplicate"
        elif len(self._finished) >= MAX_FINISHED_OUTCOMES:
            reason = "too many outcomes before the response id was known"
        if reason is not None:
            workflow.logger.info("provider_finished for %s ignored: %s", input.response_id, reason)
            return
        self._finished[input.response_id] = outcome

    @workflow.query
    def status(self) -> StatusResult:
        """Where the job is: phase, lane, rule, provider response id and status."""
        decision = self._decision
        return StatusResult(
            phase=self._phase,
            job_type=self._job_type,
            lane=decision.lane if decision else None,
            rule=decision.rule if decision else None,
            data_class=decision.data_class if decision else None,
            policy_version=decision.policy_version if decision else None,
            response_id=self._response_id,
            provider_status=self._provider_status,
            cancellation=self._cancel,
            reruns=len(self._reruns),
            endpoint=decision.endpoint if decision else None,
            stream=decision.profile.stream if decision and decision.profile else None,
        )

    async def _run(self, input: ModelTaskInput) -> ModelTaskResult:
        decision: PolicyDecision = await self._settle(
            workflow.start_activity_method(
                PolicyActivities.evaluate_policy,
                PolicyQuery(
                    job_type=input.job_type,
                    data_class=input.data_class,
                    approval=input.approval,
                    tenant=input.tenant,
                    input_chars=len(input.input),
                ),
                **activity_options.EVALUATE_POLICY,
            )
        )
        self._decision = decision
        workflow.upsert_search_attributes(
            [
                search_attributes.LANE.value_set(str(decision.lane)),
                search_attributes.JOB_TYPE.value_set(decision.job_type),
                search_attributes.DATA_CLASS.value_set(decision.data_class),
                search_attributes.RULE.value_set(decision.rule),
                search_attributes.POLICY_DIGEST.value_set(decision.policy_digest),
            ]
        )
        workflow.set_current_details(decision_details(decision))
        tags = DecisionTags.of(decision)
        # A short span that records the decision in the workflow's trace. It holds no await: a span open
        # across awaits is closed from another context when a running workflow is evicted, which makes
        # OpenTelemetry log "Failed to detach context" (temporalio/sdk-python#441).
        with trace.get_tracer(__name__).start_as_current_span("lanes.decision") as span:
            span.set_attributes(tags.attributes())
        job_span.root_span().set_attributes(tags.attributes())  # where trace lists filter
        if decision.lane == Lane.DENIED or decision.profile is None:
            self._phase = "denied"
            raise ApplicationError(
                f"policy {decision.policy_version} denies job type {decision.job_type!r} with data class "
                f"{decision.data_class!r} (rule {decision.rule}): " + " ".join(decision.reasons),
                decision.model_dump(mode="json"),
                type=FailureType.POLICY_DENIED,
                non_retryable=True,
            )
        if self._cancel is not None:
            # Cancelled while the policy was evaluated: nothing was started, nothing to clean up.
            self._phase = "cancelled"
            return self._result(decision, None)
        call = ModelCall(
            tags=tags,
            model=input.model or decision.profile.model,
            input=input.input,
            instructions=input.instructions,
            max_output_tokens=input.max_output_tokens,
            metadata={
                **input.metadata,
                "lanes_workflow_id": workflow.info().workflow_id,
                "lanes_job_type": decision.job_type,
                "lanes_policy_digest": decision.policy_digest,
            },
        )
        self._options = input.options
        heartbeat = timedelta(seconds=input.options.heartbeat_timeout_s)
        if decision.lane == Lane.STATELESS:
            result = await self._stateless(call, decision, heartbeat, input.options.stateless_task_queue)
        else:
            result = await self._background(call, decision, heartbeat)
        if result.status == Outcome.FAILED:
            # The provider ran the job and failed it: the workflow fails too, so Temporal's "Failed"
            # filter, alerting and `lanes result` agree. The result rides in the failure's details.
            self._phase = "failed"
            raise ApplicationError(
                f"the provider failed the job ({result.error_code or 'no code'}): "
                + (result.error_message or ""),
                result.model_dump(mode="json"),
                type=FailureType.PROVIDER_FAILED,
                non_retryable=True,
            )
        return result

    async def _stateless(
        self, call: ModelCall, decision: PolicyDecision, heartbeat: timedelta, task_queue: str | None
    ) -> ModelTaskResult:
        self._phase = "running"
        handle = workflow.start_activity_method(
            ResponsesActivities.create_stateless_response,
            StatelessInput(**call.model_dump(), timeout_s=decision.limits.max_duration_s),
            **activity_options.create_stateless(heartbeat, decision.limits.max_duration_s, task_queue),
        )
        self._running = handle
        await workflow.wait_condition(lambda: self._cancel is not None or handle.done())
        if not handle.done():
            # Cancelling the activity closes the connection: that is how a synchronous call is cancelled.
            await self._stop_and_cancel_at_provider()
            self._phase = "cancelled"
            return self._result(decision, None)
        outcome: StatelessResult = await self._settle(handle)
        self._response_id = outcome.response_id
        self._provider_status = outcome.status
        return self._finish(decision, outcome)

    async def _background(
        self, call: ModelCall, decision: PolicyDecision, heartbeat: timedelta
    ) -> ModelTaskResult:
        """Run generations until one ends in a way the policy does not rerun (usually the first)."""
        while True:
            try:
                result = await self._generation(call, decision, heartbeat)
            except ApplicationError as exc:
                cause = RERUN_FAILURE_TYPES.get(exc.type or "")
                if cause is None or not self._may_rerun(decision, cause):
                    raise
            else:
                cause = result.error_code if result.status == Outcome.FAILED else None
                if cause is None or cause not in RERUN_ERROR_CODES or not self._may_rerun(decision, cause):
                    return result
            call = self._rerun(cause, call)

    def _may_rerun(self, decision: PolicyDecision, cause: str) -> bool:
        limits = decision.limits
        return self._cancel is None and cause in limits.rerun_on and len(self._reruns) < limits.max_reruns

    def _rerun(self, cause: str, call: ModelCall) -> ModelCall:
        """Record the replaced generation; return the call for the next one, marked as a rerun."""
        self._reruns.append(RerunRecord(cause=cause, response_id=self._response_id, at=workflow.now()))
        self._response_id = None
        self._provider_status = None
        return call.model_copy(update={"metadata": {**call.metadata, "lanes_rerun": str(len(self._reruns))}})

    async def _generation(
        self, call: ModelCall, decision: PolicyDecision, heartbeat: timedelta
    ) -> ModelTaskResult:
        """One background generation: create, follow, and cancel on request."""
        assert decision.profile is not None
        self._phase = "starting"
        start = workflow.start_activity_method(
            ResponsesActivities.start_background_response,
            StartBackgroundInput(
                **call.model_dump(),
                stream=decision.profile.stream,
                completion_window=decision.profile.completion_window,
            ),
            **activity_options.start_background(heartbeat),
        )
        self._start = start
        await workflow.wait_condition(lambda: self._cancel is not None or start.done())
        if not start.done():
            await self._stop_and_cancel_at_provider()
            self._phase = "cancelled"
            return self._result(decision, None)
        started = await self._settle(start)
        self._response_id = started.response_id
        self._provider_status = started.status
        if self._cancel is not None:
            await self._stop_and_cancel_at_provider()
            self._phase = "cancelled"
            return self._result(decision, None)

        self._phase = "running"
        response_id = started.response_id
        if response_id in self._finished and workflow.patched(WEBHOOK_PATCH):
            # The webhook came before the create's reply was read: nothing is left to follow.
            self._by_webhook = True
            return await self._harvest(call, decision, response_id, self._finished[response_id])
        profile = decision.profile
        # With webhooks, polls are only the safety net for a lost one: rare, and never before the first
        # interval has passed.
        safety_net_s = profile.webhook_poll_interval_s if profile.webhooks else 0.0
        follow_input = AwaitBackgroundInput(
            tags=call.tags,
            response_id=response_id,
            mode="stream" if profile.stream else "poll",
            cursor=started.cursor,
            poll_interval_cap_s=safety_net_s or decision.limits.poll_interval_cap_s,
            queued_timeout_s=decision.limits.queued_timeout_s,
            min_poll_interval_s=safety_net_s,
        )
        if safety_net_s and follow_input.mode == "poll" and workflow.patched(FOLLOW_PATCH):
            # Wait for the webhook on a timer, not a poll: if it comes, the job costs the provider no
            # request of its own beyond the create.
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self._cancel is not None or response_id in self._finished,
                    timeout=timedelta(seconds=safety_net_s),
                )
            if self._cancel is not None:
                final = await self._stop_and_cancel_at_provider()
                return self._after_cancel(decision, final)
            if response_id in self._finished and workflow.patched(WEBHOOK_PATCH):
                self._by_webhook = True
                return await self._harvest(call, decision, response_id, self._finished[response_id])
        follow = self._start_follow(follow_input, decision, heartbeat, self._options)
        while True:
            self._running = follow
            await workflow.wait_condition(self._follow_wakes(follow, response_id))
            if not follow.done():
                if self._cancel is None and workflow.patched(WEBHOOK_PATCH):
                    # The webhook's outcome ends the wait. The cancel reaches the activity with its next
                    # heartbeat (a check waiting for its next attempt at once); the job does not wait
                    # for it, as the outcome is known and a cancelled follower makes no further request.
                    follow.cancel()
                    self._by_webhook = True
                    return await self._harvest(call, decision, response_id, self._finished[response_id])
                final = await self._stop_and_cancel_at_provider()
                return self._after_cancel(decision, final)
            if not _no_stream_slot(follow):
                break
            # Nobody could take the stream in time: the response is generating, so follow it by polling,
            # which holds no slot, rather than leave it unread.
            job_span.root_span().add_event(
                "lanes.await.mode_switch", {"from": "stream", "to": "poll", "reason": "no_stream_slot"}
            )
            follow = self._start_check(follow_input, decision)
        outcome: AwaitBackgroundResult = await self._settle(follow)
        self._polls += outcome.polls
        self._reconnects += outcome.reconnects
        return await self._harvest(call, decision, response_id, outcome)

    async def _harvest(
        self, call: ModelCall, decision: PolicyDecision, response_id: str, outcome: ProviderOutcome
    ) -> ModelTaskResult:
        """Finish a generation with its terminal outcome, however it arrived (activity or webhook).

        Where the policy says so, the response is deleted at the provider first, on either path.
        """
        self._provider_status = outcome.status
        if decision.delete_after_harvest:
            # The result is in history now: the provider need not keep it for its retention window.
            # (Decisions recorded before this field existed read False, so their replay is unchanged.)
            deleted = await workflow.execute_activity_method(
                ResponsesActivities.delete_background_response,
                DeleteBackgroundInput(tags=call.tags, response_id=response_id),
                **activity_options.DELETE_BACKGROUND,
            )
            self._provider_deleted = deleted.deleted
        return self._finish(decision, outcome)

    def _follow_wakes(self, handle: ActivityHandle[Any], response_id: str) -> Callable[[], bool]:
        """When a wait on a follower ends: a cancel, the follower's end, or a webhook's outcome."""
        return lambda: self._cancel is not None or handle.done() or response_id in self._finished

    def _start_follow(
        self,
        input: AwaitBackgroundInput,
        decision: PolicyDecision,
        heartbeat: timedelta,
        options: ExecutionOptions,
    ) -> ActivityHandle[AwaitBackgroundResult]:
        """Follow a started response: a stream on the stream queue, or polls paced by retries.

        Before :data:`FOLLOW_PATCH`, one long activity on the main queue did both; histories recorded
        then replay that way.
        """
        max_duration_s = decision.limits.max_duration_s
        if not workflow.patched(FOLLOW_PATCH):
            return workflow.start_activity_method(
                ResponsesActivities.await_background_response,
                input,
                **activity_options.await_background(heartbeat, max_duration_s),
            )
        if input.mode == "poll":
            return self._start_check(input, decision)
        return workflow.start_activity_method(
            ResponsesActivities.await_background_response,
            input,
            **activity_options.follow_stream(
                heartbeat,
                max_duration_s,
                task_queues.stream_queue(workflow.info().task_queue),
                timedelta(seconds=options.stream_slot_wait_s),
            ),
        )

    def _start_check(
        self, input: AwaitBackgroundInput, decision: PolicyDecision
    ) -> ActivityHandle[AwaitBackgroundResult]:
        return workflow.start_activity_method(
            ResponsesActivities.check_background_response,
            CheckBackgroundInput(
                tags=input.tags,
                response_id=input.response_id,
                poll_interval_cap_s=input.poll_interval_cap_s,
                queued_timeout_s=input.queued_timeout_s,
                min_poll_interval_s=input.min_poll_interval_s,
            ),
            **activity_options.check_background(
                decision.limits.max_duration_s,
                decision.limits.poll_interval_cap_s,
                task_queues.poll_queue(workflow.info().task_queue),
            ),
        )

    async def _stop_and_cancel_at_provider(self) -> CancelBackgroundResult | None:
        """Stop the running activity, then cancel a started background response at the provider.

        Runs for the signal and for Temporal cancellation alike; it only awaits activities it starts or
        that are already running, so it is safe in an ``except CancelledError`` block.
        """
        self._phase = "cancelling"
        if self._start is not None and not self._start.done():
            # No new attempt of the create may begin; one in flight returns its id, cancelled below.
            self._start.cancel()
            try:
                started = await self._start
            except ActivityError:
                if self._cancel is not None:
                    self._cancel = self._cancel.model_copy(update={"unconfirmed_create": True})
            else:
                self._response_id = started.response_id
        if self._running is not None and not self._running.done():
            self._running.cancel()
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await self._running
        if self._response_id is None or self._decision is None or self._decision.lane != Lane.BACKGROUND:
            return None
        final = await workflow.execute_activity_method(
            ResponsesActivities.cancel_background_response,
            CancelBackgroundInput(tags=DecisionTags.of(self._decision), response_id=self._response_id),
            **activity_options.CANCEL_BACKGROUND,
        )
        self._provider_status = final.provider_status
        return final

    def _after_cancel(
        self, decision: PolicyDecision, final: CancelBackgroundResult | None
    ) -> ModelTaskResult:
        if final is not None and final.outcome is not None:
            return self._finish(decision, final.outcome)
        self._phase = "cancelled"
        return self._result(decision, final.outcome if final else None)

    async def _settle(self, handle: ActivityHandle[Any]) -> Any:
        """Await a finished activity, turning a non-retryable typed failure into this workflow's failure."""
        try:
            return await handle
        except ActivityError as exc:
            self._phase = "failed"
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(
                    cause.message, *cause.details, type=cause.type, non_retryable=True
                ) from exc
            raise

    def _finish(self, decision: PolicyDecision, outcome: ProviderOutcome) -> ModelTaskResult:
        if outcome.status == Outcome.CANCELLED:
            self._phase = "cancelled"
        else:
            self._phase = "completed"
            if self._cancel is not None:
                # The provider finished before the cancel could take effect: the finished result stands.
                self._cancel = self._cancel.model_copy(update={"effective": False})
        return self._result(decision, outcome)

    def _result(self, decision: PolicyDecision, outcome: ProviderOutcome | None) -> ModelTaskResult:
        # Only the provider's outcome fields: subclasses add counters that the workflow sums itself.
        fields: dict[str, Any] = (
            outcome.model_dump(include=OUTCOME_FIELDS) if outcome else {"status": Outcome.CANCELLED}
        )
        return ModelTaskResult(
            **fields,
            lane=decision.lane,
            rule=decision.rule,
            decision=decision,
            response_id=self._response_id,
            cancellation=self._cancel,
            reruns=self._reruns,
            polls=self._polls,
            reconnects=self._reconnects,
            provider_deleted=self._provider_deleted,
            by_webhook=self._by_webhook,
        )

    def _request_cancel(
        self, *, via: Literal["signal", "workflow-cancel"], requested_by: str, reason: str
    ) -> None:
        if self._cancel is None:
            self._cancel = CancellationRecord(
                via=via,
                requested_by=requested_by,
                reason=reason,
                requested_at=workflow.now(),
                phase=self._phase,
            )
