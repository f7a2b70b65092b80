"""The ``lanes`` command line (Typer): every command parses, calls :mod:`lanes.jobs`, and renders.

Exit codes (see :mod:`lanes.cli.render`): 0 success; 1 the job failed, was denied or ended incomplete; 2 bad
input (the message names the field and the fix); 3 the job is still running. ``--json`` prints exactly
one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import os
import shlex
import signal
import socket
import sys
import uuid
from datetime import UTC
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from temporalio.client import Client

from activities.failures import FailureType
from lanes.cli import policy as policy_commands
from lanes.cli.input_file import read_input_file
from lanes.cli.render import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_RUNNING,
    CliError,
    fields,
    print_json,
    printable,
    table,
    translate_errors,
)
from lanes.connect import connect, endpoint_clients
from lanes.dev_env import DEV_STATE_DIR, env_file, exports, read_dev_env, remove_dev_env, write_dev_env
from lanes.doctor import DoctorCheck, run_checks
from lanes.errors import (
    InvalidJobError,
    InvalidWorkflowIdError,
    JobIdInUseError,
    JobListError,
    JobNotWatchableError,
    PolicyConfigError,
    WatchEndpointError,
)
from lanes.job_outcome import JobOutcome, record_job_outcome
from lanes.job_status import JobStatus
from lanes.job_trace import job_root_span
from lanes.jobs import (
    JobSummary,
    cancel_job,
    check_workflow_id,
    job_outcome,
    job_status,
    jobs_query,
    list_jobs,
    parse_since,
    start_job,
    wait_for_outcome,
    watch_job,
)
from lanes.settings import Settings, client_environ, load_settings
from lanes.submission import build_task, client_policy, policy_file_message
from lanes.telemetry import end_process, setup_tracing, traces_exported
from policy import PolicyFileError, load_policy, unused_approval
from workflows.model_task_io import MAX_INPUT_CHARS, CancellationRecord

app = typer.Typer(
    name="lanes",
    help="Run long model jobs on Temporal in the lane their policy allows (background, stateless, denied).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonFlag = Annotated[bool, typer.Option("--json", help="print exactly one JSON object on stdout")]
WorkflowId = Annotated[str, typer.Argument(help="the workflow id `lanes submit` printed")]

SUBMIT_FLAGS = {
    "job_type": "--job-type",
    "data_class": "--data-class",
    "input": "--input",
    "model": "--model",
    "instructions": "--instructions",
    "max_output_tokens": "--max-output-tokens",
    "metadata": "--metadata",
    "approval": "--approval",
    "tenant": "--tenant",
    "workflow_id": "--id",
}
"""The flag of each ``ModelTaskInput`` field, so that a validation error names what the user typed."""


CLI_SERVICE_NAME = "lanes-cli"
"""``service.name`` of the CLI's spans unless ``OTEL_SERVICE_NAME`` is set."""


def _settings() -> Settings:
    return load_settings()


@functools.cache
def _trace_cli(trace_queries: bool) -> None:
    # Only a CLI whose spans go somewhere starts traces (see lanes.telemetry.traces_exported).
    if traces_exported():
        setup_tracing(CLI_SERVICE_NAME, trace_queries=trace_queries)


async def _connect(settings: Settings) -> Client:
    # Every command that talks to Temporal connects here, so each one traces with the same OTEL_* setup.
    _trace_cli(trace_queries=settings.trace_queries)
    return await connect(settings)


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CliError(
            f"--input-file: {source} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it to UTF-8, e.g. iconv -t UTF-8"
        ) from None


def _read_input(text: str | None, file: str | None) -> str:
    if (text is None) == (file is None):
        raise CliError("give the prompt with --input TEXT or --input-file FILE ('-' for stdin), not both")
    flag = "--input" if text is not None else "--input-file"
    if text is not None:
        prompt = text
    else:
        assert file is not None
        # Bounded: /dev/zero or an endless pipe is refused past the hard limit, not read into memory.
        prompt = _decode(read_input_file(file), "stdin" if file == "-" else file)
    if len(prompt) > MAX_INPUT_CHARS:
        raise CliError(
            f"{flag}: {len(prompt):,} characters, over the hard limit of {MAX_INPUT_CHARS:,} a prompt may "
            "have whatever the policy allows; shorten it or split the job"
        )
    if prompt and not prompt.strip():
        raise CliError(f"{flag}: the prompt is only whitespace; give the text the model should work on")
    return prompt


def _metadata(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--metadata {pair!r}: expected KEY=VALUE")
        result[key] = value
    return result


def _flagged(exc: InvalidJobError) -> CliError:
    """A refused submission as the CLI says it: each problem after the flag that sets its field."""
    lines = [
        f"{SUBMIT_FLAGS.get(field, '--' + field.replace('_', '-'))}: {what}" for field, what in exc.problems
    ]
    prefix = "invalid job: " if len(exc.problems) > 1 or str(exc).startswith("invalid job: ") else ""
    return CliError(prefix + "; ".join(lines))


def cancellation_rows(record: CancellationRecord) -> list[tuple[str, object]]:
    """A cancellation record as readable ``name value`` rows."""
    rows: list[tuple[str, object]] = [
        ("cancelled by", f"{record.requested_by} (via {record.via})"),
        ("cancelled at", f"{record.requested_at:%Y-%m-%d %H:%M:%S %Z} in phase {record.phase}".strip()),
        ("cancel reason", record.reason or "(none given)"),
    ]
    if not record.effective:
        rows.append(("cancel effect", "none: the provider had already finished, its result stands"))
    if record.unconfirmed_create:
        rows.append(("cancel note", "a create was tried but never answered; check the provider"))
    return rows


def show_outcome(outcome: JobOutcome, *, as_json: bool, with_output: bool = True) -> int:
    """Print how a job ended; return its exit code (0 completed or cancelled, else 1).

    ``with_output=False`` leaves the output text out (``lanes watch`` printed it as it streamed).
    """
    code = EXIT_OK if outcome.succeeded else EXIT_JOB_FAILED
    if as_json:
        print_json(outcome)
        return code
    out = sys.stderr if outcome.status in ("failed", "denied") else sys.stdout
    rule = outcome.rule or "-"
    version = outcome.decision.policy_version if outcome.decision else "-"
    rows: list[tuple[str, object]] = [
        ("workflow", outcome.workflow_id),
        ("status", outcome.status),
        ("lane", f"{outcome.lane or '-'} (rule {rule}, policy {version})"),
        ("response", outcome.response_id),
    ]
    if outcome.cancellation:
        rows += cancellation_rows(outcome.cancellation)
    if outcome.status == "denied":
        rows.append(("error", outcome.error_message))
    elif outcome.error_code or outcome.error_message:
        rows.append(
            ("error", f"{outcome.error_code or outcome.error_type or 'error'}: {outcome.error_message}")
        )
    if outcome.incomplete_reason or outcome.status == "incomplete":
        rows.append(("incomplete", f"{outcome.incomplete_reason or 'unknown reason'} (partial output below)"))
    if outcome.query_error:
        rows.append(("query error", outcome.query_error))
    fields(rows, file=out)
    if with_output and outcome.output_text:
        print()
        print(printable(outcome.output_text, multiline=True))
    return code


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers): still cancel
        return "unknown"


@app.command()
@translate_errors("lanes submit")
def submit(
    job_type: Annotated[str, typer.Option(help="a job type of the policy, e.g. public_research")],
    input: Annotated[str | None, typer.Option("--input", help="the prompt text")] = None,
    input_file: Annotated[
        str | None, typer.Option(help="read the prompt from a UTF-8 file ('-' for stdin)")
    ] = None,
    data_class: Annotated[str | None, typer.Option(help="declared data class")] = None,
    model: Annotated[str | None, typer.Option(help="model (default: the lane profile's)")] = None,
    instructions: Annotated[str | None, typer.Option(help="system instructions")] = None,
    max_output_tokens: Annotated[int | None, typer.Option(help="16 to 128000")] = None,
    metadata: Annotated[
        list[str] | None, typer.Option(metavar="KEY=VALUE", help="provider metadata (repeatable)")
    ] = None,
    approval: Annotated[str | None, typer.Option(help="security-review approval reference")] = None,
    tenant: Annotated[str | None, typer.Option(help="tenant whose policy overrides apply")] = None,
    id: Annotated[
        str | None, typer.Option("--id", help="workflow id (default: lanes-<job type>-<random>)")
    ] = None,
    new_run: Annotated[
        bool, typer.Option("--new-run", help="start a new run under an --id whose job has ended")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the job and print its outcome")] = False,
    json: JsonFlag = False,
) -> None:
    """Start a model job; print its workflow id (or, with --wait, its outcome)."""
    settings = _settings()
    try:
        policy = client_policy(settings)
    except PolicyConfigError as exc:
        raise CliError(str(exc), code=EXIT_JOB_FAILED) from None
    try:
        task, expected = build_task(
            settings,
            policy,
            job_type=job_type,
            data_class=data_class,
            input=_read_input(input, input_file),
            model=model,
            instructions=instructions,
            max_output_tokens=max_output_tokens,
            metadata=_metadata(metadata or []),
            approval=approval,
            tenant=tenant,
        )
    except InvalidJobError as exc:
        raise _flagged(exc) from None
    ignored = unused_approval(approval, expected)
    if ignored is not None:
        print(f"lanes submit: note: --approval: {printable(ignored)}", file=sys.stderr)
    workflow_id = id if id is not None else f"lanes-{task.job_type}-{uuid.uuid4().hex[:12]}"
    try:
        check_workflow_id(workflow_id)
    except InvalidWorkflowIdError as exc:
        raise _flagged(exc) from None

    async def run() -> int:
        client = await _connect(settings)
        # The job's trace starts here; the workflow's spans become its descendants (lanes/job_trace.py).
        with job_root_span("lanes submit", workflow_id=workflow_id, task=task, decision=expected) as span:
            try:
                await start_job(
                    client, task, workflow_id=workflow_id, task_queue=settings.task_queue, new_run=new_run
                )
            except JobIdInUseError as exc:
                fix = (
                    "wait for it to end or choose another --id"
                    if exc.running
                    else "choose another --id, or pass --new-run to start a new run under it"
                )
                raise CliError(f"--id: {exc.problems[0][1]}; {fix}") from None
            if wait:
                if not json:
                    print(f"submitted {printable(workflow_id)}", file=sys.stderr)
                outcome = await wait_for_outcome(client, workflow_id)
                record_job_outcome(span, outcome)
                return show_outcome(outcome, as_json=json)
        if json:
            print_json({"workflow_id": workflow_id, "task_queue": settings.task_queue})
        else:
            print(printable(workflow_id))
        return EXIT_OK

    raise typer.Exit(asyncio.run(run()))


def show_status(status: JobStatus) -> None:
    """Print a job's status as aligned fields, then one line per pending activity."""
    rows: list[tuple[str, object]] = [
        ("workflow_id", status.workflow_id),
        ("execution_status", status.execution_status),
    ]
    if status.query is None:
        rows.append(("query_error", status.query_error))
    else:
        job = status.query
        rows += [
            ("phase", job.phase),
            ("job_type", job.job_type),
            ("lane", job.lane),
            ("rule", job.rule),
            ("data_class", job.data_class),
            ("policy_version", job.policy_version),
            ("response_id", job.response_id),
            ("provider_status", status.provider_status),
        ]
    if status.cancellation:
        rows += cancellation_rows(status.cancellation)
    for activity in status.pending_activities:
        progress = activity.progress or {}
        summary = ", ".join(
            f"{k}={progress[k]}"
            for k in ("mode", "provider_status", "cursor", "polls", "reconnects", "chars")
            if k in progress
        )
        rows.append(
            ("activity", f"{activity.activity} ({activity.state}, attempt {activity.attempt}) {summary}")
        )
        if activity.last_failure:
            waiting = activity.last_failure_type == FailureType.NOT_YET
            rows.append(("last poll" if waiting else "last failure", activity.last_failure))
    fields(rows)


@app.command()
@translate_errors("lanes status")
def status(workflow_id: WorkflowId, json: JsonFlag = False) -> None:
    """Where a job is: phase, lane, rule, provider response and status, live progress.

    Exits 1 when the workflow could not answer its status query (no worker polls its queue): what the
    server knows is printed, with the query's error.
    """

    async def run() -> JobStatus:
        return await job_status(await _connect(_settings()), workflow_id)

    info = asyncio.run(run())
    if json:
        print_json(info)
    else:
        show_status(info)
    if info.query_error:
        raise typer.Exit(EXIT_JOB_FAILED)


@app.command()
@translate_errors("lanes result")
def result(
    workflow_id: WorkflowId,
    wait: Annotated[bool, typer.Option("--wait", help="wait for a running job to end")] = False,
    json: JsonFlag = False,
) -> None:
    """How a job ended (a denied job prints its decision); exit 3 while it still runs."""

    async def run() -> JobOutcome | None:
        client = await _connect(_settings())
        if wait:
            return await wait_for_outcome(client, workflow_id)
        return await job_outcome(client, workflow_id)

    outcome = asyncio.run(run())
    if outcome is None:
        if json:
            print_json({"workflow_id": workflow_id, "status": "running"})
        else:
            running = f"job {workflow_id} is still running; use `lanes result {workflow_id} --wait`"
            print(printable(running), file=sys.stderr)
        raise typer.Exit(EXIT_RUNNING)
    raise typer.Exit(show_outcome(outcome, as_json=json))


def show_jobs(jobs: list[JobSummary]) -> None:
    """Print jobs as a table, one row each: when, the decision (lane, rule, policy) and the outcome."""
    rows = [["workflow id", "started (UTC)", "lane", "rule", "job type", "data class", "policy", "outcome"]]
    for job in jobs:
        digest = (job.policy_digest or "").removeprefix("sha256:")[:12]
        policy = " ".join(p for p in (job.policy_version, digest) if p) or "-"
        outcome = job.outcome or (
            "running" if job.execution_status == "RUNNING" else job.execution_status.lower()
        )
        rows.append(
            [
                job.workflow_id,
                f"{job.start_time.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
                job.lane or "-",
                job.rule or "-",
                job.job_type or "-",
                job.data_class or "-",
                policy,
                outcome,
            ]
        )
    print(table(rows))


@app.command("list")
@translate_errors("lanes list")
def list_(
    lane: Annotated[
        str | None, typer.Option(help="only jobs on this lane: background, stateless, denied")
    ] = None,
    job_type: Annotated[str | None, typer.Option(help="only jobs of this job type")] = None,
    outcome: Annotated[
        str | None,
        typer.Option(help="only jobs that ended so: completed, incomplete, denied, failed, cancelled"),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="only jobs started within this long: 30m, 24h, 7d, 2w")
    ] = None,
    limit: Annotated[int, typer.Option(help="at most this many jobs, newest first")] = 100,
    json: JsonFlag = False,
) -> None:
    """Jobs with their decision and outcome, from one visibility query (e.g. --lane background --since 7d)."""
    try:
        window = parse_since(since) if since is not None else None
        jobs_query(lane=lane, job_type=job_type, outcome=outcome)  # bad filters fail before connecting
        if limit < 1:
            raise JobListError(f"limit: {limit} is not a positive number of jobs")
    except JobListError as exc:
        raise CliError(f"--{exc}".replace("--job type", "--job-type", 1)) from None

    async def run() -> list[JobSummary]:
        client = await _connect(_settings())
        return await list_jobs(
            client, lane=lane, job_type=job_type, outcome=outcome, since=window, limit=limit
        )

    jobs = asyncio.run(run())
    if json:
        print_json({"jobs": [job.model_dump(mode="json") for job in jobs]})
    elif jobs:
        show_jobs(jobs)
    else:
        print("no jobs match", file=sys.stderr)


@app.command()
@translate_errors("lanes watch")
def watch(workflow_id: WorkflowId, json: JsonFlag = False) -> None:
    """Follow a stream-mode job's text live from the provider, then print how it ended.

    It reads the response where the job's calls went (the endpoint of its decision, with that
    endpoint's key from this environment and LANES_POLICY) and resumes after its cursor when the
    connection drops. A stateless, denied or poll-mode job cannot be followed: it says why and prints
    the job's status (exit 3 while it runs). With --json only the outcome is printed.
    """
    settings = _settings()

    async def run() -> int:
        client = await _connect(settings)
        try:
            policy = load_policy(settings.policy_path)
        except PolicyFileError as exc:
            raise CliError(f"LANES_POLICY: {policy_file_message(exc)}", code=EXIT_JOB_FAILED) from None
        async with endpoint_clients(settings, policy, environ=client_environ()) as clients:
            try:
                async for item in watch_job(client, workflow_id, clients):
                    if isinstance(item, str):
                        if not json:
                            sys.stdout.write(printable(item, multiline=True))
                            sys.stdout.flush()
                        continue
                    if json:
                        return show_outcome(item, as_json=True)
                    # The text is on screen already: end its line, then how the job ended.
                    print()
                    return show_outcome(item, as_json=False, with_output=False)
            except JobNotWatchableError as exc:
                print(f"lanes watch: {printable(exc)}; its status instead:", file=sys.stderr)
                if json:
                    print_json(exc.status)
                else:
                    show_status(exc.status)
                if exc.status.execution_status == "RUNNING":
                    return EXIT_RUNNING
                return EXIT_JOB_FAILED if exc.status.execution_status != "COMPLETED" else EXIT_OK
            except WatchEndpointError as exc:
                raise CliError(str(exc)) from None
        raise CliError(f"job {workflow_id}: the watch ended without an outcome")

    raise typer.Exit(asyncio.run(run()))


@app.command()
@translate_errors("lanes cancel")
def cancel(
    workflow_id: WorkflowId,
    reason: Annotated[str, typer.Option(help="why, for the job's cancellation record")] = "",
    workflow_cancel: Annotated[
        bool,
        typer.Option(
            "--workflow-cancel", help="use Temporal's workflow cancellation instead of the cancel signal"
        ),
    ] = False,
    json: JsonFlag = False,
) -> None:
    """Stop a job (its result records who, when and why)."""

    async def run() -> None:
        client = await _connect(_settings())
        request = await cancel_job(
            client, workflow_id, reason=reason, requested_by=_who(), workflow_cancel=workflow_cancel
        )
        if json:
            print_json(request)
        elif request.requested:
            print(f"cancel requested for {printable(workflow_id)}")
        else:
            ended = f"job {workflow_id} already ended ({request.execution_status})"
            print(f"{printable(ended)}; nothing to cancel, its result stands")

    asyncio.run(run())


@app.command()
def worker() -> None:
    """Run a worker (the same as python worker.py)."""
    from lanes.worker import serving

    raise typer.Exit(serving.main())


@app.command("codec-server")
@translate_errors("lanes codec-server")
def codec_server(
    host: Annotated[
        str,
        typer.Option(
            help="interface to bind (loopback unless LANES_CODEC_TOKEN or LANES_CODEC_TOKEN_FILE is set)"
        ),
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option(help="TCP port")] = 8081,
) -> None:
    """Serve /encode and /decode so the Temporal UI and CLI can read encrypted payloads."""
    from lanes.servers.codec_server import serve_codec

    _check_port(port, "--port", "codec server")
    try:
        asyncio.run(serve_codec(_settings(), host=host, port=port))
    except ValueError as exc:
        raise CliError(str(exc)) from None


@app.command()
@translate_errors("lanes setup")
def setup() -> None:
    """Register lanes' search attributes on the namespace (idempotent); run once before any worker.

    Where the server refuses (Temporal Cloud), prints the tcld and temporal commands and exits 2.
    """
    from lanes.setup import setup as run_setup

    async def run() -> int:
        return await run_setup(await _connect(_settings()))

    raise typer.Exit(asyncio.run(run()))


def show_checks(checks: list[DoctorCheck]) -> None:
    """Print doctor's checks as a table, each failure's fix on the line under it."""
    rows = [["check", "result", "detail"]]
    for check in checks:
        result = "skip" if check.skipped else "ok" if check.ok else "FAIL"
        rows.append([check.name, result, check.detail])
        if check.fix and not check.ok:
            rows.append(["", "", f"fix: {check.fix}"])
    print(table(rows))


@app.command()
@translate_errors("lanes doctor")
def doctor(json: JsonFlag = False) -> None:
    """Check each part lanes needs, and say how to fix what fails; exit 1 if any check fails.

    Temporal (address, namespace), lanes' search attributes, a worker polling each task queue, the
    provider (and its key), the encryption key, and the codec server's CORS for the UI's origins.
    Every check is bounded by a few seconds; nothing is written anywhere.
    """
    checks = asyncio.run(run_checks(_settings()))
    failed = [check for check in checks if not check.ok]
    if json:
        print_json({"ok": not failed, "checks": [check.model_dump(mode="json") for check in checks]})
    else:
        show_checks(checks)
        if failed:
            print(f"lanes doctor: {len(failed)} of {len(checks)} checks failed", file=sys.stderr)
    if failed:
        raise typer.Exit(EXIT_JOB_FAILED)


def _check_port(port: int, flag: str, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise CliError(f"port {port} ({what}) is in use; choose another with {flag} PORT") from None


@app.command()
@translate_errors("lanes webhooks")
def webhooks(
    host: Annotated[str, typer.Option(help="interface to bind (the provider must reach it)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8789,
    path: Annotated[str, typer.Option(help="delivery route; the endpoint URL ends with it")] = (
        "/webhooks/openai"
    ),
    tolerance: Annotated[
        int, typer.Option(help="seconds a delivery's timestamp may be off this machine's clock", min=1)
    ] = 300,
    new_secret: Annotated[
        bool, typer.Option("--new-secret", help="print a fresh whsec_ secret (for the emulator) and exit")
    ] = False,
) -> None:
    """Receive response webhooks (secret: OPENAI_WEBHOOK_SECRET) and signal the jobs they finish."""
    if new_secret:
        from responses_emulator.webhooks import new_secret as fresh_secret

        print(fresh_secret())
        return
    from lanes.servers.webhooks.server import serve_webhooks

    _check_port(port, "--port", "webhook receiver")
    try:
        asyncio.run(serve_webhooks(_settings(), host=host, port=port, path=path, tolerance_s=tolerance))
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _webhook_profiles(policy_path: str | None) -> str:
    """Which of the policy's profiles end by webhook, for ``lanes dev --webhooks``."""
    document = load_policy(policy_path).document
    names = sorted(name for name, profile in document.profiles.items() if profile.webhooks)
    if not names:
        return (
            "no profile of the policy says webhooks = true, so every job still polls or streams; "
            "set it on a background profile (docs/webhooks.md, step 3) and pass LANES_POLICY"
        )
    return f"profiles ending by webhook: {', '.join(names)}"


dev_app = typer.Typer(
    help="The embedded stack for development: `lanes dev` runs it, `lanes dev env` prints its settings.",
    no_args_is_help=False,
)
app.add_typer(dev_app, name="dev")


@dev_app.callback(invoke_without_command=True)
@translate_errors("lanes dev")
def dev(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Temporal frontend port")] = 7233,
    emulator_port: Annotated[int, typer.Option(help="Responses emulator port")] = 8788,
    ui_port: Annotated[int, typer.Option(help="Temporal web UI port")] = 8233,
    no_ui: Annotated[bool, typer.Option("--no-ui", help="run Temporal without its web UI")] = False,
    duration: Annotated[float, typer.Option(help="simulated background duration, seconds")] = 5.0,
    state_dir: Annotated[
        Path, typer.Option(help="Temporal database, logs and key; new, empty or made by lanes")
    ] = DEV_STATE_DIR,
    traces: Annotated[
        bool, typer.Option("--traces", help="start Arize Phoenix (lanes[phoenix]) and send every trace to it")
    ] = False,
    phoenix_port: Annotated[int, typer.Option(help="Phoenix UI and OTLP port (with --traces)")] = 6006,
    webhooks: Annotated[
        bool,
        typer.Option(
            "--webhooks",
            help="the emulator signs a webhook when a background response ends, to a receiver started "
            "beside it: jobs whose profile says webhooks = true end by webhook",
        ),
    ] = False,
    webhook_port: Annotated[int, typer.Option(help="webhook receiver port (with --webhooks)")] = 8789,
) -> None:
    """Run the embedded stack (Temporal, emulator, worker) in the foreground; Ctrl-C stops it all.

    Once it answers, its settings are in STATE_DIR/env (removed on stop): the CLI and LanesClient in
    another shell of this directory use them with nothing exported; `lanes dev env` prints them.
    """
    if ctx.invoked_subcommand is not None:
        return
    from lanes.dev.phoenix import BACKGROUND_FILTER, PROJECT, PhoenixServer, phoenix_cli
    from lanes.dev.stack import EmbeddedStack, StackError
    from lanes.dev.state_dir import claim_state_dir
    from lanes.servers.webhooks.receiver import DEFAULT_PATH
    from responses_emulator import EmulatorConfig
    from responses_emulator.webhooks import new_secret

    if traces:
        if phoenix_cli() is None:
            raise CliError("--traces: Arize Phoenix is not installed; pip install 'lanes[phoenix]'")
        _check_port(phoenix_port, "--phoenix-port", "Phoenix")
    # Before anything writes into it (Phoenix's directory is inside): new, empty or marked by lanes.
    claim_state_dir(state_dir, made_by="lanes dev")
    phoenix = PhoenixServer(state_dir=state_dir / "phoenix", port=phoenix_port) if traces else None
    _check_port(port, "--port", "Temporal frontend")
    _check_port(emulator_port, "--emulator-port", "Responses emulator")
    if not no_ui:
        _check_port(ui_port, "--ui-port", "Temporal web UI; or pass --no-ui")
    # The receiver's secret is made for this run and shared with the emulator only: nothing to configure.
    secret = new_secret() if webhooks else None
    if webhooks:
        _check_port(webhook_port, "--webhook-port", "webhook receiver")
    stack = EmbeddedStack(
        state_dir=state_dir,
        temporal_port=port,
        emulator_port=emulator_port,
        emulator_config=EmulatorConfig(
            duration_s=duration,
            webhook_url=f"http://127.0.0.1:{webhook_port}{DEFAULT_PATH}" if webhooks else None,
            webhook_secret=secret,
        ),
        ui_port=None if no_ui else ui_port,
        policy_path=_settings().policy_path,
        worker_env=phoenix.otlp_environment() if phoenix else None,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with contextlib.AsyncExitStack() as parts:
                if phoenix is not None:
                    print("starting Arize Phoenix (about 25 s)...", file=sys.stderr, flush=True)
                    await parts.enter_async_context(phoenix)
                await parts.enter_async_context(stack)
                s = stack.settings
                receiver_url = None
                if secret is not None:
                    from lanes.servers.webhooks.server import running_receiver

                    receiving = s.model_copy(update={"openai_webhook_secret": SecretStr(secret)})
                    hook = await parts.enter_async_context(running_receiver(receiving, port=webhook_port))
                    receiver_url = hook.url
                print(f"Temporal    {s.temporal_address} (namespace {s.temporal_namespace})")
                if not no_ui:
                    print(f"Temporal UI http://127.0.0.1:{ui_port}  (decodes through the codec server)")
                if stack.codec_url:
                    print(
                        f"codec       {stack.codec_url}  (payloads are encrypted; key "
                        f"{s.encryption_key_file or 'from LANES_ENCRYPTION_KEYS'}; "
                        f"temporal workflow show --codec-endpoint {stack.codec_url} ...)"
                    )
                ledger = f"{(s.openai_base_url or '').removesuffix('/v1')}/_emulator/ledger"
                print(f"emulator    {s.openai_base_url}  (ledger: {ledger})")
                pid = stack.worker.pid if stack.worker else "-"
                print(f"worker      pid {pid} on task queue {s.task_queue!r}")
                if receiver_url is not None:
                    print(f"webhooks    {receiver_url}  (the emulator signs one to it as each response ends)")
                    print(f"            {_webhook_profiles(s.policy_path)}")
                print(f"logs        {state_dir}/")
                session = dev_session_values(s)
                env_path = env_file(state_dir)
                write_dev_env(env_path, session)
                parts.callback(remove_dev_env, env_path)
                found = state_dir.resolve() == DEV_STATE_DIR.resolve()
                hint = (
                    f"  # in this directory nothing to export (the CLI reads {env_path}); elsewhere:\n"
                    if found
                    else ""
                )
                hint += f'  eval "$(lanes dev env --state-dir {shlex.quote(str(state_dir.resolve()))})"\n'
                if phoenix is not None:
                    print(
                        f"Phoenix     {phoenix.url}  (project {PROJECT!r}; the worker sends its traces there)"
                    )
                    print(f"            background jobs: filter  {BACKGROUND_FILTER}")
                    print("            (Traces tab: root spans, e.g. `lanes submit`; Spans tab: every span)")
                    hint += "".join(f"  export {k}={v}\n" for k, v in phoenix.otlp_environment().items())
                print(
                    f"\nIn another shell (with .venv activated, or as .venv/bin/lanes):\n{hint}"
                    "  lanes submit --job-type public_research --input 'hello' --wait\n"
                    "Ctrl-C stops everything.",
                    flush=True,
                )
                await stop.wait()
                print("stopping...", file=sys.stderr)
        except (StackError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CliError(
                f"{first}; change the port with --port, --emulator-port, --ui-port, --phoenix-port or "
                "--webhook-port"
            ) from None

    asyncio.run(run())


def dev_session_values(settings: Settings) -> dict[str, str]:
    """What a client needs to use a dev stack: its address, queue, emulator, key file and blob store.

    With the codec server, its URL and the UI origins it allows, which `lanes doctor` checks.
    """
    from lanes.dev.emulator_keys import DEFAULT_EMULATOR_KEY, emulator_keys

    values = {
        "TEMPORAL_ADDRESS": settings.temporal_address or "",
        "TEMPORAL_NAMESPACE": settings.temporal_namespace or "default",
        "LANES_TASK_QUEUE": settings.task_queue,
        "OPENAI_BASE_URL": settings.openai_base_url or "",
        "OPENAI_API_KEY": DEFAULT_EMULATOR_KEY,
        # The other endpoints the emulator stands in for (the ZDR project's key, say), for `lanes watch`.
        **emulator_keys(load_policy(settings.policy_path)).environment,
    }
    if settings.encryption_key_file is not None:
        values["LANES_ENCRYPTION_KEY_FILE"] = str(settings.encryption_key_file.resolve())
        values["LANES_BLOB_DIR"] = str(settings.blob_dir.resolve())
    if settings.codec_url is not None:
        values["LANES_CODEC_URL"] = settings.codec_url
        values["LANES_CODEC_CORS_ORIGINS"] = settings.codec_cors_origins
    if settings.policy_path:
        values["LANES_POLICY"] = str(Path(settings.policy_path).resolve())
    return values


@dev_app.command("env")
@translate_errors("lanes dev env")
def dev_env(
    state_dir: Annotated[Path, typer.Option(help="the running stack's state directory")] = DEV_STATE_DIR,
) -> None:
    """Print the running dev stack's settings as shell exports: eval "$(lanes dev env)"."""
    values = read_dev_env(env_file(state_dir))
    if not values:
        raise CliError(
            f"no running `lanes dev` stack with state directory {state_dir}; start one with `lanes dev`, "
            "or pass --state-dir"
        )
    sys.stdout.write(exports(values))


@app.command()
@translate_errors("lanes demo")
def demo(
    state_dir: Annotated[
        Path, typer.Option(help="Temporal database and logs, cleared first; new, empty or made by lanes")
    ] = Path(".lanes/demo"),
    traces: Annotated[
        bool,
        typer.Option(
            "--traces",
            help="start Arize Phoenix (lanes[phoenix]), send the demo's traces to it and keep it up to look",
        ),
    ] = False,
    phoenix_port: Annotated[int, typer.Option(help="Phoenix UI and OTLP port (with --traces)")] = 6006,
) -> None:
    """Run one job per lane (and one cancellation) on a fresh embedded stack; what make demo runs."""
    from lanes.dev.demo import run_demo
    from lanes.dev.phoenix import PhoenixServer, phoenix_cli

    phoenix = None
    if traces:
        if phoenix_cli() is None:
            raise CliError("--traces: Arize Phoenix is not installed; pip install 'lanes[phoenix]'")
        _check_port(phoenix_port, "--phoenix-port", "Phoenix")
        phoenix = PhoenixServer(state_dir=state_dir.parent / "demo-phoenix", port=phoenix_port)
        # This process's spans (each job's `lanes demo` root) go to Phoenix with the worker's.
        os.environ.update(phoenix.otlp_environment())
    _trace_cli(trace_queries=False)
    raise typer.Exit(asyncio.run(run_demo(state_dir=state_dir, phoenix=phoenix)))


@app.command(
    "emulator",
    help="Run a local emulator of the OpenAI Responses API (flags from EmulatorConfig).",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def emulator(ctx: typer.Context) -> None:
    """Forward to :func:`lanes.dev.emulator_command.main`, imported only now.

    The emulator (and the OpenAI SDK types it is built on) is half a second of imports that no other
    command needs, and each command is a fresh process.
    """
    from lanes.dev import emulator_command

    emulator_command.main(ctx.args, prog_name="lanes emulator")


app.add_typer(policy_commands.app, name="policy")


def run(argv: list[str] | None = None) -> int:
    """Parse and run a command; return its exit code."""
    try:
        app(args=argv, prog_name="lanes")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_JOB_FAILED)
    return EXIT_OK


def main() -> None:
    """Console-script entry point."""
    code = EXIT_JOB_FAILED
    try:
        code = run()
    finally:
        end_process(code)
