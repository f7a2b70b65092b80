"""How a worker process is sized and which lanes it serves, from ``LANES_WORKER_*`` variables.

    LANES_WORKER_MAX_CONCURRENT_ACTIVITIES=200 LANES_WORKER_ACTIVITY_POLLERS=10 python worker.py
    LANES_WORKER_TUNER=resource-based LANES_WORKER_TARGET_MEMORY=0.7 python worker.py
    LANES_STATELESS_TASK_QUEUE=lanes-stateless LANES_WORKER_LANES=stateless python worker.py

Every value maps onto one ``temporalio.worker.Worker`` option (:meth:`WorkerTuning.worker_options`); unset
values keep the SDK's defaults (100 slots of each kind, 5 pollers of each kind, 1000 cached workflows).
A lanes activity mostly waits on HTTP, so slots are sized to the provider's rate limits, not to CPU.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from temporalio.worker import PollerBehaviorSimpleMaximum, WorkerTuner

ENV_PREFIX = "LANES_WORKER_"
"""Prefix of every variable of :class:`WorkerTuning`."""

ServedLane = Literal["background", "stateless"]
"""A lane a worker serves. ``background`` is the main task queue: the workflows, the policy activity and
the background activities (and the stateless activity too when it has no queue of its own);
``stateless`` is the stateless activity, on ``LANES_STATELESS_TASK_QUEUE`` when that is set."""


class WorkerTuning(BaseSettings):
    """Worker sizing and served lanes; each field is read from ``LANES_WORKER_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    lanes: Annotated[tuple[ServedLane, ...], NoDecode] = ("background", "stateless")
    """Comma-separated lanes this worker serves (``LANES_WORKER_LANES=stateless``)."""

    max_concurrent_activities: int | None = Field(default=None, ge=1)
    """Activity slots (SDK default 100). Not with the resource-based tuner."""

    max_concurrent_streams: int = Field(default=500, ge=1)
    """Followed streams one process holds at once, on the stream queue's own slots. Each is one open
    connection (each provider client's pool is sized for every stream, check and activity slot, past the
    SDK's 1,000: ``lanes.connect.provider_connections``) and an idle task; a job that finds no free stream
    slot within 30 s follows its response by polling instead."""

    max_concurrent_polls: int = Field(default=100, ge=1)
    """Poll-mode checks running at once, on the poll queue's own slots. A check holds its slot only for
    one GET; waiting jobs hold none."""

    poll_pollers: int = Field(default=4, ge=1)
    """Concurrent task polls of the poll queue: each returns one check, so hundreds of checks a second
    need a few in flight."""

    max_concurrent_workflow_tasks: int | None = Field(default=None, ge=1)
    """Workflow-task slots (SDK default 100). Not with the resource-based tuner."""

    activity_pollers: int | None = Field(default=None, ge=1)
    """Concurrent activity-task polls (SDK default 5)."""

    workflow_pollers: int | None = Field(default=None, ge=2)
    """Concurrent workflow-task polls (SDK default 5; at least 2: one sticky, one normal)."""

    max_cached_workflows: int | None = Field(default=None, ge=0)
    """Workflows kept in memory between tasks (SDK default 1000); 0 replays every task from history."""

    tuner: Literal["fixed", "resource-based"] = "fixed"
    """``fixed`` slot counts, or Temporal's resource-based tuner, which hands out slots while memory and CPU
    stay under their targets."""

    target_memory: float = Field(default=0.8, gt=0, le=1)
    """Resource-based tuner: fraction of memory to aim for (Temporal advises at most 0.8)."""

    target_cpu: float = Field(default=0.9, gt=0, le=1)
    """Resource-based tuner: fraction of CPU to aim for."""

    shutdown_grace_s: float = Field(default=5.0, ge=0, le=3600)
    """On SIGTERM, how long running activities get to hand over before they are cancelled. A container
    platform's own grace period (Kubernetes' ``terminationGracePeriodSeconds``) must be longer."""

    heartbeat_throttle_s: float | None = Field(default=None, gt=0, le=60)
    """Longest gap between two heartbeats an activity sends (SDK: 80% of its heartbeat timeout, at most
    60 s). A cancel reaches a running activity only in the answer to a heartbeat, so with a job's default
    10 s heartbeat timeout a cancel waits up to 8 s; a lower value cancels sooner and costs more heartbeat
    calls (each one an action on Temporal Cloud)."""

    health_file: Path | None = None
    """File the worker touches every 10 s while running (``python -m lanes.worker.health`` checks it)."""

    health_max_age_s: float = Field(default=60.0, gt=0)
    """Age of the health file beyond which ``python -m lanes.worker.health`` reports the worker unhealthy."""

    @field_validator("lanes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _coherent(self) -> WorkerTuning:
        if not self.lanes:
            raise ValueError(f"{ENV_PREFIX}LANES is empty: name background, stateless or both")
        if self.tuner == "resource-based":
            fixed = [
                f"{ENV_PREFIX}{name.upper()}"
                for name in ("max_concurrent_activities", "max_concurrent_workflow_tasks")
                if getattr(self, name) is not None
            ]
            if fixed:
                raise ValueError(
                    f"{' and '.join(fixed)} cannot be combined with {ENV_PREFIX}TUNER=resource-based "
                    "(the tuner decides the slots); unset one of them"
                )
        return self

    def _common_options(self) -> dict[str, Any]:
        """Options every worker of the process shares: shutdown grace and heartbeat throttle."""
        options: dict[str, Any] = {"graceful_shutdown_timeout": timedelta(seconds=self.shutdown_grace_s)}
        if self.heartbeat_throttle_s is not None:
            options["max_heartbeat_throttle_interval"] = timedelta(seconds=self.heartbeat_throttle_s)
        return options

    def worker_options(self) -> dict[str, Any]:
        """Keyword arguments of ``temporalio.worker.Worker`` for this tuning (SDK defaults where unset)."""
        options = self._common_options()
        if self.tuner == "resource-based":
            options["tuner"] = WorkerTuner.create_resource_based(
                target_memory_usage=self.target_memory, target_cpu_usage=self.target_cpu
            )
        else:
            if self.max_concurrent_activities is not None:
                options["max_concurrent_activities"] = self.max_concurrent_activities
            if self.max_concurrent_workflow_tasks is not None:
                options["max_concurrent_workflow_tasks"] = self.max_concurrent_workflow_tasks
        if self.activity_pollers is not None:
            options["activity_task_poller_behavior"] = PollerBehaviorSimpleMaximum(self.activity_pollers)
        if self.workflow_pollers is not None:
            options["workflow_task_poller_behavior"] = PollerBehaviorSimpleMaximum(self.workflow_pollers)
        if self.max_cached_workflows is not None:
            options["max_cached_workflows"] = self.max_cached_workflows
        return options

    def stream_worker_options(self) -> dict[str, Any]:
        """Keyword arguments of the stream queue's ``Worker``: its own fixed slot count, few pollers.

        Stream slots are fixed, not resource-tuned: an open stream costs a connection, which no memory or
        CPU target measures.
        """
        return {
            **self._common_options(),
            "max_concurrent_activities": self.max_concurrent_streams,
            "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(self.activity_pollers or 2),
            "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(2),
        }

    def poll_worker_options(self) -> dict[str, Any]:
        """Keyword arguments of the poll queue's ``Worker``: its own fixed slot count and pollers."""
        return {
            **self._common_options(),
            "max_concurrent_activities": self.max_concurrent_polls,
            "activity_task_poller_behavior": PollerBehaviorSimpleMaximum(self.poll_pollers),
            "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(2),
        }
