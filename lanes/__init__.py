"""lanes: long model tasks on Temporal, each job on the runtime lane its job type and data class allow.

    import lanes

    async def main() -> None:
        async with await lanes.LanesClient.connect() as client:
            job = await client.submit("public_research", "Survey durable execution")
            print(await job.output())

    lanes.run(main())   # asyncio.run, then an exit the Temporal SDK's threads cannot abort

This package is the project's public face: the client API below, the ``lanes`` command
(:mod:`lanes.cli`), the servers it starts (:mod:`lanes.servers`), the worker's wiring
(:mod:`lanes.worker`) and the embedded dev stack (:mod:`lanes.dev`). The workflows, activities and
policy engine beside it are what a worker runs. Errors are drawn as a tree in :mod:`lanes.errors`.

The names are imported on first use, so ``python -m lanes.worker.health`` (a container's health check,
every 30 s) does not load Temporal and the OpenAI SDK to read a file's age.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lanes.client import Job, LanesClient
    from lanes.errors import (
        ConfigurationError,
        InvalidJobError,
        JobCancelledError,
        JobDeniedError,
        JobError,
        JobFailedError,
        JobIdInUseError,
        JobNotFoundError,
        JobNotWatchableError,
        LanesError,
        UndecodablePayloadError,
    )
    from lanes.job_outcome import JobOutcome
    from lanes.job_status import JobStatus
    from lanes.jobs import CancelReceipt, JobSummary
    from lanes.program import run
    from lanes.settings import Settings

__all__ = [
    "CancelReceipt",
    "ConfigurationError",
    "InvalidJobError",
    "Job",
    "JobCancelledError",
    "JobDeniedError",
    "JobError",
    "JobFailedError",
    "JobIdInUseError",
    "JobNotFoundError",
    "JobNotWatchableError",
    "JobOutcome",
    "JobStatus",
    "JobSummary",
    "LanesClient",
    "LanesError",
    "Settings",
    "UndecodablePayloadError",
    "run",
]

_HOMES = {
    "Job": "lanes.client",
    "LanesClient": "lanes.client",
    "JobOutcome": "lanes.job_outcome",
    "JobStatus": "lanes.job_status",
    "CancelReceipt": "lanes.jobs",
    "JobSummary": "lanes.jobs",
    "Settings": "lanes.settings",
    "run": "lanes.program",
}
"""Where each public name lives; the rest are errors, from :mod:`lanes.errors`."""


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'lanes' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES.get(name, "lanes.errors")), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
