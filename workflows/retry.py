"""Retry policies of the model-task workflow's activities, in one place a reviewer can read.

Temporal owns every retry (the OpenAI client has ``max_retries=0``): each policy here is the whole
retry behaviour of its step. Provider errors that cannot succeed on retry are raised non-retryable by
``activities/errors.py``, and a provider's ``Retry-After`` overrides these intervals for the next try.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy

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
