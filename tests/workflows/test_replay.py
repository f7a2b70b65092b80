"""Replay: saved histories of every path must replay on today's workflow code without nondeterminism.

The histories in ``tests/histories/`` were recorded from real runs; re-record them after an intentional,
versioned workflow change with ``LANES_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py``.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.worker import Replayer

from client.connect import plugins
from client.jobs import wait_for_phase
from client.settings import Settings
from workflows.model_task import CancelInput, ModelTaskInput, ModelTaskWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"

PATHS = {
    "background": ModelTaskInput(job_type="public_research", data_class="public", input="replay background"),
    "background_poll": ModelTaskInput(job_type="coding_analysis", data_class="internal", input="replay poll"),
    "stateless": ModelTaskInput(
        job_type="support_analysis", data_class="confidential", input="replay stateless"
    ),
    "denied": ModelTaskInput(job_type="coding_analysis", data_class="restricted", input="replay denied"),
    "cancelled": ModelTaskInput(
        job_type="public_research", input="replay cancel", metadata={"emulator_duration": "120"}
    ),
}


def replayer(settings: Settings | None = None) -> Replayer:
    # The same plugins as every client: they bring the converter (with the test session's key, for
    # fresh histories, which are encrypted) and the workflows.
    return Replayer(workflows=[], plugins=plugins(settings))


async def run_path(client: Client, task_queue: str, name: str) -> str:
    handle = await client.start_workflow(
        ModelTaskWorkflow.run, PATHS[name], id=f"replay-{name}-{uuid.uuid4()}", task_queue=task_queue
    )
    if name == "cancelled":
        await wait_for_phase(handle, "running")
        await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason="replay test"))
    try:
        await handle.result()
    except WorkflowFailureError:
        assert name == "denied"
    history = await handle.fetch_history()
    return history.to_json()


@pytest.mark.parametrize("name", sorted(PATHS))
async def test_fresh_history_replays(client: Client, worker: str, settings: Settings, name: str) -> None:
    history_json = await run_path(client, worker, name)
    if os.environ.get("LANES_RECORD_HISTORIES") == "1":
        (HISTORIES / f"{name}.json").write_text(history_json)
    await replayer(settings).replay_workflow(WorkflowHistory.from_json(f"replay-{name}", history_json))


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_saved_history_replays(path: Path) -> None:
    await replayer().replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


def test_every_path_has_a_saved_history() -> None:
    assert {p.stem for p in HISTORIES.glob("*.json")} == set(PATHS)
