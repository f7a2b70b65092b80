"""Capacity at one large size: N in-flight poll-mode jobs in one worker process, measured at steady state.

    python -m bench.steady_capacity --jobs 10000 --policy bench/capacity_policy.toml

Unlike ``python -m bench capacity``, which steps through levels and stops at the first that misses a
goal, this run goes straight to ``--jobs`` held jobs (the emulator's ``hold`` fault: they generate and
never end while measured) on the embedded stack (``lanes/dev/stack.py``: dev server, emulator, one
``python worker.py``), waits ``--settle`` seconds after the last create, then measures for
``--window`` seconds: the worker's CPU (by PID, in cores) and RSS, provider requests per second from the
emulator's ledger (and so CPU per request), and, from ``--probes`` short stateless jobs started one by
one, how long a new job waits for its policy decision (workflow start to the policy activity's start,
from history). It prints one line of figures; nothing is typed in.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

import psutil
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.stats import Summary
from lanes.connect import connect
from lanes.dev.stack import EmbeddedStack
from workflows.model_task import ModelTaskInput, ModelTaskWorkflow

QUEUE = "steady-capacity"


async def _hold(client: Client, jobs: int, tag: str, job_type: str) -> None:
    gate = asyncio.Semaphore(100)

    async def start(index: int) -> None:
        async with gate:
            await client.start_workflow(
                ModelTaskWorkflow.run,
                ModelTaskInput(
                    job_type=job_type,
                    data_class="internal",
                    input=f"capacity load {index}",
                    metadata={"emulator_duration": "600", "emulator_fault": "hold", "capacity": tag},
                ),
                id=f"capacity-{tag}-{index}",
                task_queue=QUEUE,
            )

    await asyncio.gather(*(start(i) for i in range(jobs)))


async def _decision_wait_s(client: Client, tag: str, index: int) -> float:
    """Start a short stateless job, wait for it, and return its wait for the policy decision."""
    handle = await client.start_workflow(
        ModelTaskWorkflow.run,
        ModelTaskInput(job_type="support_analysis", data_class="confidential", input="capacity probe"),
        id=f"capacity-probe-{tag}-{index}",
        task_queue=QUEUE,
    )
    await handle.result()
    started = None
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            started = event.event_time.ToDatetime()
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED and started is not None:
            return (event.event_time.ToDatetime() - started).total_seconds()
    raise RuntimeError(f"probe {handle.id} has no started policy activity")


async def run(args: argparse.Namespace) -> None:
    tag = uuid.uuid4().hex[:8]
    stack = EmbeddedStack(
        state_dir=Path(args.state_dir), persistent=False, task_queue=QUEUE, policy_path=args.policy
    )
    async with stack:
        assert stack.worker is not None
        assert stack.worker.pid is not None
        worker = psutil.Process(stack.worker.pid)
        client = await connect(stack.settings)
        ledger = stack.emulator.ledger
        began = time.monotonic()
        await _hold(client, args.jobs, tag, args.job_type)
        print(f"submitted {args.jobs} jobs in {time.monotonic() - began:.0f} s", flush=True)
        # The emulator's ledger is plain state, not an event source: look once a second.
        while len([e for e in ledger.creates() if e.metadata.get("capacity") == tag]) < args.jobs:  # noqa: ASYNC110
            await asyncio.sleep(1)
        created_s = time.monotonic() - began
        print(f"all {args.jobs} responses created after {created_s:.0f} s", flush=True)
        await asyncio.sleep(args.settle)
        cpu0, entries0, t0 = worker.cpu_times(), len(ledger), time.monotonic()
        waits = Summary.of([await _decision_wait_s(client, tag, i) for i in range(args.probes)])
        assert waits is not None
        await asyncio.sleep(max(0.0, args.window - (time.monotonic() - t0)))
        cpu1, entries1, t1 = worker.cpu_times(), len(ledger), time.monotonic()
        cores = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0)
        requests_per_s = (entries1 - entries0) / (t1 - t0)
        rss_mib = worker.memory_info().rss / 2**20
        generations = len({e.metadata.get("lanes_workflow_id") for e in ledger.generations()})
        stack.emulator.release(metadata={"capacity": tag})
        print(
            f"in-flight={args.jobs} mode=poll job_type={args.job_type} "
            f"start_rate={args.jobs / created_s:.1f}/s worker_cpu={cores:.2f} cores "
            f"worker_rss={rss_mib:.0f} MiB provider_requests={requests_per_s:.0f}/s "
            f"cpu_per_request={cores / max(requests_per_s, 1e-9) * 1000:.1f} ms "
            f"decision_wait p50={waits.p50:.3f} s p95={waits.p95:.3f} s max={waits.max:.3f} s "
            f"jobs_generated={generations}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.steady_capacity", description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000, help="in-flight poll-mode jobs to hold")
    parser.add_argument("--job-type", default="coding_analysis", help="a poll-mode job type of the policy")
    parser.add_argument("--policy", default=None, help="policy file of the worker (default: the shipped one)")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds after the last create")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--probes", type=int, default=20, help="short jobs timed for their decision (>= 1)")
    parser.add_argument("--state-dir", default=".lanes/steady-capacity", help="the stack's state directory")
    args = parser.parse_args()
    if args.jobs < 1 or args.probes < 1:
        parser.error(f"--jobs and --probes must be at least 1; got {args.jobs} and {args.probes}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
