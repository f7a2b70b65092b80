"""The ``lanes`` CLI as a user runs it: subprocesses, exit codes, stdout JSON and stderr messages."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from temporalio.client import Client

from client.jobs import wait_for_phase
from client.settings import Settings
from client.stack import free_port

LANES = [sys.executable, "-c", "from client.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[2]


async def lanes(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """Run the CLI without blocking the event loop (the test's worker runs on it)."""
    process = await asyncio.create_subprocess_exec(
        *LANES,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def stack_env(settings: Settings) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "LANES_TASK_QUEUE": settings.task_queue,
        "OPENAI_BASE_URL": settings.openai_base_url or "",
    }


async def test_policy_explain_needs_no_server_and_prints_one_json_object() -> None:
    env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    code, out, err = await lanes(
        "policy", "explain", "--job-type", "public_research", "--data-class", "public", "--json", env=env
    )
    assert code == 0, err
    decision = json.loads(out)
    assert {"lane", "rule", "policy_version", "policy_digest", "data_class", "reasons"} <= decision.keys()
    assert decision["lane"] == "background"


async def test_submit_wait_json_runs_a_job_end_to_end(settings: Settings, worker: str) -> None:
    code, out, err = await lanes(
        "submit",
        "--job-type",
        "public_research",
        "--input",
        "cli job",
        "--wait",
        "--json",
        env=stack_env(settings),
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "completed"
    assert result["lane"] == "background"
    assert result["rule"]
    assert result["response_id"].startswith("resp_")
    assert result["output_text"]

    code, out, err = await lanes("status", result["workflow_id"], "--json", env=stack_env(settings))
    assert code == 0, err
    status = json.loads(out)
    assert status["execution_status"] == "COMPLETED"
    assert status["phase"] == "completed"
    assert status["response_id"] == result["response_id"]

    code, out, err = await lanes("cancel", result["workflow_id"], env=stack_env(settings))
    assert code == 0, err
    assert "nothing to cancel" in out


async def test_submit_prints_the_workflow_id_and_result_reads_it(settings: Settings, worker: str) -> None:
    code, out, err = await lanes(
        "submit", "--job-type", "support_analysis", "--data-class", "confidential", "--input-file", "-",
        env=stack_env(settings), stdin=b"ticket text from stdin",
    )  # fmt: skip
    assert code == 0, err
    workflow_id = out.strip()
    assert workflow_id.startswith("lanes-support_analysis-")
    code, out, err = await lanes("result", workflow_id, "--wait", "--json", env=stack_env(settings))
    assert code == 0, err
    assert json.loads(out)["lane"] == "stateless"


async def test_workflow_cancellation_reads_as_cancelled_with_its_record(
    client: Client, settings: Settings, worker: str
) -> None:
    env = stack_env(settings)
    code, out, err = await lanes(
        "submit", "--job-type", "public_research", "--input", "long", "--metadata", "emulator_duration=120",
        env=env,
    )  # fmt: skip
    assert code == 0, err
    workflow_id = out.strip()
    await wait_for_phase(client.get_workflow_handle(workflow_id), "running")
    code, out, err = await lanes("cancel", workflow_id, "--workflow-cancel", "--reason", "operator", env=env)
    assert code == 0, err
    code, out, err = await lanes("result", workflow_id, "--wait", "--json", env=env)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["status"] == "cancelled"
    assert summary["lane"] == "background"
    assert summary["cancellation"]["via"] == "workflow-cancel"
    assert summary["cancellation"]["reason"] == "operator"


async def test_denied_job_exits_1_with_its_decision(settings: Settings, worker: str) -> None:
    code, out, err = await lanes(
        "submit", "--job-type", "coding_analysis", "--data-class", "restricted", "--input", "x",
        "--wait", "--json", env=stack_env(settings),
    )  # fmt: skip
    assert code == 1, err
    summary = json.loads(out)
    assert summary["status"] == "denied"
    assert summary["decision"]["lane"] == "denied"
    assert summary["rule"] == summary["decision"]["rule"]


async def test_unknown_job_type_lists_the_known_ones_and_starts_nothing() -> None:
    env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}  # nothing listens: proves no connection is needed
    code, out, err = await lanes("submit", "--job-type", "legal_reveiw", "--input", "x", env=env)
    assert code == 2
    assert out == ""
    assert "--job-type: unknown job type 'legal_reveiw'" in err
    assert "public_research" in err
    assert "regulated_review" in err


async def test_unknown_data_class_names_the_field() -> None:
    code, _, err = await lanes(
        "submit", "--job-type", "public_research", "--data-class", "secret", "--input", "x"
    )
    assert code == 2
    assert "--data-class: unknown data class 'secret'" in err
    assert "restricted" in err


async def test_oversized_input_is_refused_with_the_field_named(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 400_001)
    code, _, err = await lanes("submit", "--job-type", "public_research", "--input-file", str(big))
    assert code == 2
    assert "input:" in err
    assert "400000" in err


async def test_unreadable_input_file_is_named() -> None:
    code, _, err = await lanes(
        "submit", "--job-type", "public_research", "--input-file", "/nonexistent/prompt.txt"
    )
    assert code == 2
    assert "--input-file: cannot read /nonexistent/prompt.txt" in err


async def test_dead_temporal_server_says_where_and_how_to_start_one() -> None:
    address = f"127.0.0.1:{free_port()}"
    code, _, err = await lanes("status", "some-id", env={"TEMPORAL_ADDRESS": address})
    assert code == 2
    assert f"cannot reach Temporal at {address}" in err
    assert "lanes dev" in err


async def test_unknown_workflow_id_is_a_clear_error(settings: Settings) -> None:
    for command in ("status", "result", "cancel"):
        code, _, err = await lanes(command, "no-such-job", env=stack_env(settings))
        assert code == 2, command
        assert "no job with workflow id 'no-such-job'" in err


async def test_malformed_policy_file_is_reported_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text("policy_version = \n")
    code, _, err = await lanes(
        "submit", "--job-type", "public_research", "--input", "x", env={"LANES_POLICY": str(bad)}
    )
    assert code == 2
    assert str(bad) in err


async def test_a_bad_id_is_refused_with_the_rule_before_anything_starts() -> None:
    # No server: the id is checked first, so the message is about the id, not about Temporal.
    env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    for bad in ("two\nlines", "with space", "x" * 201, ""):
        code, _, err = await lanes(
            "submit", "--job-type", "public_research", "--input", "x", "--id", bad, env=env
        )
        assert code == 2, (bad, err)
        assert "--id" in err
        assert "printable ASCII" in err, err


async def test_reusing_a_finished_jobs_id_is_refused_unless_a_new_run_is_asked_for(
    settings: Settings, worker: str, client: Client
) -> None:
    args = ("submit", "--job-type", "public_research", "--input", "id reuse", "--id", f"reuse-{worker}")
    code, out, err = await lanes(*args, "--wait", env=stack_env(settings))
    assert code == 0, err

    code, out, err = await lanes(*args, env=stack_env(settings))
    assert code == 2
    assert "already exists" in err
    assert "--new-run" in err

    code, out, err = await lanes(*args, "--new-run", "--wait", "--json", env=stack_env(settings))
    assert code == 0, err
    second = json.loads(out)
    assert second["status"] == "completed"
    runs = [r async for r in client.list_workflows(f"WorkflowId = 'reuse-{worker}'")]
    assert len(runs) == 2
