"""The whole benchmark in one run: every section, side by side, on one stack, then one table.

The duration section, the simulated-clock jobs and the recovery section run at the same time on
separate workers and task queues (so the kill touches only its own jobs); the overhead and capacity
sections follow on a quiet stack; the policy engine and the emulator's own load run last, after the
stack is down, so they compete with nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import capacity, durations, emulator_load, goals, overhead, plot, policy_decisions, recovery
from bench.contenders import BUILT, LANES_JOB_TYPES, Contender
from bench.durations import Point
from bench.job_record import JobRecord
from bench.machine import machine, versions
from bench.results import BenchResult
from bench.stack import POLICY, ROOT, BenchStack, raise_fd_limit
from bench.stats import median
from bench.table import render
from lanes.connect import connect
from policy import load_policy

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    """The workload of a run; recorded in the result file."""

    points: tuple[Point, ...]
    recovery_jobs: int
    recovery_duration_s: float
    overhead_rounds: int
    overhead_duration_s: float
    capacity_modes: tuple[Contender, ...]
    capacity_levels: dict[Contender, tuple[int, ...]]
    """In-flight levels of each mode: poll mode goes to the capacity goal's 10,000 in a full run."""
    capacity_steady: bool
    """Measure poll mode's top level again at steady state (about five minutes more)."""
    capacity_window_s: float
    capacity_probes: int
    policy_seconds: float
    emulator_load: dict[str, float] = field(default_factory=dict)
    capacity_settle_s: dict[Contender, float] = field(default_factory=dict)
    """Per mode, the least wait between a level's last create and its measurement, where it differs from
    ``capacity.SETTLE_S`` (QUICK measures poll mode sooner, so it stays within its three minutes)."""


QUICK = Plan(
    points=(
        Point(10, 5, BUILT),
        Point(40, 2, BUILT),
        Point(1200, 1, (Contender.STREAM, Contender.SYNC), simulated=True),
    ),
    recovery_jobs=3,
    recovery_duration_s=10,
    overhead_rounds=4,
    overhead_duration_s=1,
    capacity_modes=(Contender.POLL, Contender.STREAM, Contender.WEBHOOK),
    capacity_levels={mode: (100,) for mode in (Contender.POLL, Contender.STREAM, Contender.WEBHOOK)},
    capacity_steady=False,
    capacity_settle_s={Contender.POLL: 10.0},
    capacity_window_s=4,
    capacity_probes=4,
    policy_seconds=1,
    emulator_load={"responses": 1000, "streams": 200, "concurrency": 50, "duration": 2.0},
)
"""``make bench QUICK=1``: the same table in under three minutes (one capacity level per mode); 20-minute
jobs only on the simulated clock, and only for the contenders it can simulate faithfully."""

FULL = Plan(
    points=(Point(10, 20, BUILT), Point(120, 5, BUILT), Point(1200, 2, BUILT)),
    recovery_jobs=10,
    recovery_duration_s=10,
    overhead_rounds=10,
    overhead_duration_s=1,
    capacity_modes=(Contender.POLL, Contender.STREAM, Contender.WEBHOOK),
    capacity_levels={
        Contender.POLL: (1000, 2500, 5000, 10_000),
        Contender.STREAM: (250, 500, 1000, 1500, 2000),
        Contender.WEBHOOK: (1000, 2500, 5000),
    },
    capacity_steady=True,
    capacity_window_s=15,
    capacity_probes=10,
    policy_seconds=3,
    emulator_load={"responses": 5000, "streams": 1000, "concurrency": 100, "duration": 5.0},
)
"""``make bench``: real 10-second, 2-minute and 20-minute jobs, and 10,000 in-flight poll-mode jobs (about
an hour and a quarter in all)."""


def undisturbed_lag(result_records: Sequence[JobRecord], duration_s: float) -> dict[str, float]:
    """Per contender, median time from the provider's end to the workflow running on it (real jobs).

    Over jobs of ``duration_s``: the recovery section's baseline.
    """
    found: dict[str, float] = {}
    for contender in BUILT:
        lags = [
            lag
            for r in result_records
            if r.contender == contender.value and r.duration_s == duration_s
            if (lag := r.acted_lag_s) is not None
        ]
        value = median(lags)
        if value is not None:
            found[contender.value] = value
    return found


def webhook_poll_interval_s() -> float:
    """The safety-net poll interval of the bench policy's webhook profile."""
    document = load_policy(POLICY).document
    profile = document.job_types[LANES_JOB_TYPES[Contender.WEBHOOK]].profiles.background
    assert profile is not None
    return document.profiles[profile].webhook_poll_interval_s


def available(plan: Plan, contenders: Sequence[Contender]) -> Plan:
    """``plan`` without the contenders a stack cannot run (webhook mode without a receiver)."""
    points = tuple(
        dataclasses.replace(p, contenders=tuple(c for c in p.contenders if c in contenders))
        for p in plan.points
    )
    return dataclasses.replace(
        plan,
        points=tuple(p for p in points if p.contenders),
        capacity_modes=tuple(m for m in plan.capacity_modes if m in contenders),
    )


def notes(plan: Plan, result: BenchResult) -> list[str]:
    """What a reader needs to weigh the figures, generated from what ran."""
    interval = webhook_poll_interval_s()
    found = [
        "Detection lag: the time Temporal recorded the first activity result carrying a terminal provider "
        "status, or (lanes webhook) the provider_finished signal the receiver sent, minus the emulator's "
        "completion time (GET /_emulator/completions); one machine clock.",
        "Requests: every /v1 request in the emulator's ledger for the job's responses "
        "(c create, r retrieve, s resumed stream, x cancel, d delete).",
        f"Machine: {result.machine.cpus} cores shared by the dev server, the emulator, the workers and the "
        f"harness; load average at start {result.machine.load_average_at_start}.",
        "naive poll: create, then workflow.sleep(2) and a retrieve activity until terminal "
        "(bench/naive_polling.py); sync call: one responses.create held in one activity, start-to-close = "
        "duration + 30 s (bench/sync_call.py).",
        "Kill: lanes resumes after its heartbeat timeout (10 s, ExecutionOptions default); the sync call is "
        "retried only after its start-to-close timeout, and regenerates. Added latency runs to the "
        "workflow's first task after the end was recorded: webhook mode's signal is recorded while no "
        "worker runs, and waits there for a live one.",
        "lanes webhook: a poll-mode profile with webhooks = true (bench_webhook); the emulator POSTs a "
        "signed response.* webhook to a `lanes webhooks` process when the response ends, which reads the "
        "response once (counted as the job's r) and signals the job; one warm-up webhook goes through it "
        "first (a receiver's first delivery pays its first-use costs once). Safety-net polls every "
        f"{interval:g} s (webhook_poll_interval_s), so only jobs longer than that poll. Every other "
        "contender's responses carry the emulator's webhook_drop fault: no webhook, as in a project "
        "without a webhook endpoint (the receiver would otherwise end any lanes job's wait).",
    ]
    left_out = result.parameters.get("left_out")
    if isinstance(left_out, dict):
        found += [f"{name}: not run: {reason}." for name, reason in left_out.items()]
    simulated = [p for p in plan.points if p.simulated]
    for point in simulated:
        names = ", ".join(c.value for c in point.contenders)
        found.append(
            f"{point.duration_s / 60:g} min (sim): simulated on a second emulator whose clock the harness "
            f"advanced {durations.SIMULATED_STEP_S:g} s every {durations.SIMULATED_PACE_S:g} s, for {names} "
            "only: the polling contenders' requests depend on wall time, and so do webhook mode's safety-net "
            f"polls (every {interval:g} s of Temporal's time, which a simulated job never reaches), so they "
            "cannot be simulated; lag is not computed."
        )
    if result.quick:
        found.append(
            "QUICK run: fewer jobs, shorter durations and small capacity levels; run `make bench` for the "
            "full table."
        )
    return found


async def run(plan: Plan, *, quick: bool, seed: int, results_dir: Path) -> BenchResult:
    """Run every section of ``plan``; write the JSON and PNG into ``results_dir``; return the result."""
    raise_fd_limit()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = BenchResult(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        quick=quick,
        seed=seed,
        machine=machine(),
        versions=versions(),
        parameters=dataclasses.asdict(plan),
    )
    began = time.monotonic()
    state_dir = ROOT / ".lanes" / "bench" / stamp
    simulated = [p for p in plan.points if p.simulated]
    real = [p for p in plan.points if not p.simulated]
    async with BenchStack(state_dir, seed=seed, simulated_clock=bool(simulated)) as stack:
        assert stack.admin is not None
        contenders = stack.contenders
        if stack.left_out:
            plan = available(plan, contenders)
            simulated = [p for p in plan.points if p.simulated]
            real = [p for p in plan.points if not p.simulated]
            result.parameters = dataclasses.asdict(plan)
            result.parameters["left_out"] = {c.value: why for c, why in stack.left_out.items()}
        client = await connect(stack.settings)
        queue = f"bench-{stamp}"
        await stack.worker("main", task_queue=queue)
        sim_queue = f"{queue}-simulated"
        if simulated:
            await stack.worker("simulated", task_queue=sim_queue, settings=stack.sim_settings())
        print(
            f"stack ready in {time.monotonic() - began:.0f} s (logs in {state_dir}); running jobs...",
            flush=True,
        )

        offsets = [
            durations.START_SPACING_S * sum(q.jobs * len(q.contenders) for q in real[:i])
            for i in range(len(real))
        ]
        real_runs = [
            durations.run_point(client, stack.admin, p, task_queue=queue, tag="dur", first_start_s=offset)
            for p, offset in zip(real, offsets, strict=True)
        ]
        sim_runs = []
        if simulated:
            assert stack.sim_admin is not None
            sim_runs = [
                durations.run_point(client, stack.sim_admin, p, task_queue=sim_queue, tag="sim")
                for p in simulated
            ]
        recovering = recovery.run_recovery(
            client,
            stack,
            contenders=contenders,
            jobs=plan.recovery_jobs,
            duration_s=plan.recovery_duration_s,
            task_queue=f"{queue}-recovery",
        )
        gathered = await asyncio.gather(asyncio.gather(*real_runs, *sim_runs), recovering)
        point_records = [r for records in gathered[0] for r in records]
        recovery_run = gathered[1]
        result.contenders = durations.summarise(point_records, contenders)
        result.recovery = recovery.summarise(
            recovery_run, contenders, undisturbed_lag(point_records, plan.recovery_duration_s)
        )
        print(f"durations and recovery done at {time.monotonic() - began:.0f} s; overhead...", flush=True)

        result.overhead, result.direct_sdk, overhead_records = await overhead.run_overhead(
            client,
            stack.admin,
            contenders=contenders,
            rounds=plan.overhead_rounds,
            duration_s=plan.overhead_duration_s,
            task_queue=queue,
        )
        print(f"overhead done at {time.monotonic() - began:.0f} s; capacity...", flush=True)
        for mode in plan.capacity_modes:
            result.capacity.append(
                await capacity.run_capacity(
                    client,
                    stack,
                    mode=mode,
                    levels=plan.capacity_levels[mode],
                    steady=plan.capacity_steady,
                    settle_s=plan.capacity_settle_s.get(mode),
                    window_s=plan.capacity_window_s,
                    probes=plan.capacity_probes,
                )
            )
        result.jobs = point_records + recovery_run.records + overhead_records
    print(
        f"stack stopped at {time.monotonic() - began:.0f} s; policy engine and emulator load...", flush=True
    )
    result.policy_decisions_per_s = policy_decisions.measure(plan.policy_seconds)[0]
    load_args = emulator_load.parser().parse_args(
        [f"--{k}={v:g}" if isinstance(v, float) else f"--{k}={v}" for k, v in plan.emulator_load.items()]
    )
    load = await asyncio.to_thread(emulator_load.measure, load_args)
    if load:
        result.emulator_load = {
            "creates/s": load["creates_per_second"],
            "stream events/s": load["stream_events_per_second"],
            f"RSS MiB after {int(load['responses'])} creates": load["server_rss_mib_after_creates"],
            f"peak RSS MiB with {int(load['streams'])} streams": load["server_peak_rss_mib"],
        }
    result.goals = goals.evaluate(result)
    result.notes = notes(plan, result)
    result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    result.parameters["wall_seconds"] = round(time.monotonic() - began, 1)
    result.write(results_dir / "latest.json")
    plot.draw(result, results_dir / "latest.png")
    return result


def print_result(result: BenchResult, results_dir: Path) -> None:
    """The table, and where the files are."""
    print()
    print(render(result), end="")
    print(
        f"\nwrote {results_dir / 'latest.json'} and {results_dir / 'latest.png'} "
        f"({result.parameters.get('wall_seconds')} s)"
    )
