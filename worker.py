"""The lanes worker: a composition root with no business logic.

    python worker.py        # or: lanes worker

Reads :class:`~client.settings.Settings` from the environment, installs tracing, connects through
``client/connect.py``, loads the policy (failing at start, not at the first job, if it is malformed),
and runs the workflows (from the client's :class:`~client.plugin.LanesPlugin`) with the policy and
Responses activities until SIGTERM or SIGINT.
Shutdown is graceful: running await activities are told, heartbeat their cursor and fail retryably, so
another worker resumes them at once instead of after a heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from datetime import timedelta

import openai
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import Worker

from activities.policy import PolicyActivities
from activities.responses import ResponsesActivities
from client.codec import encrypts
from client.connect import ProviderNotConfiguredError, TemporalUnreachableError, connect, openai_client
from client.settings import Settings
from client.telemetry import configure_logging, setup_tracing, shutdown_telemetry
from policy import PolicyError, PolicySource

GRACEFUL_SHUTDOWN = timedelta(seconds=5)
"""How long running activities get to hand over on shutdown before they are cancelled."""

READY_LINE = "lanes worker ready"
"""Printed to stderr once polling starts; the embedded stack waits for it."""


def build_worker(
    client: Client, settings: Settings, provider: openai.AsyncOpenAI, *, task_queue: str | None = None
) -> Worker:
    """Wire the activities and workflows onto a worker.

    Args:
        client: A client from :func:`client.connect.connect` (its plugins apply to the worker).
        settings: Policy path and task queue.
        provider: The OpenAI client the activities own (from :func:`client.connect.openai_client`); the
            caller closes it after the worker stops.
        task_queue: Overrides ``settings.task_queue`` (tests use a fresh queue each).

    Returns:
        A worker, not yet running.
    """
    policy_source = PolicySource(settings.policy_path)
    policy_source.current()  # a malformed policy stops the worker now, with the file's errors
    responses = ResponsesActivities(provider)
    policy = PolicyActivities(policy_source, payloads_encrypted=encrypts(client))
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        activities=[policy.evaluate_policy, *responses.definitions()],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def run(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT."""
    setup_tracing("lanes-worker")
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with openai_client(settings) as provider, build_worker(client, settings, provider) as worker:
        print(
            f"{READY_LINE} on task queue {worker.task_queue!r} at {settings.temporal_address}",
            file=sys.stderr,
        )
        await stop.wait()


CONFIGURATION_ERRORS: tuple[type[Exception], ...] = (
    TemporalUnreachableError,
    ProviderNotConfiguredError,
    PolicyError,
    ValidationError,
)
"""Errors that mean "fix the configuration": one line naming what and how. Anything else is a bug and
keeps its traceback."""


def main() -> int:
    """Entry point of ``python worker.py`` and ``lanes worker``; returns the exit code."""
    try:
        settings = Settings()
        configure_logging(settings.log_level)
        asyncio.run(run(settings))
    except CONFIGURATION_ERRORS as exc:
        print(f"lanes worker: {exc}", file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        # Every exit path (SIGTERM, SIGINT, errors) exports the last spans before os._exit skips atexit.
        shutdown_telemetry()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    sys.stdout.flush()
    # The Temporal core's threads can abort CPython's finalisation; exit without it once all is shut down.
    os._exit(code)
