"""Replay: saved histories of every path must replay on today's workflow code without nondeterminism.

The histories in ``tests/histories/`` were recorded from real runs; re-record them after an intentional,
versioned workflow change with ``LANES_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py``, which
also records the hash of the workflow sources they were recorded with (``workflow_sources.sha256``): a
change to ``workflows/`` without new histories then fails the last test of this file.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.converter import PayloadCodec
from temporalio.worker import Replayer

from lanes.connect import plugins
from lanes.jobs import wait_for_phase
from lanes.settings import Settings
from tests.lanes.servers.webhooks.webhook_stack import NO_POLL_S, webhook_stack
from workflows.model_task import (
    AUDIT_PATCH,
    FOLLOW_PATCH,
    WEBHOOK_PATCH,
    CancelInput,
    ModelTaskInput,
    ModelTaskWorkflow,
)

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
SOURCES_HASH = HISTORIES / "workflow_sources.sha256"
RECORD = os.environ.get("LANES_RECORD_HISTORIES") == "1"


def code_shape(source: str) -> str:
    """A module's code as its syntax tree, without docstrings (comments never reach the tree).

    What replays is the code: a docstring or comment edit must not force new histories, and a history
    recorded again for no reason proves nothing about the code it was recorded with.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            if docstring and isinstance(first.value.value, str):  # type: ignore[union-attr]
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def workflow_sources_hash() -> str:
    """SHA-256 over the code (:func:`code_shape`) and name of every ``workflows/*.py``, in name order."""
    digest = hashlib.sha256()
    for path in sorted(WORKFLOWS.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + code_shape(path.read_text()).encode() + b"\0")
    return digest.hexdigest()


def test_the_hash_ignores_docstrings_and_comments_but_not_code() -> None:
    code = 'def f(x):\n    """Why."""\n    return x + 1  # one more\n'
    reworded = '"""A module."""\n\ndef f(x):\n    """Why, reworded."""\n    # a comment\n    return x + 1\n'
    assert code_shape(code) == code_shape(reworded)
    assert code_shape(code) != code_shape(code.replace("x + 1", "x + 2"))
    assert code_shape('def f():\n    """Only a docstring."""\n') == code_shape("def f():\n    pass\n")


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
    return await saved_form(client, handle)


async def saved_form(client: Client, handle: WorkflowHandle[Any, Any]) -> str:
    """A finished job's history as it is saved: JSON, with every payload decoded."""
    history = await handle.fetch_history()
    codec = client.data_converter.payload_codec
    if codec is not None:
        # Saved histories are kept decoded: the session's key is random, and a history only it could
        # read would never replay again. They hold nothing but these tests' own prompts.
        for event in history.events:
            await decode_payloads_in(event, codec)
    return history.to_json()


async def decode_payloads_in(message: Message, codec: PayloadCodec) -> None:
    """Decode, in place, every ``Payload`` anywhere inside a protobuf message (events, failures, maps)."""
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None:
            continue
        if kind.GetOptions().map_entry:
            values = list(value.values())
            if values and isinstance(values[0], Payload):
                for item, new in zip(values, await codec.decode(values), strict=True):
                    item.CopyFrom(new)
            else:
                for item in values:
                    if isinstance(item, Message):
                        await decode_payloads_in(item, codec)
            continue
        items = list(value) if field.is_repeated else [value]
        if kind.full_name == Payload.DESCRIPTOR.full_name:
            for item, new in zip(items, await codec.decode(items), strict=True):
                item.CopyFrom(new)
        else:
            for item in items:
                await decode_payloads_in(item, codec)


@pytest.mark.parametrize("name", sorted(PATHS))
async def test_fresh_history_replays(client: Client, worker: str, settings: Settings, name: str) -> None:
    history_json = await run_path(client, worker, name)
    if RECORD:
        (HISTORIES / f"{name}.json").write_text(history_json)
        SOURCES_HASH.write_text(workflow_sources_hash() + "\n")
    # run_path decoded the history (as it is saved), so the replayer's codec must admit clear text.
    readable = settings.model_copy(update={"encryption_allow_plaintext": True})
    await replayer(readable).replay_workflow(WorkflowHistory.from_json(f"replay-{name}", history_json))


@pytest.mark.parametrize(
    "path", sorted(HISTORIES.glob("**/*.json")), ids=lambda p: str(p.relative_to(HISTORIES).with_suffix(""))
)
async def test_saved_history_replays(path: Path) -> None:
    """Today's histories, and those of earlier workflow versions (in subdirectories named for the patch
    that changed their path), which running workflows may still have."""
    await replayer().replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))


async def test_fresh_webhook_history_replays(client: Client, settings: Settings, tmp_path: Path) -> None:
    """The webhook path: a ``provider_finished`` signal ends the wait (``WEBHOOK_PATCH``'s branch)."""
    async with webhook_stack(client, settings, tmp_path, poll_s=NO_POLL_S) as stack:
        handle = await stack.start()
        result = await handle.result()
        assert result.by_webhook
        history_json = await saved_form(client, handle)
    if RECORD:
        (HISTORIES / "webhook.json").write_text(history_json)
    readable = settings.model_copy(update={"encryption_allow_plaintext": True})
    await replayer(readable).replay_workflow(WorkflowHistory.from_json("replay-webhook", history_json))


def test_every_path_has_a_saved_history() -> None:
    assert {p.stem for p in HISTORIES.glob("*.json")} == {*PATHS, "webhook"}


BEFORE_PATCH = {
    AUDIT_PATCH: "before-audit-outcome-memo",
    FOLLOW_PATCH: "before-follow-by-retry",
    WEBHOOK_PATCH: "before-audit-outcome-memo",
}
"""Each patch and the folder of histories recorded by workflow code that did not have it yet. The audit
patch was the first, so its folder predates the webhook signal too (a history from before the signal
existed cannot hold one: it replays through ``WEBHOOK_PATCH``'s old branch)."""


def test_every_patch_has_a_history_from_before_it() -> None:
    """Running workflows may have started before any patch: each has histories that never call it."""
    for patch, name in BEFORE_PATCH.items():
        saved = sorted((HISTORIES / name).glob("*.json"))
        assert saved, f"no histories from before {patch} in {name}/"
        for path in saved:
            assert patch not in patches_in(path.read_text()), path


def patches_in(history_json: str) -> set[str]:
    """Patch ids whose markers a saved history records."""
    history = WorkflowHistory.from_json("patches", history_json)
    found: set[str] = set()
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if marker.marker_name != "core_patch":
            continue
        for payloads in marker.details.values():
            for payload in payloads.payloads:
                found.add(json.loads(payload.data)["id"])
    return found


def test_saved_histories_match_the_workflow_code() -> None:
    """Workflow code changed since the histories were recorded: prove the change replays, then re-record.

    A change to ``workflows/`` ships with either ``workflow.patched`` (old histories must still replay: keep
    them, and add the new path's) or a new worker deployment version (see docs/operations.md, Upgrades).
    """
    recorded = SOURCES_HASH.read_text().strip() if SOURCES_HASH.exists() else "(none)"
    assert recorded == workflow_sources_hash(), (
        "workflows/ changed since tests/histories/ were recorded. Check that the saved histories still "
        "replay (this file's other tests), keep the old ones if the change is patched, then record new "
        "ones: LANES_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py"
    )
