"""The one table a run prints: every figure per contender side by side, then each goal and its value.

Drawn from a :class:`~bench.results.BenchResult` only, so it is what the result file says.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.contenders import ALL, Contender
from bench.results import BenchResult, CapacityFigures, DurationPoint
from bench.stats import Summary

NOT_BUILT = "not built"
"""The cell of a contender that did not exist when the result was recorded."""
ABBREVIATIONS = {"create": "c", "retrieve": "r", "stream": "s", "cancel": "x", "delete": "d"}


def seconds(value: float | None) -> str:
    """``45 ms`` below ten seconds, ``12.3 s`` above; ``-`` for nothing measured."""
    if value is None:
        return "-"
    if abs(value) < 10:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s"


def duration_label(duration_s: float, simulated: bool) -> str:
    """``10 s``, ``2 min``, ``20 min (sim)``."""
    text = f"{duration_s / 60:g} min" if duration_s >= 60 else f"{duration_s:g} s"
    return text + (" (sim)" if simulated else "")


def requests_cell(point: DurationPoint) -> str:
    """Mean requests per job, and by endpoint: ``12.0 (1c 11r)``."""
    if point.requests_total_per_job is None:
        return "-"
    parts = " ".join(
        f"{count:g}{ABBREVIATIONS.get(kind, kind)}" for kind, count in point.requests_per_job.items()
    )
    return f"{point.requests_total_per_job:.1f} ({parts})"


def _grid(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        if len(row) == 1:  # a section title or a rule
            lines.append(row[0])
            continue
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def capacity_rows(figures: CapacityFigures) -> list[list[str]]:
    """One row per measured level of one mode: nothing in flight, each level, and the steady row."""
    rows = []
    measured = [
        *([("0", figures.unloaded)] if figures.unloaded else []),
        *((str(level.in_flight), level) for level in figures.levels),
        *([(f"{figures.steady.in_flight} steady", figures.steady)] if figures.steady else []),
    ]
    for label, level in measured:
        # Costs are marginal, over the row with nothing in flight (which has none of its own); a result
        # without that row divides all the worker's CPU.
        unloaded = level is figures.unloaded
        per_request = None if unloaded else level.cpu_ms_per_request(figures.unloaded)
        per_event = None if unloaded else level.cpu_us_per_stream_event(figures.unloaded)
        lag = level.probe_lag_s
        limit = "" if level.lag_limit_s is None or level.in_flight == 0 else f" (<= {level.lag_limit_s:.2f})"
        rows.append(
            [
                figures.mode,
                label,
                f"{level.settled_s:.0f} s",
                f"{level.worker_rss_mib:.0f} MiB",
                f"{level.worker_cpu_percent:.0f}%",
                "-" if level.provider_requests_per_s is None else f"{level.provider_requests_per_s:.1f}",
                "-" if per_request is None else f"{per_request:.1f} ms",
                "-" if per_event is None or not level.stream_events_per_s else f"{per_event:.0f} us",
                "-" if level.probe_decision_s is None else seconds(level.probe_decision_s.p95),
                ("-" if lag is None else f"{lag.p95:.2f} s") + limit,
                "held" if not level.broke else "broke: " + "; ".join(level.broke),
            ]
        )
    return rows


def render_capacity(result: BenchResult) -> str:
    """The capacity table: N in flight per mode, worker RSS and CPU, provider work, decision and lag."""
    header = [
        "mode",
        "in flight",
        "settled",
        "worker RSS",
        "worker CPU",
        "requests/s",
        "CPU/request",
        "CPU/event",
        "decision p95",
        "probe lag p95 (limit)",
        "level",
    ]
    rows = [header]
    for figures in result.capacity:
        rows += capacity_rows(figures)
    if len(rows) == 1:
        return ""
    caps = [
        f"{f.mode}: job type {f.job_type}"
        + (f", poll cap {f.poll_interval_cap_s:g} s" if f.poll_interval_cap_s else "")
        for f in result.capacity
        if f.job_type
    ]
    return "\n".join(
        [
            "Capacity (one worker process; CPU in % of one core over the window; CPU/request and CPU/event: "
            "the worker CPU a level adds over nothing in flight, per request or stream event it adds):",
            _grid(rows),
            *(f"  {c}" for c in caps),
        ]
    )


def not_built(result: BenchResult) -> set[Contender]:
    """Contenders the result predates: a run before webhook mode existed says so in its webhook goal."""
    return {
        Contender.WEBHOOK
        for g in result.goals
        if g.goal.startswith("webhook mode") and g.verdict == NOT_BUILT
    }


def render(result: BenchResult) -> str:
    """The table, its goals and closing notes, as printed at the end of a run."""
    header = ["figure", *(c.value for c in ALL)]
    rows: list[list[str]] = [header]
    missing = not_built(result)

    def row(label: str, cell: Callable[[Contender], str]) -> None:
        rows.append([label, *(NOT_BUILT if c in missing else cell(c) for c in ALL)])

    def summary_row(label: str, pick: Callable[[Summary], float]) -> None:
        def cell(c: Contender) -> str:
            figures = result.figures(c.value)
            return seconds(pick(figures.lag_s)) if figures and figures.lag_s else "-"

        row(label, cell)

    summary_row("detection lag p50", lambda s: s.p50)
    summary_row("detection lag p95", lambda s: s.p95)
    summary_row("detection lag max", lambda s: s.max)
    keys = sorted({(p.duration_s, p.simulated) for c in result.contenders for p in c.points})

    def point_cell(c: Contender, key: tuple[float, bool], show: Callable[[DurationPoint], str]) -> str:
        figures = result.figures(c.value)
        point = next(
            (p for p in (figures.points if figures else []) if (p.duration_s, p.simulated) == key), None
        )
        if point is None:
            return "not run"
        if not point.completed:
            return f"0/{point.jobs} finished"
        return show(point)

    def lag_p95(p: DurationPoint) -> str:
        return seconds(p.lag_s.p95) if p.lag_s else "-"

    def per_minute(p: DurationPoint) -> str:
        return f"{p.requests_per_job_minute:.2f}" if p.requests_per_job_minute is not None else "-"

    def events(p: DurationPoint) -> str:
        if p.history_events_per_job is None:
            return "-"
        return f"{p.history_events_per_job:.0f} (max {p.history_events_max})"

    per_duration: list[tuple[str, Callable[[DurationPoint], str]]] = [
        ("lag p95", lag_p95),
        ("requests/job", requests_cell),
        ("requests/job-minute", per_minute),
        ("history events/job", events),
    ]
    for name, show in per_duration:
        for key in keys:
            rows.append(
                [
                    f"{name} @ {duration_label(*key)}",
                    *(NOT_BUILT if c in missing else point_cell(c, key, show) for c in ALL),
                ]
            )

    def recovery_cell(c: Contender, show: Callable[..., str]) -> str:
        found = next((r for r in result.recovery if r.contender == c.value), None)
        return show(found) if found else "not run"

    row(
        "kill: generations/job (max)",
        lambda c: recovery_cell(
            c,
            lambda r: (
                f"{r.generations_per_job:.2f} (max {r.max_generations}), {r.completed}/{r.jobs} done"
                if r.generations_per_job is not None
                else "-"
            ),
        ),
    )
    row("kill: added latency", lambda c: recovery_cell(c, lambda r: seconds(r.added_latency_s)))

    def overhead_cell(c: Contender, show: Callable[..., str]) -> str:
        found = next((o for o in result.overhead if o.contender == c.value), None)
        return show(found) if found else "not run"

    row("short job: submit -> create", lambda c: overhead_cell(c, lambda o: seconds(o.submit_to_create_s)))
    row("short job: end to end", lambda c: overhead_cell(c, lambda o: seconds(o.end_to_end_s)))
    row("short job: added vs direct SDK", lambda c: overhead_cell(c, lambda o: seconds(o.added_s)))

    def capacity_cell(c: Contender, show: Callable[[CapacityFigures], str]) -> str:
        found = next((f for f in result.capacity if f.mode == c.value), None)
        if found is None:
            return "not run" if c in (Contender.STREAM, Contender.POLL, Contender.WEBHOOK) else "n/a"
        return show(found)

    row(
        "capacity: most in-flight held",
        lambda c: capacity_cell(
            c,
            lambda f: f"{f.max_held or 'none'} of {max((lv.in_flight for lv in f.levels), default=0)} tried",
        ),
    )
    row(
        "capacity: worker RSS /1000 jobs",
        lambda c: capacity_cell(
            c, lambda f: f"{f.rss_mib_per_1000:.0f} MiB" if f.rss_mib_per_1000 is not None else "-"
        ),
    )
    row(
        "capacity: worker CPU /1000 jobs",
        lambda c: capacity_cell(
            c,
            lambda f: (
                f"{f.cpu_percent_per_1000:.0f}% of a core" if f.cpu_percent_per_1000 is not None else "-"
            ),
        ),
    )
    table = _grid(rows)

    lines = [table, ""]
    capacity = render_capacity(result)
    if capacity:
        lines += [capacity, ""]
    shared = []
    if result.policy_decisions_per_s is not None:
        shared.append(f"policy decisions: {result.policy_decisions_per_s:,.0f}/s on one core")
    for name, value in result.direct_sdk.items():
        shared.append(f"{name}: {seconds(value)}")
    for name, value in result.emulator_load.items():
        shared.append(f"emulator {name}: {value:,.1f}")
    if shared:
        lines += ["Shared figures:", *(f"  {s}" for s in shared), ""]
    goal_rows = [["goal", "measured", "verdict"]] + [[g.goal, g.measured, g.verdict] for g in result.goals]
    if result.goals:
        lines += [_grid(goal_rows), ""]
    limits = [f"  capacity {f.mode}: {f.limit}" for f in result.capacity if f.limit]
    if limits:
        lines += ["Limits:", *limits, ""]
    if result.notes:
        lines += ["Notes:", *(f"  {n}" for n in result.notes)]
    return "\n".join(lines).rstrip() + "\n"
