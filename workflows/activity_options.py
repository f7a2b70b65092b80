"""Timeouts, retries and cancellation of every activity of the model-task workflow, in one table.

Temporal owns every retry (the OpenAI client has ``max_retries=0``): each policy here is the whole
retry behaviour of its step. Provider errors that cannot succeed on retry are raised non-retryable by
``activities/errors.py``, and a provider's ``Retry-After`` overrides these intervals for the next try.

Each step's options are a :class:`temporalio.workflow.ActivityConfig` that the workflow spreads into
``start_activity_method``, so a reviewer reads all of them here rather than at five call sites. Steps
whose bounds depend on the job (its heartbeat timeout, its job type's maximum duration) are functions.
Each carries a ``summary``, which the Temporal UI shows for the activity: what the step does, in words,
never anything of the job's text.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType, ActivityConfig

POLICY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
)
"""Evaluating policy only fails if the worker cannot read its policy file; a few tries, then fail loudly."""

PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=8,
)
"""Creates and cancels: transient provider errors (429, 5xx, resets) back off up to a minute apart."""

AWAIT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
)
"""Following a background response: retried without an attempt limit (its schedule-to-close timeout
bounds it) because each retry resumes from the last heartbeat and costs no generation. The short first
interval lets another worker take over quickly after a graceful shutdown."""

STATELESS_GRACE = timedelta(seconds=30)
"""Added to a synchronous call's own timeout, so the provider's timeout fires before Temporal's."""

AWAIT_RETRY_WINDOW = timedelta(seconds=300)
"""How long past its maximum duration a followed response may still be retried into (a crash near the
end must not lose a finished result)."""

EVALUATE_POLICY: ActivityConfig = {
    "summary": "decide the lane: evaluate the policy for the job type and data class",
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": POLICY_RETRY,
}
"""``evaluate_policy``: local file read and a pure function; 30 s is generous."""

CANCEL_BACKGROUND: ActivityConfig = {
    "summary": "cancel the response at the provider, then re-read it until it settles",
    "start_to_close_timeout": timedelta(seconds=90),
    "heartbeat_timeout": timedelta(seconds=30),
    "retry_policy": PROVIDER_RETRY,
}
"""``cancel_background_response``: a cancel plus re-reads until terminal (up to 30 s of settling)."""


DELETE_BACKGROUND: ActivityConfig = {
    "summary": "delete the provider's stored copy (the data class's delete_after_harvest)",
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": PROVIDER_RETRY,
}
"""``delete_background_response``: one DELETE, retried like a create."""


def start_background(heartbeat: timedelta) -> ActivityConfig:
    """``start_background_response``: one create, heartbeating while it is in flight.

    A cancel waits for the attempt in flight (``WAIT_CANCELLATION_COMPLETED``): the activity never
    abandons a create whose response would then exist with no id to cancel it by; a create waiting for
    its next retry is cancelled at once.
    """
    return {
        "summary": "create the background response (background=true, store=true)",
        "start_to_close_timeout": timedelta(seconds=60),
        "heartbeat_timeout": heartbeat,
        "retry_policy": PROVIDER_RETRY,
        "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }


def await_background(heartbeat: timedelta, max_duration_s: float) -> ActivityConfig:
    """``await_background_response``: as long as the job type allows, heartbeating its cursor."""
    return {
        "summary": "follow the background response to its end",
        "start_to_close_timeout": timedelta(seconds=max_duration_s),
        "schedule_to_close_timeout": timedelta(seconds=max_duration_s) + AWAIT_RETRY_WINDOW,
        "heartbeat_timeout": heartbeat,
        "retry_policy": AWAIT_RETRY,
        "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }


CHECK_RETRY_FLOOR = timedelta(seconds=1)
"""Retry interval of a poll attempt that failed for a reason other than "not yet" (a provider error
without ``Retry-After``); "not yet" sets its own delay, the next poll interval."""


def check_background(max_duration_s: float, cap_s: float, task_queue: str) -> ActivityConfig:
    """``check_background_response``: one GET per attempt, paced by the retry policy, on the poll queue.

    Each attempt is short (one request); "not yet" is a benign failure carrying the next poll interval,
    so the attempts go on without an attempt limit until the job type's maximum duration (plus the retry
    window) runs out. No heartbeat: an attempt is a single request bounded by its start-to-close timeout.
    """
    return {
        "summary": "poll the background response (one GET per attempt; retries pace the polls)",
        # One GET with a 10 s timeout: a worker killed mid-poll delays the next poll by at most this.
        "start_to_close_timeout": timedelta(seconds=15),
        "schedule_to_close_timeout": timedelta(seconds=max_duration_s) + AWAIT_RETRY_WINDOW,
        "retry_policy": RetryPolicy(
            initial_interval=CHECK_RETRY_FLOOR,
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=max(cap_s, CHECK_RETRY_FLOOR.total_seconds())),
        ),
        "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        "task_queue": task_queue,
    }


def follow_stream(
    heartbeat: timedelta, max_duration_s: float, task_queue: str, slot_wait: timedelta
) -> ActivityConfig:
    """``await_background_response`` in stream mode: on the stream task queue, with its own slots.

    A followed stream holds a slot and a connection for the whole generation, so it runs on a queue of
    its own (:func:`workflows.task_queues.stream_queue`): short activities on the main queue never wait
    behind it. If no stream slot frees up within ``slot_wait`` (the job's ``stream_slot_wait_s``) the
    attempt times out (schedule-to-start timeouts are not retried) and the workflow follows the response by
    polling: it is already generating, and nobody may be left not following it.
    """
    return {
        **await_background(heartbeat, max_duration_s),
        "summary": "follow the background response's stream to its end",
        "task_queue": task_queue,
        "schedule_to_start_timeout": slot_wait,
    }


def create_stateless(
    heartbeat: timedelta, max_duration_s: float, task_queue: str | None = None
) -> ActivityConfig:
    """``create_stateless_response``: one synchronous call; cancelling it closes the connection.

    ``task_queue`` is the stateless lane's own queue from the job's input (``None``: the workflow's).
    """
    config: ActivityConfig = {
        "summary": "one synchronous call on the stateless lane (store=false)",
        "start_to_close_timeout": timedelta(seconds=max_duration_s) + STATELESS_GRACE,
        "heartbeat_timeout": heartbeat,
        "retry_policy": PROVIDER_RETRY,
        "cancellation_type": ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    }
    if task_queue is not None:
        config["task_queue"] = task_queue
    return config
