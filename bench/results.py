"""The result file's schema: every figure of one run, with the machine, versions and seed it ran on.

``bench/results/latest.json`` is this model dumped; the table and the plot are drawn from it, so what is
printed, written and drawn cannot disagree. ``SCHEMA`` changes when a field changes meaning.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bench.job_record import JobRecord
from bench.stats import Summary

SCHEMA = "lanes-bench/1"
MIN_ADDED_RATE = 5.0
"""Requests or events per second a level must add over its baseline for a marginal cost to be given."""
"""Name and version of this schema, written into every result file."""


class Machine(BaseModel):
    """Where the run happened."""

    platform: str
    cpu_model: str
    cpus: int
    memory_gib: float
    python: str
    load_average_at_start: list[float]


class DurationPoint(BaseModel):
    """One contender's jobs of one duration."""

    contender: str
    duration_s: float
    simulated: bool = False
    """The duration passed on the emulator's clock (advanced by the harness), not in real time."""
    jobs: int
    completed: int
    lag_s: Summary | None = None
    requests_per_job: dict[str, float] = Field(default_factory=dict)
    """Mean provider requests per job, by endpoint."""
    requests_total_per_job: float | None = None
    requests_per_job_minute: float | None = None
    """Requests per job divided by the job's duration in minutes."""
    history_events_per_job: float | None = None
    history_events_max: int | None = None
    generations_per_job: float | None = None


class ContenderFigures(BaseModel):
    """Everything measured for one contender in the duration section."""

    contender: str
    built: bool = True
    lag_s: Summary | None = None
    """Over every real-time job of every duration."""
    points: list[DurationPoint] = Field(default_factory=list)


class RecoveryFigures(BaseModel):
    """One contender's jobs, its worker SIGKILLed once while they ran and restarted at once."""

    contender: str
    jobs: int
    completed: int
    killed_mid_job: int
    """Jobs whose first response was still running at the kill."""
    generations_per_job: float | None = None
    max_generations: int | None = None
    added_latency_s: float | None = None
    """Median (workflow ran on the end minus the end of the job's first generation) of these jobs, minus the
    same median of undisturbed jobs of the same duration."""
    lag_s: Summary | None = None


class CapacityLevel(BaseModel):
    """One load level: this many background jobs in flight on one worker process."""

    in_flight: int
    reached: int
    """Jobs whose response was generating when the window started (can be fewer than ``in_flight``)."""
    worker_rss_mib: float
    worker_cpu_percent: float
    """Of one core, over the measurement window."""
    server_cpu_percent: float | None = None
    emulator_cpu_percent: float | None = None
    machine_cpu_percent: float
    """Of all cores."""
    open_streams: int | None = None
    probe_lag_s: Summary | None = None
    probe_decision_s: Summary | None = None
    """Submit to policy decision of the probe jobs."""
    probes: int = 0
    probes_completed: int = 0
    settled_s: float = 0.0
    """Seconds between the level's last create and its measurement."""
    provider_requests_per_s: float | None = None
    """Every provider request in the window (load and probes), from the emulator."""
    stream_events_per_s: float | None = None
    """Server-sent events the emulator wrote in the window."""
    lag_limit_s: float | None = None
    """The probes' p95 lag this level was held to."""
    broke: list[str] = Field(default_factory=list)
    """The criteria this level failed (empty: it held)."""

    def cpu_ms_per_request(self, baseline: CapacityLevel | None = None) -> float | None:
        """Worker CPU per provider request in the window (ms): the cost of a poll, in poll mode.

        With ``baseline`` (the level with nothing in flight), the marginal cost: the CPU this level added
        over the baseline divided by the requests it added, so that the worker's fixed costs (its task
        pollers, the probes) are not charged to the load's polls. ``None`` below
        ``MIN_ADDED_RATE`` added requests per second, where the quotient is noise.
        """
        rate = self.provider_requests_per_s
        if not rate:
            return None
        cpu = self.worker_cpu_percent
        if baseline is not None:
            rate -= baseline.provider_requests_per_s or 0.0
            cpu -= baseline.worker_cpu_percent
            if rate < MIN_ADDED_RATE:
                return None
        return max(cpu, 0.0) / 100 / rate * 1000

    def cpu_us_per_stream_event(self, baseline: CapacityLevel | None = None) -> float | None:
        """Worker CPU per stream event written in the window (µs); marginal over ``baseline`` when given.

        All of the worker's CPU is divided by the events, so it bounds an event's cost from above.
        """
        rate = self.stream_events_per_s
        if not rate:
            return None
        cpu = self.worker_cpu_percent
        if baseline is not None:
            rate -= baseline.stream_events_per_s or 0.0
            cpu -= baseline.worker_cpu_percent
            if rate < MIN_ADDED_RATE:
                return None
        return max(cpu, 0.0) / 100 / rate * 1e6


class CapacityFigures(BaseModel):
    """How many in-flight jobs one worker holds in one mode."""

    mode: str
    built: bool = True
    job_type: str = ""
    poll_interval_cap_s: float | None = None
    """The load's poll interval cap (poll mode): steady-state polls per second are jobs / cap."""
    worker_env: dict[str, str] = Field(default_factory=dict)
    baseline_rss_mib: float | None = None
    unloaded_lag_s: float | None = None
    """Detection lag of the warm-up job, run with nothing else in flight: what a probe's lag is made of
    before load adds to it (in poll mode, mostly its own poll schedule)."""
    unloaded: CapacityLevel | None = None
    """The probes with nothing in flight."""
    levels: list[CapacityLevel] = Field(default_factory=list)
    steady: CapacityLevel | None = None
    """Poll mode: the last level that held, measured again once its newest job polls at the cap."""
    max_held: int | None = None
    """The largest level that met every criterion."""
    limit: str = ""
    """What broke first, and the resource behind it."""
    rss_mib_per_1000: float | None = None
    cpu_percent_per_1000: float | None = None


class OverheadFigures(BaseModel):
    """Short jobs one at a time: what a contender adds to calling the SDK directly."""

    contender: str
    jobs: int
    submit_to_create_s: float | None = None
    end_to_end_s: float | None = None
    direct: str = ""
    """The direct SDK call it is compared with."""
    added_s: float | None = None


class GoalVerdict(BaseModel):
    """One goal of the issue, the value measured for it, and whether it was met."""

    goal: str
    measured: str
    verdict: str
    """``met``, ``missed``, ``not measured`` (with why) or ``not built``."""


class BenchResult(BaseModel):
    """One run of the benchmark."""

    schema_: str = Field(default=SCHEMA, alias="schema")
    started_at: str
    finished_at: str = ""
    quick: bool
    seed: int
    machine: Machine
    versions: dict[str, str]
    parameters: dict[str, object] = Field(default_factory=dict)
    contenders: list[ContenderFigures] = Field(default_factory=list)
    recovery: list[RecoveryFigures] = Field(default_factory=list)
    capacity: list[CapacityFigures] = Field(default_factory=list)
    overhead: list[OverheadFigures] = Field(default_factory=list)
    direct_sdk: dict[str, float] = Field(default_factory=dict)
    """End-to-end and submit-to-create of the direct SDK calls, in seconds."""
    policy_decisions_per_s: float | None = None
    emulator_load: dict[str, float] = Field(default_factory=dict)
    goals: list[GoalVerdict] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    jobs: list[JobRecord] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def figures(self, contender: str) -> ContenderFigures | None:
        """The duration figures of ``contender``."""
        return next((c for c in self.contenders if c.contender == contender), None)

    def write(self, path: Path) -> None:
        """Write the result as JSON (creating the directory)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2, by_alias=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> BenchResult:
        """Read a result file."""
        return cls.model_validate_json(path.read_text())
