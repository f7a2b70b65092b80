"""Client-side entry points for jobs: start one under a checked id, and watch it through its ``status``.

A client that wants to act at a point of a job's life (cancel it once it runs, show progress once the
provider has an id) waits on the workflow's own account of its phase instead of sleeping and hoping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from workflows.model_task import ModelTaskInput, ModelTaskResult, ModelTaskWorkflow, Phase, StatusResult

MAX_WORKFLOW_ID_CHARS = 200
"""Longest workflow id lanes accepts: it travels in the provider's metadata (64-character keys, 512-
character values) and in every ``Idempotency-Key``, and is typed by people."""

WORKFLOW_ID_RULE = (
    f"1 to {MAX_WORKFLOW_ID_CHARS} printable ASCII characters with no spaces "
    "(letters, digits and punctuation such as - _ . : / @)"
)
"""The rule :func:`check_workflow_id` enforces, as error messages state it."""


class InvalidWorkflowIdError(ValueError):
    """A workflow id breaks :data:`WORKFLOW_ID_RULE`; the message says where."""


class JobIdInUseError(Exception):
    """A job with this workflow id exists (running, or finished and not to be replaced)."""

    def __init__(self, workflow_id: str, *, running: bool) -> None:
        self.workflow_id = workflow_id
        self.running = running
        state = "is still running" if running else "already exists"
        super().__init__(f"a job with workflow id {workflow_id!r} {state}")


POLL_INTERVAL_S = 0.1
"""How often the status query is asked; a query is cheap and adds nothing to history."""


async def wait_for_status(
    handle: WorkflowHandle[Any, Any], predicate: Callable[[StatusResult], bool], *, timeout_s: float = 60
) -> StatusResult:
    """Query a job's status until ``predicate`` holds.

    Args:
        handle: The job's workflow handle.
        predicate: What to wait for.
        timeout_s: How long to wait.

    Returns:
        The first status for which ``predicate`` holds.

    Raises:
        TimeoutError: It did not hold within ``timeout_s``.
    """
    async with asyncio.timeout(timeout_s):
        while True:
            status = await handle.query(ModelTaskWorkflow.status)
            if predicate(status):
                return status
            await asyncio.sleep(POLL_INTERVAL_S)


async def wait_for_phase(
    handle: WorkflowHandle[Any, Any], phase: Phase, *, timeout_s: float = 60
) -> StatusResult:
    """Wait until the job reports ``phase``; see :func:`wait_for_status`."""
    return await wait_for_status(handle, lambda status: status.phase == phase, timeout_s=timeout_s)


def check_workflow_id(workflow_id: str) -> str:
    """Return ``workflow_id`` if it follows :data:`WORKFLOW_ID_RULE`.

    Checked before anything starts: a newline in an id otherwise surfaces minutes later as a provider
    error, because the id travels in HTTP headers and provider metadata.

    Raises:
        InvalidWorkflowIdError: Naming the first offending character and its position.
    """
    if not 1 <= len(workflow_id) <= MAX_WORKFLOW_ID_CHARS:
        raise InvalidWorkflowIdError(f"must be {WORKFLOW_ID_RULE}; got {len(workflow_id)} characters")
    for position, char in enumerate(workflow_id):
        if not "!" <= char <= "~":
            raise InvalidWorkflowIdError(f"must be {WORKFLOW_ID_RULE}; got {char!r} at position {position}")
    return workflow_id


async def start_job(
    client: Client, task: ModelTaskInput, *, workflow_id: str, task_queue: str, new_run: bool = False
) -> WorkflowHandle[ModelTaskWorkflow, ModelTaskResult]:
    """Start a job under ``workflow_id``, refusing an id that is already in use.

    Temporal's default would start a new run under the id of a finished job, and a reader of that id
    would then see the new job where they expected the old one. A new run under a used id is therefore
    opt-in (``new_run``); a running job's id is never reused.

    Raises:
        InvalidWorkflowIdError: The id breaks :data:`WORKFLOW_ID_RULE`.
        JobIdInUseError: The id is in use (and ``new_run`` is false, or the job still runs).
    """
    check_workflow_id(workflow_id)
    policy = WorkflowIDReusePolicy.ALLOW_DUPLICATE if new_run else WorkflowIDReusePolicy.REJECT_DUPLICATE
    try:
        return await client.start_workflow(
            ModelTaskWorkflow.run, task, id=workflow_id, task_queue=task_queue, id_reuse_policy=policy
        )
    except WorkflowAlreadyStartedError:
        running = new_run
        if not new_run:
            description = await client.get_workflow_handle(workflow_id).describe()
            running = description.close_time is None
        raise JobIdInUseError(workflow_id, running=running) from None
