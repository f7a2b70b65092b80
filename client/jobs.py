"""Client-side helpers for watching a job through its ``status`` query.

A client that wants to act at a point of a job's life (cancel it once it runs, show progress once the
provider has an id) waits on the workflow's own account of its phase instead of sleeping and hoping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio.client import WorkflowHandle

from workflows.model_task import ModelTaskWorkflow, Phase, StatusResult

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
