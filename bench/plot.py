"""The picture: detection lag, provider requests and history events against job duration, per contender.

Drawn from the result file alone (``python -m bench plot`` redraws it). Simulated durations are hollow
markers; a contender with no figure at a duration has no marker there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the harness runs headless

import matplotlib.pyplot as plt
from matplotlib.artist import Artist

from bench.results import BenchResult, DurationPoint
from bench.table import duration_label, not_built

COLOURS = {
    "lanes stream": "#1f77b4",
    "lanes poll": "#2ca02c",
    "lanes webhook": "#ff7f0e",
    "naive poll": "#d62728",
    "sync call": "#9467bd",
}


def draw(result: BenchResult, path: Path) -> None:
    """Write the three panels to ``path`` (PNG)."""
    figure, axes = plt.subplots(1, 3, figsize=(16, 5.5))
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
