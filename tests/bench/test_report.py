"""The result file's schema, the goals' verdicts and the table, on a result built by hand.

These are the harness's pure parts: a run's figures come from a real stack (``make bench``); here the
figures are chosen so that each verdict and each cell kind is exercised.
"""

import json
import re

import pytest

from activities.poll_schedule import JITTER, elapsed_interval_s
from bench.capacity import (
    PROBE_DURATION_S,
    default_levels,
    lag_limit_s,
    name_limit,
    poll_cap_s,
    ramp_to_cap_s,
)
from bench.contenders import Contender
from bench.goals import evaluate
from bench.results import (
    SCHEMA,
    BenchResult,
    CapacityFigures,
    CapacityLevel,
    ContenderFigures,
    DurationPoint,
    GoalVerdict,
    Machine,
    OverheadFigures,
    RecoveryFigures,
)
from bench.stats import Summary
from bench.table import duration_label, render, render_capacity, requests_cell, seconds

MACHINE = Machine(
    platform="Linux", cpu_model="test", cpus=2, memory_gib=4.0, python="3.11", load_average_at_start=[0.5]
)


def _point(
    contender: str,
    duration: float,
    requests: float,
    events: float,
    lag: float = 0.05,
    simulated: bool = False,
) -> DurationPoint:
    return DurationPoint(
        contender=contender,
        duration_s=duration,
        simulated=simulated,
        jobs=2,
        completed=2,
        lag_s=None if simulated else Summary(count=2, p50=lag, p95=lag, max=lag),
        requests_per_job={"create": 1, "retrieve": requests - 1},
        requests_total_per_job=requests,
        requests_per_job_minute=requests / (duration / 60),
        history_events_per_job=events,
        history_events_max=int(events),
        generations_per_job=1,
    )


def result() -> BenchResult:
    built = BenchResult(
        started_at="2026-01-01T00:00:00+00:00",
        quick=False,
        seed=7,
        machine=MACHINE,
        versions={"temporalio": "1"},
    )
    built.contenders = [
        ContenderFigures(
            contender="lanes stream",
            lag_s=Summary(count=4, p50=0.02, p95=0.15, max=0.2),
            points=[
                _point("lanes stream", 10, 2, 28, 0.15),
                _point("lanes stream", 1200, 2, 28, simulated=True),
            ],
        ),
        ContenderFigures(
            contender="lanes poll",
            lag_s=Summary(count=4, p50=1, p95=20, max=25),
            points=[_point("lanes poll", 10, 8, 28, 5), _point("lanes poll", 1200, 50, 28, 20)],
        ),
        ContenderFigures(
            contender="lanes webhook",
            lag_s=Summary(count=4, p50=0.2, p95=0.4, max=0.5),
            points=[_point("lanes webhook", 10, 2, 25, 0.4), _point("lanes webhook", 1200, 5, 36, 0.3)],
        ),
        ContenderFigures(
            contender="naive poll",
            lag_s=Summary(count=4, p50=1, p95=2, max=2),
            points=[_point("naive poll", 10, 6, 66, 1), _point("naive poll", 1200, 601, 6600, 1)],
        ),
        ContenderFigures(contender="sync call", points=[_point("sync call", 10, 1, 11, 0.01)]),
    ]
    built.recovery = [
        RecoveryFigures(
            contender="lanes stream",
            jobs=3,
            completed=3,
            killed_mid_job=3,
            generations_per_job=1,
            max_generations=1,
            added_latency_s=2.5,
        ),
        RecoveryFigures(
            contender="lanes poll",
            jobs=3,
            completed=3,
            killed_mid_job=3,
            generations_per_job=4 / 3,
            max_generations=2,
            added_latency_s=1.0,
        ),
        RecoveryFigures(
            contender="lanes webhook",
            jobs=3,
            completed=3,
            killed_mid_job=3,
            generations_per_job=1,
            max_generations=1,
            added_latency_s=0.1,
        ),
        RecoveryFigures(
            contender="sync call",
            jobs=3,
            completed=3,
            killed_mid_job=3,
            generations_per_job=2,
            max_generations=2,
            added_latency_s=40.0,
        ),
    ]
    built.overhead = [
        OverheadFigures(
            contender="lanes stream",
            jobs=3,
            submit_to_create_s=0.3,
            end_to_end_s=1.3,
            direct="sdk",
            added_s=0.3,
        )
    ]
    level = CapacityLevel(
        in_flight=500,
        reached=500,
        worker_rss_mib=1200,
        worker_cpu_percent=95,
        machine_cpu_percent=70,
        broke=["worker RSS 1200 MiB > 1 GiB"],
    )
    built.capacity = [
        CapacityFigures(
            mode="lanes poll",
            levels=[
                CapacityLevel(
                    in_flight=100,
                    reached=100,
                    worker_rss_mib=300,
                    worker_cpu_percent=20,
                    machine_cpu_percent=30,
                ),
                level,
            ],
            max_held=100,
            limit=name_limit(level, "lanes poll"),
            rss_mib_per_1000=1500,
            cpu_percent_per_1000=200,
        )
    ]
    built.policy_decisions_per_s = 100_000
    built.goals = evaluate(built)
    return built


def test_goals_say_met_missed_not_measured_and_not_built():
    verdicts = {g.goal: g for g in result().goals}
    assert verdicts["stream mode: p95 detection lag < 100 ms"].verdict == "missed"
    assert verdicts["stream mode: p95 detection lag < 100 ms"].measured == "150 ms"
    ratio = verdicts["poll mode: >= 10x fewer provider requests than naive polling on a 20-minute job"]
    assert (ratio.verdict, ratio.measured) == ("met", "12.0x (50 vs 601)")
    assert verdicts["poll mode: p95 lag < 10% of job time (20-minute job)"].verdict == "met"
    assert verdicts["lanes stream: provider requests per job independent of duration"].verdict == "met"
    assert verdicts["lanes poll: provider requests per job independent of duration"].verdict == "missed"
    assert verdicts["lanes stream: history events per job < 40 at every duration"].verdict == "met"
    assert verdicts["lanes poll: exactly one generation per job under a worker kill"].verdict == "missed"
    assert verdicts["lanes stream: exactly one generation per job under a worker kill"].verdict == "met"
    # A 20-minute webhook job polled past its safety-net interval: 5 requests at worst, though its lag is low.
    webhook = verdicts["webhook mode: <= 2 provider requests per job, p95 lag < 1 s"]
    assert (webhook.verdict, webhook.measured) == (
        "missed",
        "max 5.0 requests per job (at 1200 s), p95 lag 400 ms",
    )
    assert verdicts["lanes webhook: provider requests per job independent of duration"].verdict == "missed"
    assert verdicts["lanes webhook: history events per job < 40 at every duration"].verdict == "met"
    assert verdicts["lanes webhook: exactly one generation per job under a worker kill"].verdict == "met"
    capacity = next(g for g in verdicts.values() if g.goal.startswith("capacity"))
    assert capacity.verdict == "missed"  # it broke at 500, so 10,000 cannot hold
    assert "worker CPU" in capacity.measured
    assert "memory" in capacity.measured


def test_webhook_goal_is_met_at_two_requests_and_low_lag():
    built = result()
    webhook = next(c for c in built.contenders if c.contender == "lanes webhook")
    webhook.points = [_point("lanes webhook", 10, 2, 25, 0.4), _point("lanes webhook", 40, 2, 25, 0.3)]
    verdicts = {g.goal: g for g in evaluate(built)}
    goal = verdicts["webhook mode: <= 2 provider requests per job, p95 lag < 1 s"]
    assert (goal.verdict, goal.measured) == ("met", "max 2.0 requests per job (at 40 s), p95 lag 400 ms")
    assert verdicts["lanes webhook: provider requests per job independent of duration"].verdict == "met"
    webhook.lag_s = Summary(count=4, p50=0.5, p95=1.5, max=2.0)
    goal = next(g for g in evaluate(built) if g.goal.startswith("webhook mode"))
    assert goal.verdict == "missed"
    webhook.lag_s = None
    goal = next(g for g in evaluate(built) if g.goal.startswith("webhook mode"))
    assert goal.verdict == "not measured"


def test_goals_not_measured_without_the_figures():
    empty = BenchResult(started_at="x", quick=True, seed=0, machine=MACHINE, versions={})
    verdicts = [g.verdict for g in evaluate(empty)]
    assert "met" not in verdicts
    assert "missed" not in verdicts
    assert "not built" not in verdicts


def test_table_has_every_contender_column_webhook_slot_and_goals():
    text = render(result())
    header = text.splitlines()[0].split("  ")
    assert [h.strip() for h in header if h.strip()] == [
        "figure",
        "lanes stream",
        "lanes poll",
        "lanes webhook",
        "naive poll",
        "sync call",
    ]
    lag_row = next(line for line in text.splitlines() if line.startswith("detection lag p95"))
    assert "150 ms" in lag_row
    assert "20.0 s" in lag_row
    assert "400 ms" in lag_row
    assert "not built" not in text
    assert any(line.startswith("requests/job @ 20 min (sim)") for line in text.splitlines())
    assert any(line.startswith("requests/job @ 20 min ") and "601.0" in line for line in text.splitlines())
    kill = next(line for line in text.splitlines() if line.startswith("kill: generations/job"))
    assert "2.00 (max 2)" in kill
    assert "not run" in kill
    assert "missed" in text
    assert "policy decisions: 100,000/s" in text
    assert "capacity lanes poll: worker CPU" in text


def test_a_result_from_before_webhook_mode_shows_its_column_not_built():
    old = result()
    old.contenders = [c for c in old.contenders if c.contender != "lanes webhook"]
    old.recovery = [r for r in old.recovery if r.contender != "lanes webhook"]
    old.goals = [
        GoalVerdict(goal=g.goal, measured="-", verdict="not built")
        if g.goal.startswith("webhook mode")
        else g
        for g in evaluate(old)
    ]
    lines = render(old).splitlines()
    columns = lines[0].index("lanes webhook"), lines[0].index("naive poll")
    for prefix in ("detection lag p95", "requests/job @ 10 s", "kill: generations/job", "capacity: most"):
        line = next(line for line in lines if line.startswith(prefix))
        assert line[columns[0] : columns[1]].strip() == "not built", line
    assert "not built" not in render(result())


def test_cells():
    assert seconds(0.0123) == "12 ms"
    assert seconds(12.34) == "12.3 s"
    assert seconds(None) == "-"
    assert duration_label(10, False) == "10 s"
    assert duration_label(1200, True) == "20 min (sim)"
    assert requests_cell(_point("x", 60, 12, 28)) == "12.0 (1c 11r)"


def test_result_file_round_trips_with_its_schema(tmp_path):
    path = tmp_path / "results" / "latest.json"
    original = result()
    original.write(path)
    raw = json.loads(path.read_text())
    assert raw["schema"] == SCHEMA
    assert {"machine", "versions", "seed", "started_at", "contenders", "goals", "capacity"} <= set(raw)
    assert raw["machine"]["cpus"] == 2
    assert BenchResult.read(path) == original


def test_capacity_levels():
    assert default_levels(10_000) == [100, 250, 500, 1000, 2500, 5000, 10_000]
    assert default_levels(150) == [100, 150]
    assert default_levels(50) == [50]


def test_limit_names_late_polls_when_only_poll_lag_broke():
    level = CapacityLevel(
        in_flight=150,
        reached=150,
        worker_rss_mib=200,
        worker_cpu_percent=40,
        machine_cpu_percent=50,
        broke=["probe p95 lag 1.02 s > 1 s"],
    )
    assert "polls came late" in name_limit(level, "lanes poll", 0.4)
    assert "0.40 s with nothing in flight" in name_limit(level, "lanes poll", 0.4)
    assert "polls came late" not in name_limit(level, "lanes stream")
    assert "Temporal task latency" in name_limit(level, "lanes stream")


def test_poll_lag_limit_is_relative_to_the_probes_own_schedule_and_steady_state_waits_for_the_cap():
    # A 2 s probe may see up to the interval in effect at 2 s (0.5 + 0.5 * 2 = 1.5 s, +20% jitter) of lag
    # from its schedule alone; load may add LAG_LIMIT_S to that, or to a higher unloaded p95.
    own = elapsed_interval_s(PROBE_DURATION_S, poll_cap_s()) * (1 + JITTER)
    assert own == pytest.approx(1.8)
    assert lag_limit_s(Contender.POLL, 0.8) == pytest.approx(own + 1.0)
    assert lag_limit_s(Contender.POLL, None) == pytest.approx(own + 1.0)
    assert lag_limit_s(Contender.POLL, 2.5) == pytest.approx(3.5)
    assert lag_limit_s(Contender.STREAM, 0.8) == 1.0
    # 0.5 s growing 1.5x: 0.5 + 0.75 + ... until the next interval is the cap.
    assert ramp_to_cap_s(0.5) == 0.0
    assert ramp_to_cap_s(1.0) == 0.5 + 0.75
    assert 280 < ramp_to_cap_s(120) < 300
    assert poll_cap_s() == 120


def _level(in_flight: int, **figures: object) -> CapacityLevel:
    base: dict[str, object] = {
        "in_flight": in_flight,
        "reached": in_flight,
        "worker_rss_mib": 300.0,
        "worker_cpu_percent": 40.0,
        "machine_cpu_percent": 50.0,
        "provider_requests_per_s": 80.0,
        "stream_events_per_s": 0.0,
        "probe_decision_s": Summary.of([0.1, 0.2]),
        "probe_lag_s": Summary.of([0.5, 0.7]),
        "lag_limit_s": 1.7,
    }
    return CapacityLevel.model_validate(base | figures)


def test_capacity_table_has_a_row_per_level_with_cost_per_request_and_the_steady_row():
    figures = CapacityFigures(
        mode="lanes poll",
        job_type="bench_poll_long",
        poll_interval_cap_s=120,
        unloaded=_level(0, worker_cpu_percent=2.0, provider_requests_per_s=4.0),
        levels=[_level(1000), _level(2500, broke=["new job's decision p95 1.20 s > 1 s"])],
        steady=_level(1000, settled_s=290.0, worker_cpu_percent=10.0, provider_requests_per_s=20.0),
    )
    stream = CapacityFigures(
        mode="lanes stream", levels=[_level(500, provider_requests_per_s=1.0, stream_events_per_s=400.0)]
    )
    assert figures.levels[0].cpu_ms_per_request() == 5.0
    # Marginal: (40% - 2%) of a core over (80 - 4) requests/s.
    assert figures.levels[0].cpu_ms_per_request(figures.unloaded) == 5.0
    assert stream.levels[0].cpu_us_per_stream_event() == 1000.0
    assert _level(10, provider_requests_per_s=8.0).cpu_ms_per_request(figures.unloaded) is None
    text = render_capacity(result().model_copy(update={"capacity": [figures, stream]}))
    rows = [line for line in text.splitlines() if line.startswith(("lanes poll", "lanes stream"))]
    assert [re.split(r"\s{2,}", row)[1] for row in rows] == ["0", "1000", "2500", "1000 steady", "500"]
    assert "5.0 ms" in rows[1]
    assert re.split(r"\s{2,}", rows[0])[6] == "-"  # nothing added over itself
    assert "0.70 s (<= 1.70)" in rows[1]
    assert "held" in rows[1]
    assert "broke: new job's decision p95 1.20 s > 1 s" in rows[2]
    assert "290 s" in rows[3]
    assert "5.0 ms" in rows[3]  # (10% - 2%) of a core over (20 - 4) requests/s
    assert "1000 us" in rows[4]
    assert "lanes poll: job type bench_poll_long, poll cap 120 s" in text


def test_capacity_goal_needs_ten_thousand_held_and_half_a_core_at_steady_state():
    def verdict(steady: CapacityLevel | None) -> tuple[str, str]:
        figures = CapacityFigures(
            mode="lanes poll",
            poll_interval_cap_s=120,
            levels=[_level(10_000)],
            max_held=10_000,
            steady=steady,
        )
        found = evaluate(result().model_copy(update={"capacity": [figures]}))
        goal = next(g for g in found if g.goal.startswith("capacity"))
        return goal.verdict, goal.measured

    assert verdict(_level(10_000, worker_cpu_percent=45.0))[0] == "met"
    assert "45% of a core at 80 polls/s (cap 120 s)" in verdict(_level(10_000, worker_cpu_percent=45.0))[1]
    assert verdict(_level(10_000, worker_cpu_percent=55.0))[0] == "missed"
    assert verdict(_level(10_000, broke=["worker RSS 1100 MiB > 1 GiB"]))[0] == "missed"
    assert verdict(None)[0] == "not measured: no steady-state row"
