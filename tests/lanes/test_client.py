"""``lanes.LanesClient`` against a real server and worker: what a program that starts jobs sees."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

import lanes
from lanes import errors
from lanes.settings import Settings

LANES_DIR = Path(__file__).resolve().parents[2] / "lanes"


async def test_a_job_runs_to_its_output_and_a_rerun_gets_a_fresh_id(settings: Settings, worker: str) -> None:
    async with await lanes.LanesClient.connect(settings) as client:
        job = await client.submit("public_research", "Survey durable execution")
        again = await client.submit("public_research", "Survey durable execution")
        assert job.id != again.id
        assert (await job.output(timeout_s=60)).strip()
        outcome = await job.result()
        assert outcome is not None
        assert (outcome.status, outcome.lane) == ("completed", "background")
        assert outcome.decision is not None
        assert outcome.decision.policy_version


async def test_a_denied_job_raises_job_denied_with_its_decision(settings: Settings, worker: str) -> None:
    async with await lanes.LanesClient.connect(settings) as client:
        job = await client.submit("coding_analysis", "account 42", data_class="restricted")
        with pytest.raises(lanes.JobDeniedError) as denied:
            await job.output(timeout_s=60)
        assert denied.value.outcome.decision is not None
        assert denied.value.outcome.decision.lane == "denied"
        assert isinstance(denied.value, lanes.JobError)


async def test_a_cancel_mid_job_is_recorded(settings: Settings, worker: str) -> None:
    async with await lanes.LanesClient.connect(settings) as client:
        job = await client.submit("public_research", "long", metadata={"emulator_duration": "30"})
        await job.wait_for_phase("running")
        receipt = await job.cancel(reason="not needed")
        assert receipt.requested
        with pytest.raises(lanes.JobCancelledError) as cancelled:
            await job.output(timeout_s=60)
        record = cancelled.value.outcome.cancellation
        assert record is not None
        assert (record.phase, record.reason) == ("running", "not needed")


async def test_bad_submissions_start_nothing_and_name_the_field(settings: Settings, worker: str) -> None:
    async with await lanes.LanesClient.connect(settings) as client:
        before = len(await client.list(limit=1000))
        cases = [
            ({"job_type": "legal_reveiw", "input": "x"}, "job_type"),
            ({"job_type": "public_research", "input": "x", "data_class": "secret"}, "data_class"),
            ({"job_type": "public_research", "input": "x", "max_output_tokens": 10**9}, "max_output_tokens"),
            ({"job_type": "public_research", "input": "x", "tenant": "nobody"}, "tenant"),
            ({"job_type": "public_research", "input": "x", "workflow_id": "has space"}, "workflow_id"),
        ]
        for arguments, field in cases:
            with pytest.raises(lanes.InvalidJobError) as refused:
                await client.submit(**arguments)  # type: ignore[arg-type]
            assert refused.value.field == field, arguments
        with pytest.raises(lanes.JobNotFoundError):
            await client.job("no-such-job").status()
        assert len(await client.list(limit=1000)) == before


async def test_a_used_id_is_refused(settings: Settings, worker: str) -> None:
    async with await lanes.LanesClient.connect(settings) as client:
        job = await client.submit("public_research", "x", workflow_id=f"{settings.task_queue}-fixed")
        await job.result(timeout_s=60)
        with pytest.raises(lanes.JobIdInUseError):
            await client.submit("public_research", "x", workflow_id=job.id)


def test_the_public_names_resolve_and_nothing_else_does() -> None:
    for name in lanes.__all__:
        assert getattr(lanes, name) is not None
    with pytest.raises(AttributeError):
        _ = lanes.not_a_name


def test_every_error_lanes_defines_is_in_the_tree() -> None:
    """One tree: every ``...Error`` class under lanes/ derives from LanesError (or is the CLI's own)."""
    outside = []
    for path in LANES_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Error") and path.name != "errors.py":
                outside.append(f"{path.relative_to(LANES_DIR)}:{node.name}")
    allowed = {
        # Internal to the codec: refusals a worker turns into markers; a client meets them as
        # UndecodablePayloadError (unknown key) or as tampering, which is not the caller's to fix.
        "codec.py:CodecError",
        "codec.py:UnknownEncryptionKeyError",
        "codec.py:PlaintextRefusedError",
        "codec.py:ContextMismatchError",
        "codec.py:ClaimCheckError",
        "blobs.py:BlobNotFoundError",
        # The command line's own: a message and an exit code, raised and caught inside lanes.cli.
        "cli/render.py:CliError",
        "dev/stack.py:StackError",
        "dev/state_dir.py:StateDirError",
    }
    assert sorted(set(outside) - allowed) == []
    from lanes.codec import UnknownEncryptionKeyError

    assert issubclass(UnknownEncryptionKeyError, errors.UndecodablePayloadError)
    for name in dir(errors):
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, Exception) and value.__module__ == errors.__name__:
            assert issubclass(value, errors.LanesError), name
            assert name in (errors.__doc__ or ""), f"{name} is not drawn in lanes.errors' tree"


def test_a_dev_env_file_is_read_only_when_it_is_ours_and_live(tmp_path: Path) -> None:
    from lanes.dev_env import dev_defaults, env_file, read_dev_env, remove_dev_env, write_dev_env

    state = tmp_path / ".lanes/dev"
    state.mkdir(parents=True)
    path = env_file(state)
    write_dev_env(path, {"TEMPORAL_ADDRESS": "127.0.0.1:1", "OPENAI_BASE_URL": "http://127.0.0.1:2/v1 x"})
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_dev_env(path)["OPENAI_BASE_URL"] == "http://127.0.0.1:2/v1 x"  # quoting round-trips
    assert dev_defaults({}, state_dir=state) == {
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "OPENAI_BASE_URL": "http://127.0.0.1:2/v1 x",
    }
    # What the environment sets wins; a shell configured for a server is never redirected.
    assert "OPENAI_BASE_URL" not in dev_defaults({"OPENAI_BASE_URL": "mine"}, state_dir=state)
    assert dev_defaults({"TEMPORAL_PROFILE": "prod"}, state_dir=state) == {}
    path.chmod(0o666)
    assert read_dev_env(path) == {}  # writable by others: ignored
    path.chmod(0o600)
    text = path.read_text().replace(f"LANES_DEV_PID={os.getpid()}", "LANES_DEV_PID=999999999")
    path.write_text(text + "EVIL_VARIABLE=1\n")
    assert read_dev_env(path) == {}  # its stack is gone: ignored
    assert "EVIL_VARIABLE" not in read_dev_env(path, check_alive=False)
    remove_dev_env(path)
    assert path.exists()  # another process's file is left alone


def test_a_failed_jobs_error_text_leaves_the_providers_message_in_the_outcome() -> None:
    from lanes.client import _job_error
    from lanes.job_outcome import JobOutcome

    outcome = JobOutcome(
        workflow_id="wf-1", status="failed", error_code="server_error", error_message="echo: secret prompt"
    )
    error = _job_error(outcome)
    assert isinstance(error, lanes.JobFailedError)
    assert "secret prompt" not in str(error)
    assert "server_error" in str(error)
    assert error.outcome.error_message == "echo: secret prompt"
