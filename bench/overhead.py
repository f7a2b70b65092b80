"""The overhead section: short jobs, one per contender at a time, against calling the SDK directly.

Each round runs one short job on every contender and the two direct calls side by side (a background
``stream=true`` create read to its terminal event, and a synchronous create), so a round's noise hits
all of them. Figures: submit to the provider's create, and submit to the caller holding the result.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import openai
from temporalio.client import Client

from bench.contenders import Contender, job_metadata, start
from bench.emulator_admin import EmulatorAdmin
from bench.job_record import JobRecord, attribute_requests, collect, run_job
from bench.results import OverheadFigures
from bench.stats import median

DIRECT_STREAM = "sdk direct (background stream)"
DIRECT_SYNC = "sdk direct (synchronous)"

TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})


async def _direct(record: JobRecord, provider: openai.AsyncOpenAI, *, background: bool) -> None:
    metadata = job_metadata(record.job_id, record.phase, record.duration_s)
    text = f"Benchmark job {record.job_id}: summarise durable execution."
    record.submitted_at = time.time()
    try:
        if background:
            stream = await provider.responses.create(
                model="gpt-5-mini", input=text, background=True, store=True, stream=True, metadata=metadata
            )
            async for event in stream:
                if event.type in TERMINAL_EVENTS:
                    break
            await stream.close()
        else:
            await provider.responses.create(model="gpt-5-mini", input=text, metadata=metadata)
        record.outcome = "completed"
        record.finished_at = time.time()
    except openai.OpenAIError as exc:
        record.outcome = f"{type(exc).__name__}: {exc}"[:200]


async def run_overhead(
    client: Client,
    admin: EmulatorAdmin,
    *,
    contenders: Sequence[Contender],
    rounds: int,
    duration_s: float,
    task_queue: str,
) -> tuple[list[OverheadFigures], dict[str, float], list[JobRecord]]:
    """Run ``rounds`` rounds; return per-contender figures, the direct calls' figures and every record."""
    phase = "overhead"
    records: list[JobRecord] = []
    async with openai.AsyncOpenAI(api_key="emulator", base_url=admin.base_url, max_retries=0) as provider:
        for index in range(rounds):
            runs: list[Coroutine[Any, Any, object]] = []
            for contender in contenders:
                record = JobRecord(
                    contender=contender.value,
                    job_id=f"{phase}-{contender.value.replace(' ', '-')}-{index}",
                    phase=phase,
                    duration_s=duration_s,
                    submitted_at=0.0,
                )
                records.append(record)
                starter = functools.partial(
                    start,
                    client,
                    contender,
                    job_id=record.job_id,
                    task_queue=task_queue,
                    phase=phase,
                    duration_s=duration_s,
                )
                runs.append(run_job(record, starter, timeout_s=duration_s + 120))
            for name, background in ((DIRECT_STREAM, True), (DIRECT_SYNC, False)):
                record = JobRecord(
                    contender=name,
                    job_id=f"{phase}-{name.split('(')[1].rstrip(')').replace(' ', '-')}-{index}",
                    phase=phase,
                    duration_s=duration_s,
                    submitted_at=0.0,
                )
                records.append(record)
                runs.append(_direct(record, provider, background=background))
            await asyncio.gather(*runs)
    workflow_records = [r for r in records if r.contender not in (DIRECT_STREAM, DIRECT_SYNC)]
    await collect(client, admin, workflow_records)
    direct_records = [r for r in records if r.contender in (DIRECT_STREAM, DIRECT_SYNC)]
    await collect_direct(admin, direct_records)

    def medians(name: str) -> tuple[float | None, float | None]:
        mine = [r for r in records if r.contender == name and r.outcome == "completed"]
        return (
            median([v for r in mine if (v := r.submit_to_create_s) is not None]),
            median([v for r in mine if (v := r.end_to_end_s) is not None]),
        )

    direct: dict[str, float] = {}
    for name in (DIRECT_STREAM, DIRECT_SYNC):
        create, e2e = medians(name)
        if create is not None:
            direct[f"{name}: submit to create"] = create
        if e2e is not None:
            direct[f"{name}: end to end"] = e2e
    figures = []
    for contender in contenders:
        create, e2e = medians(contender.value)
        compared = DIRECT_SYNC if contender == Contender.SYNC else DIRECT_STREAM
        base = direct.get(f"{compared}: end to end")
        figures.append(
            OverheadFigures(
                contender=contender.value,
                jobs=rounds,
                submit_to_create_s=create,
                end_to_end_s=e2e,
                direct=compared,
                added_s=None if e2e is None or base is None else e2e - base,
            )
        )
    return figures, direct, records


async def collect_direct(admin: EmulatorAdmin, records: list[JobRecord]) -> None:
    """The direct calls have no history: only their requests and the provider's times."""
    attribute_requests(records, await admin.ledger(), await admin.completions())
