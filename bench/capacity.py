"""The capacity section: how many in-flight background jobs one worker process holds.

Runnable alone, at full size, while lanes' poll mode changes (``python -m bench capacity --mode poll
--jobs 10000``): lanes is driven only through its public API and the worker is measured by PID.

The worker serves lanes alone on its own task queue. Load jobs are held by the emulator (``hold``: they
generate and never end until released), so the in-flight count is exactly what the harness chose. The
same short probe jobs run first with nothing in flight, then at each level while the load waits: their
detection lag and their wait for a policy decision are what a user would feel. A level holds when the
probes' p95 decision wait is at most 1 s, the worker's RSS at most 1 GiB and the probes' p95 lag within
the mode's limit: 1 s in stream and webhook mode; in poll mode, 1 s above the same probes' lag with
nothing in flight, because a poll-mode probe's lag is mostly its own poll schedule, which load must not
stretch (the poll-mode goal on lag, 10% of job time, is measured on real jobs in the duration section).
The section stops at the first level that does not hold, and names the criteria and the resource behind
them.

Poll-mode load settles before it is measured: a fresh job polls fast (0.5 s, growing 1.5x to its job
type's cap), so right after a ramp the worker is busier than it will be. Each level waits at least
``SETTLE_S``, then until the worker's task queues have drained (:func:`settle`); the load in flight at
the end (the last level, held or not) is measured again once its newest job's interval has reached the
cap (the steady row), which is the "at steady state" of the capacity goal. Poll-mode load uses the job type
``bench_poll_long`` (``bench/policy.toml``): a cap of 120 s, the largest for which a 20-minute job's lag
stays within 10% of its time. The worker CPU per provider request is printed at every level, so the cost
of another cap follows: jobs / cap x CPU per request.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Sequence

import psutil
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from activities.poll_schedule import JITTER, elapsed_interval_s, nominal_interval_s
from bench.contenders import CAPACITY_JOB_TYPES, Contender, start
from bench.emulator_admin import EmulatorAdmin
from bench.job_record import JobRecord, collect, run_job
from bench.results import CapacityFigures, CapacityLevel
from bench.stack import POLICY, BenchStack, ChildProcess
from bench.stats import Summary
from policy.loading import load_policy
from workflows.task_queues import poll_queue, stream_queue

LAG_LIMIT_S = 1.0
"""Stream and webhook mode: the probes' p95 lag; poll mode: what load may add to it."""
DECISION_LIMIT_S = 1.0
RSS_LIMIT_MIB = 1024.0
LOAD_DURATION_S = 3600.0
"""Emulator duration of a load job; it is held anyway, so it never ends while measured."""
PROBE_DURATION_S = 2.0
START_CONCURRENCY = 64
"""Load jobs being started at once."""
SETTLE_S = {Contender.POLL: 30.0, Contender.STREAM: 5.0, Contender.WEBHOOK: 5.0}
"""Least wait between a level's last create and its measurement."""
SETTLED_BACKLOG = 10
"""A level is measured once none of the worker's task queues has more tasks waiting than this (or
``SETTLE_MAX_S`` has passed): the ramp's own work (first workflow tasks, creates, a fresh job's fast
polls) is done, and what is measured is the load waiting, not the load arriving."""
SETTLE_MAX_S = 300.0
"""Longest wait for the backlog to drain; a level that never drains is measured anyway (and breaks)."""


def poll_cap_s(job_type: str = CAPACITY_JOB_TYPES[Contender.POLL]) -> float:
    """The ``poll_interval_cap_s`` of ``job_type`` in the benchmark's policy."""
    return load_policy(POLICY).document.job_types[job_type].limits.poll_interval_cap_s


def ramp_to_cap_s(cap_s: float) -> float:
    """Seconds from a poll-mode job's first poll until its interval reaches ``cap_s`` (no jitter)."""
    elapsed, polls = 0.0, 1
    while (interval := nominal_interval_s(polls, cap_s)) < cap_s:
        elapsed += interval
        polls += 1
    return elapsed


async def backlog(client: Client, queue: str) -> int:
    """Tasks waiting in ``queue`` and its stream and poll queues, by the server's approximate count.

    Workflow and activity tasks of the main queue, activity tasks of the other two.
    """
    found = 0
    kinds = [
        (queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        (queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        (stream_queue(queue), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        (poll_queue(queue), TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    ]
    for name, kind in kinds:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=name),
                task_queue_type=kind,
                report_stats=True,
            )
        )
        found += described.stats.approximate_backlog_count
    return found


async def settle(client: Client, queue: str, least_s: float, most_s: float = SETTLE_MAX_S) -> float:
    """Wait ``least_s``, then until the worker's queues have drained; returns the seconds waited.

    Drained: at most ``SETTLED_BACKLOG`` tasks waiting (observed state, not a fixed sleep), or ``most_s``
    passed.
    """
    began = time.monotonic()
    await asyncio.sleep(least_s)
    while time.monotonic() - began < most_s:
        if await backlog(client, queue) <= SETTLED_BACKLOG:
            break
        await asyncio.sleep(2.0)
    return time.monotonic() - began


def lag_limit_s(mode: Contender, unloaded_p95_s: float | None) -> float:
    """The probes' p95 lag a level may reach in ``mode``, given their p95 with nothing in flight.

    In poll mode a probe's own lag is anything from 0 to the poll interval in effect when it ends (with
    jitter): that worst case, or the unloaded p95 if higher, plus ``LAG_LIMIT_S``. A few probes with
    nothing in flight may all end just before a poll, so their p95 alone would be too tight a base.
    """
    if mode == Contender.POLL:
        own = elapsed_interval_s(PROBE_DURATION_S, poll_cap_s()) * (1 + JITTER)
        return max(own, unloaded_p95_s or 0.0) + LAG_LIMIT_S
    return LAG_LIMIT_S


def default_levels(jobs: int) -> list[int]:
    """100, 250, 500, 1000, 2500, 5000, ... below ``jobs``, then ``jobs`` itself.

    Raises:
        ValueError: ``jobs`` is below 1.
    """
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1; got {jobs}")
    levels = []
    for scale in (1, 10, 100, 1000):
        for step in (100, 250, 500):
            if step * scale < jobs:
                levels.append(step * scale)
    return [*sorted(set(levels)), jobs]


def worker_tuning(max_in_flight: int) -> dict[str, str]:
    """``LANES_WORKER_*`` of the capacity worker.

    The operator's from the environment; else the defaults, but with a stream slot for every in-flight
    job, so that stream mode's limit found is a resource's, not a default's (poll and webhook mode hold
    no slot while they wait, and new jobs' short activities have the main queue's slots to themselves).
    """
    given = {k: v for k, v in os.environ.items() if k.startswith("LANES_WORKER_")}
    given.setdefault("LANES_WORKER_MAX_CONCURRENT_STREAMS", str(max_in_flight + 100))
    return given


def _cpu_seconds(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


def name_limit(level: CapacityLevel, mode: str, unloaded_lag_s: float | None = None) -> str:
    """The resource most likely behind a level that broke, from what was measured during it."""
    causes = []
    lag_broke = any("lag" in reason for reason in level.broke)
    decision_broke = any("decision" in reason for reason in level.broke)
    if mode == Contender.POLL.value and lag_broke and not decision_broke:
        unloaded = "" if unloaded_lag_s is None else f" ({unloaded_lag_s:.2f} s with nothing in flight)"
        causes.append(f"polls came late: the probes' lag grew over their own poll schedule's{unloaded}")
    if level.worker_cpu_percent >= 85:
        causes.append(f"worker CPU ({level.worker_cpu_percent:.0f}% of its one event loop's core)")
    if (level.server_cpu_percent or 0) >= 85:
        causes.append(f"the Temporal dev server ({level.server_cpu_percent:.0f}% of a core)")
    if (level.emulator_cpu_percent or 0) >= 85:
        causes.append(f"the emulator ({level.emulator_cpu_percent:.0f}% of a core)")
    if level.machine_cpu_percent >= 90:
        causes.append(f"the machine's cores ({level.machine_cpu_percent:.0f}% busy, shared by every process)")
    if (
        mode == Contender.STREAM.value
        and level.open_streams is not None
        and level.open_streams < 0.95 * level.reached
    ):
        causes.append(f"connections ({level.open_streams} streams open for {level.reached} jobs)")
    if level.worker_rss_mib > RSS_LIMIT_MIB:
        causes.append(f"memory ({level.worker_rss_mib:.0f} MiB)")
    if level.reached < level.in_flight:
        causes.append("start throughput or slots (not every load job reached its provider)")
    if not causes:
        causes.append(
            "Temporal task latency (no process saturated: worker "
            f"{level.worker_cpu_percent:.0f}%, server {level.server_cpu_percent or 0:.0f}% of a core)"
        )
    return "; ".join(causes)


async def _start_load(
    client: Client, mode: Contender, *, first: int, last: int, queue: str, phase: str
) -> None:
    gate = asyncio.Semaphore(START_CONCURRENCY)

    async def one(index: int) -> None:
        async with gate:
            await start(
                client,
                mode,
                job_id=f"{phase}-load-{index}",
                task_queue=queue,
                phase=phase,
                duration_s=LOAD_DURATION_S,
                fault="hold",
                job_type=CAPACITY_JOB_TYPES[mode],
            )

    await asyncio.gather(*(one(i) for i in range(first, last)))


async def _held(admin: EmulatorAdmin, target: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    held = 0
    while time.monotonic() < deadline:
        held = int((await admin.health())["held_responses"])
        if held >= target:
            return held
        await asyncio.sleep(0.5)
    return held


async def measure_level(
    client: Client,
    stack: BenchStack,
    worker: ChildProcess,
    *,
    mode: Contender,
    level: int,
    reached: int,
    queue: str,
    window_s: float,
    probes: int,
    lag_limit: float,
    settled_s: float = 0.0,
) -> CapacityLevel:
    """Measure one level: RSS, CPU and provider work over ``window_s`` while ``probes`` short jobs run.

    ``lag_limit`` is the probes' p95 lag above which the level broke (:func:`lag_limit_s`);
    ``settled_s``, how long the load had settled before, is recorded with the level.
    """
    admin = stack.admin
    assert admin is not None
    processes = {
        "worker": worker.ps(),
        "server": stack.server_process(),
        "emulator": stack.emulator.ps() if stack.emulator is not None else None,
    }
    work_before = await admin.health()
    before = {name: _cpu_seconds(p) for name, p in processes.items()}
    psutil.cpu_percent(None)
    started = time.monotonic()
    phase = f"capacity-{mode.value.replace(' ', '-')}-probe-{level}-{int(settled_s)}"
    records = [
        JobRecord(
            contender=mode.value,
            job_id=f"{phase}-{i}",
            phase=phase,
            duration_s=PROBE_DURATION_S,
            submitted_at=0,
        )
        for i in range(probes)
    ]

    async def probe(index: int, record: JobRecord) -> None:
        await asyncio.sleep(index * window_s / max(1, probes))
        starter = functools.partial(
            start,
            client,
            mode,
            job_id=record.job_id,
            task_queue=queue,
            phase=phase,
            duration_s=PROBE_DURATION_S,
            job_type=CAPACITY_JOB_TYPES[mode],
        )
        await run_job(record, starter, timeout_s=PROBE_DURATION_S + 120)

    probing = asyncio.gather(*(probe(i, r) for i, r in enumerate(records)))
    await asyncio.sleep(window_s)
    elapsed = time.monotonic() - started
    after = {name: _cpu_seconds(p) for name, p in processes.items()}
    machine = psutil.cpu_percent(None)
    rss = processes["worker"].memory_info().rss / 2**20 if processes["worker"] else 0.0
    health = await admin.health()
    requests_per_s = (int(health["requests"]) - int(work_before["requests"])) / elapsed
    events_per_s = (int(health["stream_events_sent"]) - int(work_before["stream_events_sent"])) / elapsed
    await probing
    await collect(client, admin, records, ledger=False)

    def percent(name: str) -> float | None:
        b, a = before[name], after[name]
        return None if a is None or b is None else (a - b) / elapsed * 100

    done = [r for r in records if r.outcome == "completed"]
    result = CapacityLevel(
        in_flight=level,
        reached=reached,
        worker_rss_mib=rss,
        worker_cpu_percent=percent("worker") or 0.0,
        server_cpu_percent=percent("server"),
        emulator_cpu_percent=percent("emulator"),
        machine_cpu_percent=machine,
        open_streams=int(health["open_streams"]),
        probe_lag_s=Summary.of([lag for r in done if (lag := r.lag_s) is not None]),
        probe_decision_s=Summary.of([w for r in records if (w := r.decision_wait_s) is not None]),
        probes=len(records),
        probes_completed=len(done),
        settled_s=settled_s,
        provider_requests_per_s=requests_per_s,
        stream_events_per_s=events_per_s,
        lag_limit_s=lag_limit,
    )
    if reached < level:
        result.broke.append(f"only {reached} of {level} load jobs reached the provider")
    if result.probe_lag_s is None or result.probe_lag_s.p95 > lag_limit:
        measured = "none finished" if result.probe_lag_s is None else f"{result.probe_lag_s.p95:.2f} s"
        result.broke.append(f"probe p95 lag {measured} > {lag_limit:.2f} s")
    if result.probe_decision_s is None or result.probe_decision_s.p95 > DECISION_LIMIT_S:
        measured = (
            "none decided" if result.probe_decision_s is None else f"{result.probe_decision_s.p95:.2f} s"
        )
        result.broke.append(f"new job's decision p95 {measured} > {DECISION_LIMIT_S:g} s")
    if rss > RSS_LIMIT_MIB:
        result.broke.append(f"worker RSS {rss:.0f} MiB > 1 GiB")
    if result.probes_completed < result.probes:
        result.broke.append(
            f"{result.probes - result.probes_completed} of {result.probes} probe jobs did not finish"
        )
    return result


async def run_capacity(
    client: Client,
    stack: BenchStack,
    *,
    mode: Contender,
    levels: Sequence[int],
    window_s: float,
    probes: int,
    steady: bool = True,
    settle_s: float | None = None,
) -> CapacityFigures:
    """Step through ``levels`` of in-flight jobs in ``mode`` on a fresh worker, until one breaks.

    With ``steady``, poll mode's last level (held or not: the load still in flight) is measured again at
    steady state. ``settle_s`` (default ``SETTLE_S[mode]``) is the least wait between a level's last
    create and its measurement; :func:`settle` then waits for the worker's queues to drain.
    """
    least = SETTLE_S[mode] if settle_s is None else settle_s
    admin = stack.admin
    assert admin is not None
    env = worker_tuning(max(levels))
    figures = CapacityFigures(mode=mode.value, worker_env=env, job_type=CAPACITY_JOB_TYPES[mode])
    if mode == Contender.POLL:
        figures.poll_interval_cap_s = poll_cap_s()
    tag = mode.value.replace(" ", "-")
    queue = f"bench-capacity-{tag}-{int(time.time())}"
    phase = f"capacity-{tag}"
    worker = await stack.worker(f"capacity-{tag}", task_queue=queue, serve="lanes", env=env)

    async def measure(level: int, reached: int, lag_limit: float, settled_s: float) -> CapacityLevel:
        return await measure_level(
            client,
            stack,
            worker,
            mode=mode,
            level=level,
            reached=reached,
            queue=queue,
            window_s=window_s,
            probes=probes,
            lag_limit=lag_limit,
            settled_s=settled_s,
        )

    def report(measured: CapacityLevel, label: str) -> None:
        lag = "-" if measured.probe_lag_s is None else f"{measured.probe_lag_s.p95:.2f} s"
        print(
            f"  capacity {mode.value}: {label}: RSS {measured.worker_rss_mib:.0f} MiB, "
            f"worker CPU {measured.worker_cpu_percent:.0f}%, "
            f"{measured.provider_requests_per_s or 0:.0f} requests/s, "
            f"probe lag p95 {lag}, "
            + ("held" if not measured.broke else "broke: " + "; ".join(measured.broke)),
            flush=True,
        )

    try:
        # One job first, so imports and first-use costs are in the baseline, not in the first level.
        warm = JobRecord(
            contender=mode.value, job_id=f"{phase}-warmup", phase=phase, duration_s=0.5, submitted_at=0
        )
        await run_job(
            warm,
            functools.partial(
                start,
                client,
                mode,
                job_id=warm.job_id,
                task_queue=queue,
                phase=phase,
                duration_s=0.5,
                job_type=CAPACITY_JOB_TYPES[mode],
            ),
            timeout_s=120,
        )
        await collect(client, admin, [warm], ledger=False)
        figures.unloaded_lag_s = warm.lag_s
        figures.baseline_rss_mib = worker.ps().memory_info().rss / 2**20
        # The probes with nothing in flight: what load is compared with.
        figures.unloaded = await measure(0, 0, float("inf"), 0.0)
        report(figures.unloaded, "nothing in flight")
        unloaded_p95 = figures.unloaded.probe_lag_s.p95 if figures.unloaded.probe_lag_s else None
        limit = lag_limit_s(mode, unloaded_p95)
        held_before = int((await admin.health())["held_responses"])
        started = 0
        for level in levels:
            await _start_load(client, mode, first=started, last=level, queue=queue, phase=phase)
            started = level
            held = await _held(admin, held_before + level, timeout_s=60 + level / 20) - held_before
            waited = await settle(client, queue, least)
            measured = await measure(level, held, limit, waited)
            figures.levels.append(measured)
            report(measured, f"{level} in flight")
            if measured.broke:
                figures.limit = name_limit(measured, mode.value, unloaded_p95)
                break
        held_levels = [lv for lv in figures.levels if not lv.broke]
        figures.max_held = held_levels[-1].in_flight if held_levels else None
        if steady and mode == Contender.POLL and figures.levels:
            # The load in flight now (the last level, held or not), again once its newest job polls at
            # the cap: steady state, which is what the capacity goal asks of it.
            top = figures.levels[-1]
            wait = max(0.0, ramp_to_cap_s(poll_cap_s()) - top.settled_s)
            print(f"  capacity {mode.value}: settling {wait:.0f} s for the steady row", flush=True)
            await asyncio.sleep(wait)
            figures.steady = await measure(top.in_flight, top.reached, limit, top.settled_s + wait)
            report(figures.steady, f"{top.in_flight} in flight, steady")
        basis = figures.steady or (held_levels[-1] if held_levels else None)
        basis = basis or (figures.levels[-1] if figures.levels else None)
        if basis is not None and basis.reached and figures.baseline_rss_mib is not None:
            figures.rss_mib_per_1000 = (
                (basis.worker_rss_mib - figures.baseline_rss_mib) / basis.reached * 1000
            )
            figures.cpu_percent_per_1000 = basis.worker_cpu_percent / basis.reached * 1000
        if not figures.limit:
            figures.limit = f"none reached up to {levels[-1]} in flight"
    finally:
        await admin.release({"bench_phase": phase})
        await worker.stop(grace_s=20)
    return figures
