"""The worker's wiring: one Temporal worker per task queue of the lanes this process serves.

``python worker.py`` and ``lanes worker`` call :func:`main`. It reads :class:`~lanes.settings.Settings` from
the environment, installs tracing and metrics (a Prometheus endpoint with ``LANES_PROMETHEUS_BIND``),
connects through :mod:`lanes.connect`, loads the policy (failing at start, not at the first job, if it is
malformed), and runs the workflows (from the client's :class:`~lanes.plugin.LanesPlugin`) with the policy
and Responses activities until SIGTERM or SIGINT. Tests and the embedded stack use :func:`serving`.

Shutdown is graceful: running await activities are told, heartbeat their cursor and fail retryably, so
another worker resumes them at once instead of after a heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import traceback
from collections.abc import AsyncIterator

import openai
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import Worker

from activities.endpoint_clients import EndpointClients
from activities.policy import PolicyActivities
from activities.responses import ResponsesActivities
from lanes.codec import encrypts
from lanes.connect import connect, endpoint_clients
from lanes.errors import ConfigurationError, WorkerConfigError
from lanes.settings import Settings, configuration_message
from lanes.setup import require_search_attributes
from lanes.telemetry import configure_logging, setup_tracing, shutdown_telemetry
from lanes.worker.health import keep_alive
from lanes.worker.metrics import setup_metrics
from policy import PolicyError, PolicySource
from workflows.task_queues import poll_queue, stream_queue

READY_LINE = "lanes worker ready"
"""Printed to stderr once polling starts; the embedded stack waits for it."""


def _separate_stateless_queue(settings: Settings, task_queue: str) -> str | None:
    queue = settings.stateless_task_queue
    return queue if queue and queue != task_queue else None


def _clients(provider: openai.AsyncOpenAI | EndpointClients) -> EndpointClients:
    return provider if isinstance(provider, EndpointClients) else EndpointClients.default_only(provider)


def build_main_worker(
    client: Client,
    settings: Settings,
    provider: openai.AsyncOpenAI | EndpointClients,
    *,
    task_queue: str | None = None,
) -> Worker:
    """Wire the workflows, the policy activity and the Responses activities onto the main task queue.

    Only the main queue: a background job on it alone would wait forever for its follower, which runs
    on the stream or poll queue. Run :func:`build_workers` (production) or :func:`serving` (tests and
    embedded use), which start all three.

    The stateless activity is left out when ``settings.stateless_task_queue`` gives it a queue of its
    own (:func:`build_stateless_worker` serves that one). Sizing comes from ``settings.worker``.

    Args:
        client: A client from :func:`lanes.connect.connect` (its plugins apply to the worker).
        settings: Policy path, task queues and tuning.
        provider: The provider clients the activities own, one per policy endpoint (from
            :func:`lanes.connect.endpoint_clients`), or one OpenAI client for the default endpoint
            only (:func:`lanes.connect.openai_client`); the caller closes them after the worker stops.
        task_queue: Overrides ``settings.task_queue`` (tests use a fresh queue each).

    Returns:
        A worker, not yet running.
    """
    queue = task_queue or settings.task_queue
    policy_source = PolicySource(settings.policy_path, trust=settings.policy_trust())
    policy_source.current()  # a malformed policy stops the worker now, with the file's errors
    clients = _clients(provider)
    responses = ResponsesActivities(clients)
    policy = PolicyActivities(policy_source, payloads_encrypted=encrypts(client), endpoints=clients)
    activities = responses.definitions()
    if _separate_stateless_queue(settings, queue):
        activities = [a for a in activities if a != responses.create_stateless_response]
    return Worker(
        client,
        task_queue=queue,
        activities=[policy.evaluate_policy, *activities],
        **settings.worker.worker_options(),
    )


def build_stream_worker(
    client: Client,
    settings: Settings,
    provider: openai.AsyncOpenAI | EndpointClients,
    *,
    task_queue: str | None = None,
) -> Worker:
    """A worker for followed streams: the await activity only, on the stream queue of ``task_queue``.

    A followed stream holds its slot for the whole generation; on a queue of its own, with its own slot
    count (``LANES_WORKER_MAX_CONCURRENT_STREAMS``), streams never hold the slots that new jobs' short
    activities need (:mod:`workflows.task_queues`).
    """
    queue = stream_queue(task_queue or settings.task_queue)
    responses = ResponsesActivities(_clients(provider))
    return Worker(
        client,
        task_queue=queue,
        activities=[responses.await_background_response],
        **settings.worker.stream_worker_options(),
    )


def build_poll_worker(
    client: Client,
    settings: Settings,
    provider: openai.AsyncOpenAI | EndpointClients,
    *,
    task_queue: str | None = None,
) -> Worker:
    """A worker for poll-mode checks: the check activity only, on the poll queue of ``task_queue``.

    Each check is one short GET, but thousands of waiting jobs make hundreds a second; on a queue of
    their own, with their own slots (``LANES_WORKER_MAX_CONCURRENT_POLLS``), they never delay a new job's
    decision (:mod:`workflows.task_queues`).
    """
    queue = poll_queue(task_queue or settings.task_queue)
    responses = ResponsesActivities(_clients(provider))
    return Worker(
        client,
        task_queue=queue,
        activities=[responses.check_background_response],
        **settings.worker.poll_worker_options(),
    )


@contextlib.asynccontextmanager
async def serving(
    client: Client,
    settings: Settings,
    provider: openai.AsyncOpenAI | EndpointClients,
    *,
    task_queue: str | None = None,
) -> AsyncIterator[str]:
    """Run the workers of the background lane (main, stream and poll queues) for the block.

    Yields:
        The main task queue.
    """
    queue = task_queue or settings.task_queue
    async with (
        build_main_worker(client, settings, provider, task_queue=queue),
        build_stream_worker(client, settings, provider, task_queue=queue),
        build_poll_worker(client, settings, provider, task_queue=queue),
    ):
        yield queue


def build_stateless_worker(
    client: Client, settings: Settings, provider: openai.AsyncOpenAI | EndpointClients
) -> Worker:
    """A worker for the stateless lane's queue: the ``store=false`` activity only.

    It runs no workflows (jobs start on ``LANES_TASK_QUEUE``): the client's plugin leaves them out on this
    queue (:func:`workflows.task_queues.runs_workflows`).

    Raises:
        WorkerConfigError: ``LANES_STATELESS_TASK_QUEUE`` is unset.
    """
    queue = settings.stateless_task_queue
    if not queue:
        raise WorkerConfigError(
            "LANES_WORKER_LANES=stateless needs LANES_STATELESS_TASK_QUEUE: the stateless lane's own "
            "task queue (set the same value for the clients that start jobs)"
        )
    responses = ResponsesActivities(_clients(provider))
    return Worker(
        client,
        task_queue=queue,
        activities=[responses.create_stateless_response],
        **settings.worker.worker_options(),
    )


def build_workers(
    client: Client, settings: Settings, provider: openai.AsyncOpenAI | EndpointClients
) -> list[Worker]:
    """The workers of this process, one per task queue of the lanes it serves (``LANES_WORKER_LANES``).

    Raises:
        WorkerConfigError: The served lanes need a queue that is not configured.
    """
    lanes = settings.worker.lanes
    workers = []
    if "background" in lanes:
        workers.append(build_main_worker(client, settings, provider))
        workers.append(build_stream_worker(client, settings, provider))
        workers.append(build_poll_worker(client, settings, provider))
    separate = _separate_stateless_queue(settings, settings.task_queue)
    if "stateless" in lanes and (separate or "background" not in lanes):
        workers.append(build_stateless_worker(client, settings, provider))
    return workers


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def run(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT."""
    setup_tracing("lanes-worker", trace_queries=settings.trace_queries)
    # Before the first client: Temporal's core records its metrics into the default runtime this sets.
    metrics_pipeline = setup_metrics("lanes-worker", settings)
    client = await connect(settings)
    if "background" in settings.worker.lanes:
        # The workflows upsert lanes' search attributes: without them every workflow task would fail.
        await require_search_attributes(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    address = client.service_client.config.target_host
    # One client per endpoint of the policy in force at start; a missing key stops the worker here.
    policy = PolicySource(settings.policy_path).current()
    async with endpoint_clients(settings, policy) as provider, contextlib.AsyncExitStack() as running:
        if metrics_pipeline is not None:
            await running.enter_async_context(metrics_pipeline.temporal_metrics())
        workers = build_workers(client, settings, provider)
        for worker in workers:
            await running.enter_async_context(worker)
        queues = ", ".join(repr(worker.task_queue) for worker in workers)
        if settings.worker.health_file is not None:
            alive = asyncio.create_task(keep_alive(settings.worker.health_file))
            running.push_async_callback(_cancel, alive)
        print(f"{READY_LINE} on task queue {queues} at {address}", file=sys.stderr)
        await stop.wait()


CONFIGURATION_ERRORS: tuple[type[Exception], ...] = (ConfigurationError, PolicyError, ValidationError)
"""Errors that mean "fix the configuration": lanes' own (:class:`~lanes.errors.ConfigurationError`), the
pure policy engine's, and a malformed setting (pydantic's, named by :func:`configuration_message`). One
line naming what and how; anything else is a bug and keeps its traceback."""


def main() -> int:
    """Entry point of ``python worker.py`` and ``lanes worker``; returns the exit code."""
    try:
        settings = Settings()
        configure_logging(settings.log_level)
        asyncio.run(run(settings))
    except CONFIGURATION_ERRORS as exc:
        message = configuration_message(exc) if isinstance(exc, ValidationError) else str(exc)
        print(f"lanes worker: {message}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        # Every exit path (SIGTERM, SIGINT, errors) exports the last spans before os._exit skips atexit.
        shutdown_telemetry()
    return 0
