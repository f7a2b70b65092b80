"""Worker sizing and served lanes from LANES_WORKER_* variables, validated with errors that name them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum

import lanes.telemetry
from lanes.connect import connect, openai_client
from lanes.errors import WorkerConfigError
from lanes.settings import Settings, configuration_message
from lanes.worker import serving as worker_module
from lanes.worker.serving import build_workers
from lanes.worker.tuning import WorkerTuning
from workflows.registry import WORKFLOWS
from workflows.task_queues import poll_queue, stream_queue


def test_defaults_keep_the_sdk_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANES_WORKER_HEARTBEAT_THROTTLE_S", raising=False)  # the suite's own (conftest.py)
    options = WorkerTuning().worker_options()
    assert set(options) == {"graceful_shutdown_timeout"}
    assert options["graceful_shutdown_timeout"].total_seconds() == 5


def test_the_heartbeat_throttle_bounds_every_workers_heartbeat_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANES_WORKER_HEARTBEAT_THROTTLE_S", "1.5")
    tuning = WorkerTuning()
    for options in (tuning.worker_options(), tuning.stream_worker_options(), tuning.poll_worker_options()):
        assert options["max_heartbeat_throttle_interval"].total_seconds() == 1.5
    monkeypatch.setenv("LANES_WORKER_HEARTBEAT_THROTTLE_S", "0")
    with pytest.raises(ValidationError, match="heartbeat_throttle_s"):
        WorkerTuning()


def test_environment_maps_onto_worker_options(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "LANES_WORKER_MAX_CONCURRENT_ACTIVITIES": "250",
        "LANES_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS": "40",
        "LANES_WORKER_ACTIVITY_POLLERS": "8",
        "LANES_WORKER_WORKFLOW_POLLERS": "4",
        "LANES_WORKER_MAX_CACHED_WORKFLOWS": "300",
        "LANES_WORKER_SHUTDOWN_GRACE_S": "20",
    }.items():
        monkeypatch.setenv(name, value)
    options = Settings().worker.worker_options()
    assert options["max_concurrent_activities"] == 250
    assert options["max_concurrent_workflow_tasks"] == 40
    assert options["activity_task_poller_behavior"] == PollerBehaviorSimpleMaximum(8)
    assert options["workflow_task_poller_behavior"] == PollerBehaviorSimpleMaximum(4)
    assert options["max_cached_workflows"] == 300
    assert options["graceful_shutdown_timeout"].total_seconds() == 20


async def test_the_built_worker_carries_the_tuning(client: Client, settings: Settings) -> None:
    tuned = settings.model_copy(
        update={
            "worker": WorkerTuning(
                max_concurrent_activities=7, max_cached_workflows=11, max_concurrent_streams=3
            )
        }
    )
    async with openai_client(tuned) as provider:
        built, streams, polls = build_workers(client, tuned, provider)
    config = built.config()
    assert config.get("max_concurrent_activities") == 7
    assert config.get("max_cached_workflows") == 11
    # Followed streams have slots of their own, on their own queue: they never hold the main slots.
    assert streams.task_queue == stream_queue(tuned.task_queue)
    assert streams.config().get("max_concurrent_activities") == 3
    assert polls.task_queue == poll_queue(tuned.task_queue)
    resource = settings.model_copy(
        update={
            "worker": WorkerTuning(tuner="resource-based", target_memory=0.6),
            "task_queue": f"{settings.task_queue}-resource",  # one unstarted worker per queue
        }
    )
    async with openai_client(resource) as provider:
        built, _, _ = build_workers(client, resource, provider)
    assert built.config().get("tuner") is not None


async def test_only_the_main_queue_runs_workflows(settings: Settings) -> None:
    """The stream, poll and separate stateless workers run one activity each and no workflow: they
    neither validate the workflows in a sandbox when built nor long-poll for workflow tasks."""
    separate = settings.model_copy(update={"stateless_task_queue": f"{settings.task_queue}-stateless"})
    client = await connect(separate)
    async with openai_client(separate) as provider:
        main, streams, polls, stateless = build_workers(client, separate, provider)
    assert main.config(active_config=True).get("workflows") == list(WORKFLOWS)
    for worker in (streams, polls, stateless):
        assert worker.config(active_config=True).get("workflows") == [], worker.task_queue
    assert stateless.task_queue == separate.stateless_task_queue
    same = settings.model_copy(update={"stateless_task_queue": settings.task_queue})
    client = await connect(same)
    async with openai_client(same) as provider:
        (main, *_) = build_workers(client, same, provider)
    assert main.config(active_config=True).get("workflows") == list(WORKFLOWS)


def test_resource_based_tuner_excludes_fixed_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANES_WORKER_TUNER", "resource-based")
    monkeypatch.setenv("LANES_WORKER_MAX_CONCURRENT_ACTIVITIES", "10")
    with pytest.raises(ValidationError) as caught:
        Settings()
    message = configuration_message(caught.value)
    assert "LANES_WORKER_MAX_CONCURRENT_ACTIVITIES cannot be combined with LANES_WORKER_TUNER" in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LANES_WORKER_TUNER", "adaptive", "LANES_WORKER_TUNER: Input should be 'fixed' or 'resource-based'"),
        ("LANES_WORKER_TARGET_MEMORY", "1.5", "LANES_WORKER_TARGET_MEMORY: Input should be less than"),
        ("LANES_WORKER_WORKFLOW_POLLERS", "1", "LANES_WORKER_WORKFLOW_POLLERS: Input should be greater"),
        ("LANES_WORKER_LANES", "fast", "LANES_WORKER_LANES: Input should be 'background' or 'stateless'"),
        ("LANES_WORKER_LANES", " , ", "LANES_WORKER_LANES is empty"),
    ],
)
def test_the_worker_names_the_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    # main() shuts down the telemetry it installed; in this process that must not be the session's.
    monkeypatch.setattr(lanes.telemetry, "_INSTALLED", [])
    assert worker_module.main() == 1
    err = capsys.readouterr().err
    assert err.startswith("lanes worker: ")
    assert expected in err
    assert err.count("\n") == 1


async def test_stateless_only_worker_needs_the_stateless_queue(client: Client, settings: Settings) -> None:
    only = settings.model_copy(update={"worker": WorkerTuning(lanes=("stateless",))})
    async with openai_client(only) as provider:
        with pytest.raises(WorkerConfigError, match="LANES_STATELESS_TASK_QUEUE"):
            build_workers(client, only, provider)
        zoned = only.model_copy(update={"stateless_task_queue": f"{settings.task_queue}-stateless"})
        (built,) = build_workers(client, zoned, provider)
    assert built.task_queue == f"{settings.task_queue}-stateless"
