"""The ``lanes`` command line.

    lanes dev                                   # embedded stack in the foreground; Ctrl-C stops it all
    lanes submit --job-type public_research --input "..." [--data-class internal] [--wait] [--json]
    lanes status ID [--json]
    lanes result ID [--wait] [--json]
    lanes cancel ID [--reason "..."]
    lanes policy explain --job-type T [--data-class C] [--json]
    lanes worker | lanes emulator | lanes demo

Exit codes: 0 success; 1 the job failed or was denied; 2 bad input (unknown job type, oversized input,
unknown workflow id, unreachable server); 3 the job is still running. Errors go to stderr and say what to
fix; ``--json`` output is exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from activities.failures import FailureType
from client.connect import ProviderNotConfiguredError, TemporalUnreachableError, connect
from client.jobs import InvalidWorkflowIdError, JobIdInUseError, check_workflow_id, start_job
from client.policy_cli import register as register_policy_commands
from client.settings import Settings
from policy import PolicyError, load_policy
from responses_emulator import command as emulator_command
from workflows.model_task import (
    CancelInput,
    ModelTaskInput,
    ModelTaskResult,
    ModelTaskWorkflow,
    StatusResult,
)

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_RUNNING = 3


class CliError(Exception):
    """A user-facing error: printed to stderr as it is, with an exit code."""

    def __init__(self, message: str, *, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=None, sort_keys=True, default=str))


def _validation_message(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "input"
        lines.append(f"{field}: {error['msg']}")
    return "invalid job: " + "; ".join(lines)


def _read_input(args: argparse.Namespace) -> str:
    if args.input is not None:
        text: str = args.input
        return text
    if args.input_file == "-":
        return sys.stdin.read()
    try:
        return Path(args.input_file).read_text()
    except OSError as exc:
        raise CliError(f"--input-file: cannot read {args.input_file}: {exc.strerror}") from exc


def _metadata(pairs: Sequence[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--metadata {pair!r}: expected KEY=VALUE")
        result[key] = value
    return result


def build_task(args: argparse.Namespace, settings: Settings) -> ModelTaskInput:
    """Validate a submission before anything is started, so that bad input starts nothing.

    Raises:
        CliError: A field is invalid or the job type is unknown to the policy.
    """
    try:
        policy = load_policy(settings.policy_path)
    except PolicyError as exc:
        raise CliError(f"policy: {exc}") from exc
    if args.job_type not in policy.job_type_names:
        raise CliError(
            f"--job-type: unknown job type {args.job_type!r}; known: {', '.join(policy.job_type_names)}"
        )
    if args.data_class is not None and args.data_class not in policy.class_names:
        raise CliError(
            f"--data-class: unknown data class {args.data_class!r}; known: {', '.join(policy.class_names)}"
        )
    try:
        return ModelTaskInput(
            job_type=args.job_type,
            data_class=args.data_class,
            input=_read_input(args),
            model=args.model,
            instructions=args.instructions,
            max_output_tokens=args.max_output_tokens,
            metadata=_metadata(args.metadata),
            approval=args.approval,
            tenant=args.tenant,
        )
    except ValidationError as exc:
        raise CliError(_validation_message(exc)) from exc


async def _connect() -> tuple[Settings, Client]:
    settings = Settings()
    try:
        return settings, await connect(settings)
    except TemporalUnreachableError as exc:
        raise CliError(str(exc)) from exc


async def _existing(
    client: Client, settings: Settings, workflow_id: str
) -> WorkflowHandle[ModelTaskWorkflow, ModelTaskResult]:
    handle = client.get_workflow_handle_for(ModelTaskWorkflow.run, workflow_id)
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CliError(
                f"no job with workflow id {workflow_id!r} in namespace {settings.temporal_namespace!r} at "
                f"{settings.temporal_address}; use the id that `lanes submit` printed"
            ) from exc
        raise
    return handle


def failure_summary(exc: WorkflowFailureError, workflow_id: str) -> dict[str, Any]:
    """A JSON-able summary of a failed job; a denied one carries its decision."""
    cause: BaseException | None = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause if isinstance(cause, FailureError) else None
    if isinstance(cause, ApplicationError) and cause.type == FailureType.POLICY_DENIED and cause.details:
        decision = cause.details[0]
        return {
            "workflow_id": workflow_id,
            "status": "denied",
            "lane": "denied",
            "rule": decision.get("rule"),
            "decision": decision,
            "error": cause.message,
            "response_id": None,
            "output_text": "",
        }
    message = cause.message if isinstance(cause, ApplicationError) else str(exc.cause or exc)
    return {
        "workflow_id": workflow_id,
        "status": "failed",
        "error_type": cause.type if isinstance(cause, ApplicationError) else type(exc.cause).__name__,
        "error": message,
        "response_id": None,
        "output_text": "",
    }


def _print_result(result: ModelTaskResult, workflow_id: str, *, as_json: bool) -> int:
    if as_json:
        _print_json({"workflow_id": workflow_id, **result.model_dump(mode="json")})
    else:
        print(f"workflow   {workflow_id}")
        print(f"status     {result.status}")
        print(f"lane       {result.lane} (rule {result.rule}, policy {result.decision.policy_version})")
        print(f"response   {result.response_id or '-'}")
        if result.cancellation:
            c = result.cancellation
            print(
                f"cancelled  by {c.requested_by} via {c.via} in phase {c.phase}: {c.reason or '(no reason)'}"
            )
        if result.error_code:
            print(f"error      {result.error_code}: {result.error_message}")
        if result.incomplete_reason:
            print(f"incomplete {result.incomplete_reason}")
        print()
        print(result.output_text)
    return EXIT_OK


def _print_failure(summary: dict[str, Any], *, as_json: bool) -> int:
    if as_json:
        _print_json(summary)
    else:
        print(f"workflow   {summary['workflow_id']}", file=sys.stderr)
        print(f"status     {summary['status']}", file=sys.stderr)
        print(f"error      {summary['error']}", file=sys.stderr)
    return EXIT_JOB_FAILED


async def _await_result(handle: WorkflowHandle[ModelTaskWorkflow, ModelTaskResult], *, as_json: bool) -> int:
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        if isinstance(exc.cause, CancelledError):
            return await _print_workflow_cancelled(handle, as_json=as_json)
        return _print_failure(failure_summary(exc, handle.id), as_json=as_json)
    return _print_result(result, handle.id, as_json=as_json)


async def _print_workflow_cancelled(
    handle: WorkflowHandle[ModelTaskWorkflow, ModelTaskResult], *, as_json: bool
) -> int:
    """A job ended by Temporal's workflow cancellation has no result; its status query tells the story."""
    summary: dict[str, Any] = {"workflow_id": handle.id, "status": "cancelled", "output_text": ""}
    try:
        status = await handle.query(ModelTaskWorkflow.status, rpc_timeout=timedelta(seconds=5))
        summary.update(
            status.model_dump(mode="json", include={"lane", "rule", "response_id", "cancellation"})
        )
    except Exception as exc:  # a query needs a worker; the cancellation itself is certain
        summary["query_error"] = f"{type(exc).__name__}: {exc}"
    if as_json:
        _print_json(summary)
    else:
        print(f"workflow   {handle.id}")
        print("status     cancelled (workflow cancellation)")
        print(f"lane       {summary.get('lane') or '-'} (rule {summary.get('rule') or '-'})")
        print(f"response   {summary.get('response_id') or '-'}")
        if summary.get("cancellation"):
            c = summary["cancellation"]
            who = f"by {c['requested_by']} via {c['via']} in phase {c['phase']}"
            print(f"cancelled  {who}: {c['reason'] or '-'}")
    return EXIT_OK


async def cmd_submit(args: argparse.Namespace) -> int:
    """``lanes submit``: validate, start the workflow, print its id (or its result with ``--wait``)."""
    settings = Settings()
    task = build_task(args, settings)
    workflow_id = args.id if args.id is not None else f"lanes-{task.job_type}-{uuid.uuid4().hex[:12]}"
    try:
        check_workflow_id(workflow_id)
    except InvalidWorkflowIdError as exc:
        raise CliError(f"--id: {exc}") from None
    _, client = await _connect()
    try:
        handle = await start_job(
            client, task, workflow_id=workflow_id, task_queue=settings.task_queue, new_run=args.new_run
        )
    except JobIdInUseError as exc:
        fix = (
            "wait for it to end or choose another --id"
            if exc.running
            else "choose another --id, or pass --new-run to start a new run under it"
        )
        raise CliError(f"--id: {exc}; {fix}") from None
    if args.wait:
        if not args.json:
            print(f"submitted {workflow_id}", file=sys.stderr)
        return await _await_result(handle, as_json=args.json)
    if args.json:
        _print_json({"workflow_id": workflow_id, "task_queue": settings.task_queue})
    else:
        print(workflow_id)
    return EXIT_OK


def _decode_progress(client: Client, raw: Any) -> list[Any]:
    if not raw.HasField("heartbeat_details"):
        return []
    return list(client.data_converter.payload_converter.from_payloads(raw.heartbeat_details.payloads))


async def job_status(client: Client, settings: Settings, workflow_id: str) -> dict[str, Any]:
    """Everything ``lanes status`` shows.

    The execution status, the workflow's own ``status`` query, and the running activity's heartbeat
    progress (read from the server, so it costs the workflow no history).
    """
    handle = await _existing(client, settings, workflow_id)
    description = await handle.describe()
    info: dict[str, Any] = {
        "workflow_id": workflow_id,
        "execution_status": description.status.name if description.status else "UNKNOWN",
    }
    try:
        status = await handle.query(ModelTaskWorkflow.status, rpc_timeout=timedelta(seconds=5))
        info.update(StatusResult.model_validate(status).model_dump(mode="json"))
    except Exception as exc:  # a query needs a worker; without one, the description still tells a lot
        info["query_error"] = f"{type(exc).__name__}: {exc}"
    pending = []
    for activity in description.raw_description.pending_activities:
        details = _decode_progress(client, activity)
        pending.append(
            {
                "activity": activity.activity_type.name,
                "state": PendingActivityState.Name(activity.state)
                .removeprefix("PENDING_ACTIVITY_STATE_")
                .lower(),
                "attempt": activity.attempt,
                "last_failure": activity.last_failure.message if activity.HasField("last_failure") else None,
                "progress": details[0] if details else None,
            }
        )
    info["pending_activities"] = pending
    return info


async def cmd_status(args: argparse.Namespace) -> int:
    """``lanes status``: phase, lane, rule, provider response and live progress."""
    settings, client = await _connect()
    info = await job_status(client, settings, args.workflow_id)
    if args.json:
        _print_json(info)
        return EXIT_OK
    for key in (
        "workflow_id",
        "execution_status",
        "phase",
        "job_type",
        "lane",
        "rule",
        "data_class",
        "policy_version",
        "response_id",
        "provider_status",
    ):
        if key in info:
            print(f"{key:17} {info[key] if info[key] is not None else '-'}")
    if info.get("cancellation"):
        print(f"{'cancellation':17} {info['cancellation']}")
    for activity in info["pending_activities"]:
        progress = activity["progress"] or {}
        summary = ", ".join(
            f"{k}={progress[k]}"
            for k in ("mode", "provider_status", "cursor", "polls", "reconnects", "chars")
            if k in progress
        )
        state = f"{activity['state']}, attempt {activity['attempt']}"
        print(f"{'activity':17} {activity['activity']} ({state}) {summary}")
        if activity["last_failure"]:
            print(f"{'last failure':17} {activity['last_failure']}")
    return EXIT_OK


async def cmd_result(args: argparse.Namespace) -> int:
    """``lanes result``: the final result, waiting for it with ``--wait``."""
    settings, client = await _connect()
    handle = await _existing(client, settings, args.workflow_id)
    if not args.wait:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            message = f"job {args.workflow_id} is still running; use `lanes result {args.workflow_id} --wait`"
            if args.json:
                _print_json({"workflow_id": args.workflow_id, "status": "running"})
            else:
                print(message, file=sys.stderr)
            return EXIT_RUNNING
    return await _await_result(handle, as_json=args.json)


async def cmd_cancel(args: argparse.Namespace) -> int:
    """``lanes cancel``: signal the job to stop (or, with ``--workflow-cancel``, cancel the workflow)."""
    settings, client = await _connect()
    handle = await _existing(client, settings, args.workflow_id)
    description = await handle.describe()
    if description.status != WorkflowExecutionStatus.RUNNING:
        status = description.status.name if description.status else "UNKNOWN"
        print(f"job {args.workflow_id} already ended ({status}); nothing to cancel, its result stands")
        return EXIT_OK
    if args.workflow_cancel:
        await handle.cancel(reason=args.reason)
    else:
        await handle.signal(ModelTaskWorkflow.cancel, CancelInput(reason=args.reason, requested_by=_who()))
    print(f"cancel requested for {args.workflow_id}")
    return EXIT_OK


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers): still cancel
        return "unknown"


def cmd_worker(args: argparse.Namespace) -> int:
    """``lanes worker``: the same as ``python worker.py``."""
    import worker

    return worker.main()


async def cmd_dev(args: argparse.Namespace) -> int:
    """``lanes dev``: run the embedded stack in the foreground until Ctrl-C."""
    from client.stack import EmbeddedStack
    from responses_emulator import EmulatorConfig

    stack = EmbeddedStack(
        state_dir=Path(args.state_dir),
        temporal_port=args.port,
        emulator_port=args.emulator_port,
        emulator_config=EmulatorConfig(duration_s=args.duration),
        ui_port=args.ui_port,
        policy_path=Settings().policy_path,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with stack:
        s = stack.settings
        print(f"Temporal   {s.temporal_address} (namespace {s.temporal_namespace})")
        if args.ui_port:
            print(f"Temporal UI http://127.0.0.1:{args.ui_port}")
        ledger = f"{(s.openai_base_url or '').removesuffix('/v1')}/_emulator/ledger"
        print(f"emulator   {s.openai_base_url}  (ledger: {ledger})" if s.openai_base_url else "")
        print(f"worker     pid {stack.worker.pid if stack.worker else '-'} on task queue {s.task_queue!r}")
        print(f"logs       {args.state_dir}/")
        print(
            f"\nIn another shell: export TEMPORAL_ADDRESS={s.temporal_address}; lanes submit --job-type "
            "public_research --input 'hello' --wait\nCtrl-C stops everything."
        )
        await stop.wait()
        print("stopping...", file=sys.stderr)
    return EXIT_OK


async def cmd_demo(args: argparse.Namespace) -> int:
    """``lanes demo``: the scripted demo on a fresh embedded stack."""
    from client.demo import run_demo

    return await run_demo(state_dir=Path(args.state_dir))


def build_parser() -> argparse.ArgumentParser:
    """The ``lanes`` argument parser (public so tests and docs can inspect it)."""
    parser = argparse.ArgumentParser(prog="lanes", description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("submit", help="start a model job")
    p.add_argument("--job-type", required=True)
    p.add_argument("--data-class")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="the prompt text")
    source.add_argument("--input-file", help="read the prompt from a file ('-' for stdin)")
    p.add_argument("--model")
    p.add_argument("--instructions")
    p.add_argument("--max-output-tokens", type=int)
    p.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--approval", help="security-review approval reference")
    p.add_argument("--tenant")
    p.add_argument("--id", help="workflow id (default: lanes-<job type>-<random>)")
    p.add_argument("--new-run", action="store_true", help="start a new run under an --id whose job has ended")
    p.add_argument("--wait", action="store_true", help="wait for and print the result")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", help="where a job is")
    p.add_argument("workflow_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("result", help="a job's result")
    p.add_argument("workflow_id")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_result)

    p = sub.add_parser("cancel", help="stop a job")
    p.add_argument("workflow_id")
    p.add_argument("--reason", default="")
    p.add_argument("--workflow-cancel", action="store_true", help="use Temporal's workflow cancellation")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("worker", help="run a worker (same as python worker.py)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("dev", help="run the embedded stack in the foreground")
    p.add_argument("--port", type=int, default=7233, help="Temporal frontend port")
    p.add_argument("--emulator-port", type=int, default=8788)
    p.add_argument("--ui-port", type=int, default=None, help="serve the Temporal web UI on this port")
    p.add_argument("--duration", type=float, default=5.0, help="simulated background duration (s)")
    p.add_argument("--state-dir", default=".lanes/dev")
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("demo", help="run one job per lane on a fresh embedded stack")
    p.add_argument("--state-dir", default=".lanes/demo")
    p.set_defaults(func=cmd_demo)

    register_policy_commands(sub)
    emulator_command.register(sub)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parse and run a command; return its exit code."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int | Coroutine[Any, Any, int]] = args.func
    try:
        outcome = func(args)
        if asyncio.iscoroutine(outcome):
            return asyncio.run(outcome)
        assert isinstance(outcome, int)
        return outcome
    except CliError as exc:
        print(f"lanes {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except (ProviderNotConfiguredError, TemporalUnreachableError) as exc:
        print(f"lanes {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def main() -> None:
    """Console-script entry point."""
    code = run()
    sys.stdout.flush()
    sys.stderr.flush()
    # The Temporal core's threads can abort CPython's finalisation; exit without it once all is done.
    os._exit(code)
