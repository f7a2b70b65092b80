"""The issue's goals, each checked against the figures of one run.

A goal that could not be checked in this run says why (``not measured: ...``) rather than passing.
"""

from __future__ import annotations

from bench.contenders import Contender
from bench.results import BenchResult, DurationPoint, GoalVerdict

STREAM_LAG_GOAL_S = 0.1
WEBHOOK_REQUESTS_GOAL = 2.0
WEBHOOK_LAG_GOAL_S = 1.0
POLL_REQUEST_RATIO_GOAL = 10.0
POLL_LAG_SHARE_GOAL = 0.10
HISTORY_EVENTS_GOAL = 40
CAPACITY_GOAL_JOBS = 10_000
CAPACITY_CPU_GOAL_PERCENT = 50.0
"""Of one core, at steady state."""
INDEPENDENT_TOLERANCE = 2.0
"""Requests per job count as independent of duration when the longest job's exceeds the shortest's by at
most this many requests (a reconnect, say) or 25%."""


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def _point(result: BenchResult, contender: Contender, duration_s: float) -> DurationPoint | None:
    figures = result.figures(contender.value)
    if figures is None:
        return None
    real = [p for p in figures.points if p.duration_s == duration_s and p.completed and not p.simulated]
    simulated = [p for p in figures.points if p.duration_s == duration_s and p.completed and p.simulated]
    found = real or simulated
    return found[0] if found else None


def _longest(result: BenchResult) -> float | None:
    durations = [p.duration_s for c in result.contenders for p in c.points if p.completed]
    return max(durations) if durations else None


def _webhook_goal(result: BenchResult) -> GoalVerdict:
    """At most 2 requests per job at every duration run (the worst point's mean), and p95 lag < 1 s.

    The lag is over every real-time webhook job; simulated points count for requests only.
    """
    goal = "webhook mode: <= 2 provider requests per job, p95 lag < 1 s"
    figures = result.figures(Contender.WEBHOOK.value)
    points = [
        p for p in (figures.points if figures else []) if p.completed and p.requests_total_per_job is not None
    ]
    if figures is None or not points or figures.lag_s is None:
        return GoalVerdict(goal=goal, measured="-", verdict="not measured")
    worst = max(points, key=lambda p: (p.requests_total_per_job or 0.0, p.duration_s))
    requests = worst.requests_total_per_job or 0.0
    lag = figures.lag_s.p95
    return GoalVerdict(
        goal=goal,
        measured=f"max {requests:.1f} requests per job (at {worst.duration_s:g} s), p95 lag "
        f"{lag * 1000:.0f} ms",
        verdict=_verdict(requests <= WEBHOOK_REQUESTS_GOAL and lag < WEBHOOK_LAG_GOAL_S),
    )


def evaluate(result: BenchResult) -> list[GoalVerdict]:
    """Every goal of the issue with its measured value and verdict."""
    goals = []
    stream = result.figures(Contender.STREAM.value)
    if stream is not None and stream.lag_s is not None:
        goals.append(
            GoalVerdict(
                goal="stream mode: p95 detection lag < 100 ms",
                measured=f"{stream.lag_s.p95 * 1000:.0f} ms",
                verdict=_verdict(stream.lag_s.p95 < STREAM_LAG_GOAL_S),
            )
        )
    else:
        goals.append(
            GoalVerdict(goal="stream mode: p95 detection lag < 100 ms", measured="-", verdict="not measured")
        )

    twenty = 1200.0
    poll20, naive20 = _point(result, Contender.POLL, twenty), _point(result, Contender.NAIVE, twenty)
    goal = "poll mode: >= 10x fewer provider requests than naive polling on a 20-minute job"
    if poll20 and naive20 and poll20.requests_total_per_job and naive20.requests_total_per_job:
        ratio = naive20.requests_total_per_job / poll20.requests_total_per_job
        goals.append(
            GoalVerdict(
                goal=goal,
                measured=f"{ratio:.1f}x ({poll20.requests_total_per_job:.0f} vs "
                f"{naive20.requests_total_per_job:.0f})",
                verdict=_verdict(ratio >= POLL_REQUEST_RATIO_GOAL),
            )
        )
    else:
        goals.append(
            GoalVerdict(goal=goal, measured="-", verdict="not measured: no real 20-minute jobs (QUICK)")
        )

    goal = "poll mode: p95 lag < 10% of job time (20-minute job)"
    if poll20 and poll20.lag_s:
        share = poll20.lag_s.p95 / twenty
        goals.append(
            GoalVerdict(
                goal=goal,
                measured=f"{poll20.lag_s.p95:.1f} s = {share:.1%}",
                verdict=_verdict(share < POLL_LAG_SHARE_GOAL),
            )
        )
    else:
        poll = result.figures(Contender.POLL.value)
        shares = [
            p.lag_s.p95 / p.duration_s for p in (poll.points if poll else []) if p.lag_s and p.duration_s
        ]
        measured = f"worst {max(shares):.1%} at the durations run" if shares else "-"
        goals.append(
            GoalVerdict(goal=goal, measured=measured, verdict="not measured: no real 20-minute jobs (QUICK)")
        )

    goals.append(_webhook_goal(result))

    for contender in (Contender.STREAM, Contender.POLL, Contender.WEBHOOK):
        figures = result.figures(contender.value)
        points = sorted(
            (p for p in (figures.points if figures else []) if p.completed), key=lambda p: p.duration_s
        )
        goal = f"{contender.value}: provider requests per job independent of duration"
        if (
            len(points) >= 2
            and points[0].requests_total_per_job is not None
            and points[-1].requests_total_per_job is not None
        ):
            low, high = points[0].requests_total_per_job, points[-1].requests_total_per_job
            ok = high - low <= max(INDEPENDENT_TOLERANCE, 0.25 * low)
            goals.append(
                GoalVerdict(
                    goal=goal,
                    measured=f"{low:.1f} at {points[0].duration_s:g} s, "
                    f"{high:.1f} at {points[-1].duration_s:g} s",
                    verdict=_verdict(ok),
                )
            )
        else:
            goals.append(GoalVerdict(goal=goal, measured="-", verdict="not measured"))
        goal = f"{contender.value}: history events per job < 40 at every duration"
        maxima = [(p.history_events_max, p.duration_s) for p in points if p.history_events_max is not None]
        if maxima:
            worst, at = max(maxima)
            goals.append(
                GoalVerdict(
                    goal=goal,
                    measured=f"max {worst} (at {at:g} s)",
                    verdict=_verdict(worst < HISTORY_EVENTS_GOAL),
                )
            )
        else:
            goals.append(GoalVerdict(goal=goal, measured="-", verdict="not measured"))
        recovery = next((r for r in result.recovery if r.contender == contender.value), None)
        goal = f"{contender.value}: exactly one generation per job under a worker kill"
        if recovery and recovery.max_generations is not None:
            goals.append(
                GoalVerdict(
                    goal=goal,
                    measured=f"{recovery.generations_per_job:.2f} per job, max {recovery.max_generations} "
                    f"({recovery.killed_mid_job}/{recovery.jobs} killed mid-job)",
                    verdict=_verdict(recovery.max_generations == 1 and recovery.completed == recovery.jobs),
                )
            )
        else:
            goals.append(GoalVerdict(goal=goal, measured="-", verdict="not measured"))

    poll_capacity = next((c for c in result.capacity if c.mode == Contender.POLL.value), None)
    goal = (
        "capacity: 10,000 waiting poll-mode jobs in one worker under 1 GiB and half a core at steady "
        "state, new job's decision p95 < 1 s"
    )
    if poll_capacity is None or not poll_capacity.levels:
        goals.append(GoalVerdict(goal=goal, measured="-", verdict="not measured"))
    else:
        tested = max(level.in_flight for level in poll_capacity.levels)
        held = poll_capacity.max_held or 0
        measured = f"held {held} (tested up to {tested}); limit: {poll_capacity.limit}"
        steady = poll_capacity.steady
        if steady is not None:
            decision = steady.probe_decision_s.p95 if steady.probe_decision_s else float("nan")
            measured = (
                f"held {held} (tested up to {tested}); at {steady.in_flight} steady: "
                f"{steady.worker_rss_mib:.0f} MiB, {steady.worker_cpu_percent:.0f}% of a core at "
                f"{steady.provider_requests_per_s or 0:.0f} polls/s (cap "
                f"{poll_capacity.poll_interval_cap_s or 0:g} s), decision p95 {decision * 1000:.0f} ms"
            )
        if steady is not None and steady.in_flight >= CAPACITY_GOAL_JOBS:
            # The goal is about jobs waiting at steady state: the steady row of the load in flight decides,
            # even if its level broke while that load was still arriving.
            verdict = _verdict(not steady.broke and steady.worker_cpu_percent < CAPACITY_CPU_GOAL_PERCENT)
        elif held >= CAPACITY_GOAL_JOBS:
            verdict = "not measured: no steady-state row"
        elif tested >= CAPACITY_GOAL_JOBS or any(level.broke for level in poll_capacity.levels):
            verdict = "missed"
        else:
            verdict = f"not measured: only {tested} tried (python -m bench capacity --mode poll --jobs 10000)"
        goals.append(GoalVerdict(goal=goal, measured=measured, verdict=verdict))
    return goals
