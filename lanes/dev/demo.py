"""``lanes demo`` (``make demo``): one scripted job per lane on a fresh embedded stack.

It starts a Temporal dev server, the Responses emulator and a worker process, submits jobs that the
default policy sends to each lane (plus one background job cancelled mid-flight), prints for each the
lane, the rule, the provider response id and the outcome, then checks the emulator's ledger for the one
invariants that matter most (no stored request from a job whose lane is not background; restricted data
only ever sent to the policy's ZDR project) and stops every process it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.client import Client

from lanes.cli.render import printable
from lanes.connect import connect
from lanes.dev.phoenix import BACKGROUND_FILTER, PROJECT, PhoenixServer
from lanes.dev.stack import EmbeddedStack
from lanes.dev.state_dir import claim_state_dir
from lanes.job_outcome import record_job_outcome
from lanes.job_trace import job_root_span
from lanes.jobs import cancel_job, start_job, wait_for_outcome, wait_for_phase
from lanes.telemetry import shutdown_telemetry
from responses_emulator import EmulatorConfig
from workflows.model_task_io import ModelTaskInput


@dataclass(frozen=True)
class DemoJob:
    """A scripted submission."""

    label: str
    task: ModelTaskInput
    cancel_once_running: bool = False


JOBS = (
    DemoJob(
        "public research (background, streamed)",
        ModelTaskInput(
            job_type="public_research",
            data_class="public",
            input="Summarise public sources on durable execution for long model tasks.",
        ),
    ),
    DemoJob(
        "repository analysis (background, polled)",
        ModelTaskInput(
            job_type="coding_analysis",
            data_class="internal",
            input="Map the modules of this repository and their dependencies.",
        ),
    ),
    DemoJob(
        "support analysis, confidential (stateless)",
        ModelTaskInput(
            job_type="support_analysis",
            data_class="confidential",
            input="Classify this support ticket by urgency.",
        ),
    ),
    DemoJob(
        "sensitive customer data (ZDR stateless)",
        ModelTaskInput(
            job_type="sensitive_customer",
            data_class="restricted",
            input="Analyse this customer's account history.",
        ),
    ),
    DemoJob(
        "repository analysis, restricted (denied)",
        ModelTaskInput(
            job_type="coding_analysis",
            data_class="restricted",
            input="Review the access-control module of the billing service.",
        ),
    ),
    DemoJob(
        "public research, cancelled by signal",
        ModelTaskInput(
            job_type="public_research",
            data_class="public",
            input="A long survey that the user cancels.",
            metadata={"emulator_duration": "60"},
        ),
        cancel_once_running=True,
    ),
)
"""The scripted jobs, one per lane and one cancellation."""


async def _run_job(client: Client, task_queue: str, job: DemoJob) -> dict[str, Any]:
    workflow_id = f"demo-{job.task.job_type}-{uuid.uuid4().hex[:8]}"
    # One trace per job, from this submission to the last provider call (when OTEL_* exports spans).
    with job_root_span("lanes demo", workflow_id=workflow_id, task=job.task) as span:
        handle = await start_job(client, job.task, workflow_id=workflow_id, task_queue=task_queue)
        if job.cancel_once_running:
            await wait_for_phase(handle, "running")
            await cancel_job(client, workflow_id, reason="demo: user changed their mind", requested_by="demo")
        outcome = await wait_for_outcome(client, workflow_id)
        record_job_outcome(span, outcome)
    chars = f" ({len(outcome.output_text)} chars)" if outcome.output_text else ""
    return {
        "label": job.label,
        "workflow_id": workflow_id,
        "lane": outcome.lane.value if outcome.lane else None,
        "rule": outcome.rule,
        "response_id": outcome.response_id,
        "outcome": outcome.status + chars,
    }


async def run_demo(*, state_dir: Path, phoenix: PhoenixServer | None = None) -> int:
    """Run the demo; return 0 if every job ended as scripted and the ledger invariant holds.

    With ``phoenix`` (``lanes demo --traces``), Phoenix runs beside the stack and receives every trace;
    after the table it stays up, with its address and the background-lane filter printed, until Ctrl-C.

    ``state_dir`` is cleared first, but only if lanes made it (:func:`lanes.dev.state_dir.claim_state_dir`):
    a ``--state-dir .`` typed by mistake is refused, not emptied.

    Raises:
        StateDirError: ``state_dir`` is not a directory lanes may clear; nothing was started or removed.
    """
    claim_state_dir(state_dir, made_by="lanes demo", clear=True)
    async with contextlib.AsyncExitStack() as parts:
        if phoenix is not None:
            print("starting Arize Phoenix (about 25 s)...", file=sys.stderr, flush=True)
            await parts.enter_async_context(phoenix)
        code = await _demo(state_dir, phoenix)
        if phoenix is not None:
            shutdown_telemetry()  # the CLI's spans reach Phoenix now, not at exit
            print(f"\nPhoenix     {phoenix.url}  (project {PROJECT!r}: one trace per job)")
            print(f"            background jobs: filter  {BACKGROUND_FILTER}")
            print("Ctrl-C stops Phoenix.", flush=True)
            await _until_interrupted()
        return code


async def _until_interrupted() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _demo(state_dir: Path, phoenix: PhoenixServer | None) -> int:
    print("starting the embedded stack (Temporal dev server, Responses emulator, worker)...", file=sys.stderr)
    async with EmbeddedStack(
        state_dir=state_dir,
        emulator_config=EmulatorConfig(duration_s=3.0),
        persistent=True,
        worker_env=phoenix.otlp_environment() if phoenix else None,
        made_by="lanes demo",
    ) as stack:
        client = await connect(stack.settings)
        rows = await asyncio.gather(*(_run_job(client, stack.settings.task_queue, job) for job in JOBS))
        entries = stack.emulator.ledger.entries()

    print()
    print(f"{'job':44} {'lane':10} {'rule':30} {'response id':54} outcome")
    for row in rows:
        print(
            f"{row['label']:44} {row.get('lane') or '-':10} {row.get('rule') or '-':30} "
            f"{printable(row.get('response_id') or '-'):54} {printable(row['outcome'])}"
        )

    background_ids = {row["workflow_id"] for row in rows if row.get("lane") == "background"}
    stored = [e for e in entries if e.store]
    leaked = [e for e in stored if e.metadata.get("lanes_workflow_id") not in background_ids]
    cancels = [e for e in entries if e.path.endswith("/cancel")]
    # Restricted data goes only to the policy's ZDR project (endpoints.openai-zdr): the emulator knows
    # the project by the key each request carried (lanes.dev.emulator_keys).
    restricted = {
        row["workflow_id"] for row, job in zip(rows, JOBS, strict=True) if job.task.data_class == "restricted"
    }
    to_zdr = [e for e in entries if e.metadata.get("lanes_workflow_id") in restricted]
    off_zdr = [e for e in to_zdr if not e.zdr_project]
    print()
    print(
        f"emulator ledger: {len(entries)} requests, {len(stored)} with store=true, "
        f"{len(cancels)} cancel calls, {sum(e.zdr_project for e in entries)} to the ZDR project"
    )
    print(f"stored requests from jobs outside the background lane: {len(leaked)}")
    print(f"restricted-data requests outside the ZDR project: {len(off_zdr)}")
    expected = ["completed", "completed", "completed", "completed", "denied", "cancelled"]
    ok = (
        not leaked
        and bool(to_zdr)
        and not off_zdr
        and all(str(row["outcome"]).startswith(want) for row, want in zip(rows, expected, strict=True))
    )
    print("demo " + ("passed" if ok else "FAILED: outcomes differ from the script"))
    return 0 if ok else 1
