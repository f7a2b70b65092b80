"""The benchmark's worker process: lanes' own workers and the contenders' worker, in one composition root.

    BENCH_SERVE=lanes,contenders BENCH_CONTENDER_QUEUE=bench-contenders python -m bench.worker

lanes runs exactly as ``worker.py`` runs it (:func:`lanes.worker.serving.build_workers` with
:class:`~lanes.settings.Settings` from the environment, connected through ``lanes/connect.py``), so the
benchmark measures the shipped worker; the contenders get a worker of their own on their own task queue,
sized by the same ``LANES_WORKER_*`` tuning and sharing the same OpenAI client. It is a separate process so
the harness can read its RSS and CPU by PID and SIGKILL it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from temporalio.worker import Worker

from bench.naive_polling import NaivePollingWorkflow
from bench.provider_calls import ProviderCalls
from bench.sync_call import SyncCallWorkflow
from lanes.connect import connect, openai_client
from lanes.settings import Settings
from lanes.setup import require_search_attributes
from lanes.telemetry import end_process, setup_tracing, shutdown_telemetry
from lanes.worker.serving import build_workers

READY_LINE = "bench worker ready"
"""Printed to stderr once every worker polls; the harness waits for it."""

SERVE_VARIABLE = "BENCH_SERVE"
"""Comma-separated: ``lanes`` (lanes' workers), ``contenders`` (naive polling and synchronous call)."""

CONTENDER_QUEUE_VARIABLE = "BENCH_CONTENDER_QUEUE"
"""Task queue of the contenders' workflows and activities."""


async def run(serve: set[str], contender_queue: str) -> None:
    """Run the requested workers until SIGTERM or SIGINT."""
    setup_tracing("lanes-worker")
    settings = Settings()
    client = await connect(settings)
    if "lanes" in serve:
        await require_search_attributes(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with openai_client(settings) as provider, contextlib.AsyncExitStack() as running:
        workers: list[Worker] = []
        if "lanes" in serve:
            workers += build_workers(client, settings, provider)
        if "contenders" in serve:
            calls = ProviderCalls(provider)
            workers.append(
                Worker(
                    client,
                    task_queue=contender_queue,
                    workflows=[NaivePollingWorkflow, SyncCallWorkflow],
                    activities=calls.definitions(),
                    **settings.worker.worker_options(),
                )
            )
        for worker in workers:
            await running.enter_async_context(worker)
        queues = ", ".join(worker.task_queue for worker in workers)
        print(f"{READY_LINE} on {queues} (pid {os.getpid()})", file=sys.stderr, flush=True)
        await stop.wait()


def main() -> int:
    """Entry point; returns the exit code."""
    serve = {part.strip() for part in os.environ.get(SERVE_VARIABLE, "lanes,contenders").split(",")}
    unknown = serve - {"lanes", "contenders"}
    if unknown or not serve:
        print(f"{SERVE_VARIABLE}: name lanes, contenders or both; got {sorted(unknown)}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(serve, os.environ.get(CONTENDER_QUEUE_VARIABLE, "bench-contenders")))
    finally:
        shutdown_telemetry()
    return 0


if __name__ == "__main__":
    end_process(main())
