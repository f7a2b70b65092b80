"""The picture: lag, requests and history events against job duration; worker RSS and CPU against load.

The first three panels are per contender; the fourth is the capacity section's, per lanes mode. Drawn
from the result file alone (``python -m bench plot`` redraws it). Simulated durations are hollow
markers; a contender with no figure at a duration has no marker there. In the capacity panel, filled
markers are RSS (left axis), hollow ones CPU (right axis); a level that broke is drawn with a cross, and
poll mode's steady row is a star.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the harness runs headless

import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes

from bench.capacity import RSS_LIMIT_MIB
from bench.results import BenchResult, CapacityLevel, DurationPoint
from bench.table import duration_label, not_built

COLOURS = {
    "lanes stream": "#1f77b4",
    "lanes poll": "#2ca02c",
    "lanes webhook": "#ff7f0e",
    "naive poll": "#d62728",
    "sync call": "#9467bd",
}


def draw(result: BenchResult, path: Path) -> None:
    """Write the four panels to ``path`` (PNG)."""
    figure, all_axes = plt.subplots(1, 4, figsize=(21, 5.5))
    axes, capacity_axis = all_axes[:3], all_axes[3]
    durations = sorted({p.duration_s for c in result.contenders for p in c.points})
    panels: list[tuple[str, Callable[[DurationPoint], float | None]]] = [
        ("detection lag p95 (s)", lambda p: p.lag_s.p95 if p.lag_s else None),
        ("provider requests per job", lambda p: p.requests_total_per_job),
        ("history events per job", lambda p: p.history_events_per_job),
    ]
    for axis, (title, value) in zip(axes, panels, strict=True):
        for figures in result.contenders:
            colour = COLOURS.get(figures.contender, "black")
            for simulated in (False, True):
                points = [
                    (p.duration_s, v)
                    for p in figures.points
                    if p.simulated == simulated and p.completed and (v := value(p)) is not None
                ]
                if not points:
                    continue
                xs = [x for x, _ in sorted(points)]
                ys = [y for _, y in sorted(points)]
                axis.plot(
                    xs,
                    ys,
                    marker="o",
                    linestyle="--" if simulated else "-",
                    color=colour,
                    markerfacecolor="none" if simulated else colour,
                    label=figures.contender + (" (simulated clock)" if simulated else ""),
                )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xticks(durations, [duration_label(d, False) for d in durations])
        axis.minorticks_off()
        axis.set_xlabel("job duration")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    _capacity_panel(result, capacity_axis)
    labelled: dict[str, Artist] = {}
    for axis in axes:
        handles, labels = axis.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            labelled.setdefault(label, handle)
    figure.legend(list(labelled.values()), list(labelled), loc="lower center", ncol=len(labelled), fontsize=9)
    kind = "QUICK" if result.quick else "full"
    missing = ", ".join(f"{c.value}: not built" for c in sorted(not_built(result)))
    figure.suptitle(
        f"lanes benchmark ({kind} run, {result.started_at}, seed {result.seed})"
        + (f"; {missing}" if missing else "")
    )
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _capacity_panel(result: BenchResult, axis: Axes) -> None:
    """Worker RSS (MiB, left) and CPU (% of a core, right) against jobs in flight, per mode."""
    cpu_axis = axis.twinx()
    for figures in result.capacity:
        colour = COLOURS.get(figures.mode, "black")
        levels: list[CapacityLevel] = [*([figures.unloaded] if figures.unloaded else []), *figures.levels]
        if not levels:
            continue
        xs = [max(level.in_flight, 1) for level in levels]
        axis.plot(xs, [lv.worker_rss_mib for lv in levels], marker="o", color=colour, label=figures.mode)
        cpu_axis.plot(
            xs,
            [lv.worker_cpu_percent for lv in levels],
            marker="o",
            linestyle=":",
            color=colour,
            markerfacecolor="none",
        )
        for x, level in zip(xs, levels, strict=True):
            if level.broke:
                axis.plot([x], [level.worker_rss_mib], marker="x", markersize=12, color=colour)
        if figures.steady is not None:
            axis.plot(
                [figures.steady.in_flight],
                [figures.steady.worker_rss_mib],
                marker="*",
                markersize=14,
                color=colour,
            )
            cpu_axis.plot(
                [figures.steady.in_flight],
                [figures.steady.worker_cpu_percent],
                marker="*",
                markersize=14,
                color=colour,
                markerfacecolor="none",
            )
    axis.axhline(RSS_LIMIT_MIB, color="grey", linestyle="--", linewidth=1)
    # From zero, with the limit and a whole core in view: the eye reads distance to the limits.
    axis.set_ylim(0, max(RSS_LIMIT_MIB * 1.1, axis.get_ylim()[1]))
    cpu_axis.set_ylim(0, max(100.0, cpu_axis.get_ylim()[1]))
    axis.set_xscale("symlog", linthresh=100)
    axis.set_xlim(left=0)  # no negative job counts: symlog's default margin reached below zero
    axis.set_xlabel("background jobs in flight (one worker)")
    axis.set_ylabel("worker RSS MiB (filled; dashed line: 1 GiB)")
    cpu_axis.set_ylabel("worker CPU % of a core (hollow, dotted)")
    axis.set_title("capacity")
    axis.grid(True, which="both", alpha=0.3)
