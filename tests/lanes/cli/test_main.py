"""The ``lanes`` CLI as a user runs it: subprocesses, exit codes, stdout JSON and stderr messages."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path

import pytest
from temporalio.client import Client

from lanes.dev.stack import free_port
from lanes.jobs import job_status, wait_for_outcome, wait_for_phase
from lanes.settings import Settings
from tests.cli_runner import LANES, ROOT, lanes


def stack_env(settings: Settings) -> dict[str, str]:
    """The test stack's settings (addresses, task queue, encryption key) as the CLI reads them."""
    return settings.environment()


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
    assert result["result"]["output_text"]

    code, out, err = await lanes("status", result["workflow_id"], "--json", env=stack_env(settings))
    assert code == 0, err
    status = json.loads(out)
    assert status["execution_status"] == "COMPLETED"
    assert status["query"]["phase"] == "completed"
    assert status["query"]["response_id"] == result["response_id"]

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
    assert "--input-file: 400,001 characters, over the hard limit of 400,000" in err


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
    assert code == 1  # an invalid policy file, as `lanes policy check` exits
    (line,) = err.splitlines()
    assert line.startswith(f"lanes submit: policy file {bad} is invalid: invalid TOML: ")
    assert line.endswith(f"; run `lanes policy check {bad}`")


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


async def test_a_job_the_provider_failed_exits_1_with_its_error(settings: Settings, worker: str) -> None:
    code, out, err = await lanes(
        "submit", "--job-type", "public_research", "--input", "x",
        "--metadata", "emulator_fault=fail:server_error", "--wait", "--json", env=stack_env(settings),
    )  # fmt: skip
    assert code == 1, err
    outcome = json.loads(out)
    assert outcome["status"] == "failed"
    assert outcome["error_code"] == "server_error"
    code, out, err = await lanes("result", outcome["workflow_id"], env=stack_env(settings))
    assert code == 1
    assert "server_error" in err


async def test_an_incomplete_job_exits_1_with_its_reason_and_partial_output(
    settings: Settings, worker: str
) -> None:
    code, out, err = await lanes(
        "submit", "--job-type", "public_research", "--input", "x",
        "--metadata", "emulator_fault=incomplete:max_output_tokens", "--wait", env=stack_env(settings),
    )  # fmt: skip
    assert code == 1, err
    assert "incomplete        max_output_tokens (partial output below)" in out
    partial = out.split("\n\n", 1)[1].strip()
    assert partial


async def test_a_signal_cancellation_prints_its_record_as_fields(
    client: Client, settings: Settings, worker: str
) -> None:
    env = stack_env(settings)
    code, out, err = await lanes(
        "submit", "--job-type", "public_research", "--input", "long", "--metadata", "emulator_duration=120",
        env=env,
    )  # fmt: skip
    workflow_id = out.strip()
    await wait_for_phase(client.get_workflow_handle(workflow_id), "running")
    code, out, err = await lanes("cancel", workflow_id, "--reason", "not needed", env=env)
    assert code == 0, err
    code, out, err = await lanes("result", workflow_id, "--wait", env=env)
    assert code == 0, err
    assert "cancel reason     not needed" in out
    assert "via signal" in out
    assert "{" not in out.split("\n\n")[0]


async def test_status_shows_the_freshest_provider_status(
    client: Client, settings: Settings, worker: str
) -> None:
    env = stack_env(settings)
    code, out, err = await lanes(
        "submit", "--job-type", "public_research", "--input", "long", "--metadata", "emulator_duration=30",
        env=env,
    )  # fmt: skip
    workflow_id = out.strip()
    async with asyncio.timeout(60):
        while True:
            info = await job_status(client, workflow_id)
            beats = [a.progress for a in info.pending_activities if a.progress]
            if beats and beats[0].get("provider_status") == "in_progress":
                break
            await asyncio.sleep(0.1)
    assert info.provider_status == "in_progress"
    code, out, err = await lanes("status", workflow_id, env=env)
    assert code == 0, err
    assert "provider_status   in_progress" in out
    code, _, err = await lanes("cancel", workflow_id, env=env)
    assert code == 0, err
    # The job ends before the worker's teardown: a shutdown racing the cancel's cleanup at the provider
    # once left the worker's shutdown waiting past the suite's timeout.
    outcome = await wait_for_outcome(client, workflow_id, timeout_s=60)
    assert outcome.status == "cancelled"


async def test_input_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    latin1 = tmp_path / "prompt.txt"
    latin1.write_bytes("caf\u00e9".encode("latin-1"))
    code, _, err = await lanes("submit", "--job-type", "public_research", "--input-file", str(latin1))
    assert code == 2
    assert f"--input-file: {latin1} is not UTF-8 text" in err
    assert "Traceback" not in err


async def test_whitespace_input_huge_token_limits_and_bad_metadata_are_refused_plainly() -> None:
    env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    code, _, err = await lanes("submit", "--job-type", "public_research", "--input", "   ", env=env)
    assert code == 2
    assert "--input: the prompt is only whitespace" in err
    code, _, err = await lanes(
        "submit",
        "--job-type",
        "public_research",
        "--input",
        "x",
        "--max-output-tokens",
        "99999999999",
        env=env,
    )
    assert code == 2
    assert "--max-output-tokens: Input should be less than or equal to 128000" in err
    code, _, err = await lanes(
        "submit", "--job-type", "public_research", "--input", "x", "--metadata", "lanes_x=1", env=env
    )
    assert code == 2
    assert "--metadata: metadata key 'lanes_x'" in err
    assert "Value error" not in err


async def test_a_closed_stdout_ends_quietly() -> None:
    read, write = os.pipe()
    os.close(read)
    process = await asyncio.create_subprocess_exec(
        *LANES, "policy", "explain", "--job-type", "public_research", "--json",
        stdout=write, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    os.close(write)
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    assert err.decode() == ""


async def test_dev_with_a_taken_port_names_it_and_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        free = [str(free_port()) for _ in range(3)]
        for flag, args in (
            ("--port", ["--port", str(port), "--emulator-port", free[0], "--ui-port", free[1]]),
            ("--emulator-port", ["--port", free[0], "--emulator-port", str(port), "--ui-port", free[1]]),
            ("--ui-port", ["--port", free[0], "--emulator-port", free[1], "--ui-port", str(port)]),
        ):
            code, _, err = await lanes("dev", *args, "--state-dir", str(tmp_path))
            assert code == 2, (flag, err)
            assert len(err.strip().splitlines()) == 1, err
            assert f"port {port}" in err
            assert f"{flag} PORT" in err


async def test_dev_serves_the_temporal_ui_by_default_and_prints_its_url(tmp_path: Path) -> None:
    ui_port = free_port()
    process = await asyncio.create_subprocess_exec(
        *LANES, "dev", "--port", str(free_port()), "--emulator-port", str(free_port()),
        "--ui-port", str(ui_port), "--state-dir", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(90):
            while not any("Ctrl-C" in line for line in lines):
                line = (await process.stdout.readline()).decode()
                assert line, "lanes dev ended early"
                lines.append(line)
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=60)
    assert any(line.startswith(f"Temporal UI http://127.0.0.1:{ui_port} ") for line in lines), lines
    assert any(line.startswith("codec       http://127.0.0.1:") for line in lines), lines
    assert process.returncode == 0


async def test_an_input_over_the_job_types_limit_is_refused_before_anything_starts(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 250_000)  # under the 400,000 hard cap, over public_research's 200,000
    env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    code, _, err = await lanes("submit", "--job-type", "public_research", "--input-file", str(big), env=env)
    assert code == 2, err
    assert "250,000 characters" in err
    assert "limit of 200,000" in err
    assert "cannot reach Temporal" not in err  # refused before connecting


async def test_a_class_that_requires_encryption_is_refused_without_a_key() -> None:
    env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    code, _, err = await lanes(
        "submit", "--job-type", "coding_analysis", "--data-class", "internal", "--input", "x", env=env
    )
    assert code == 2, err
    assert "requires encrypted payloads" in err
    assert "LANES_ENCRYPTION_KEYS" in err


async def test_an_unknown_tenant_is_bad_input_for_submit_and_explain() -> None:
    env = {"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    code, _, err = await lanes(
        "submit", "--job-type", "public_research", "--tenant", "acme", "--input", "x", env=env
    )
    assert code == 2, err
    assert "--tenant" in err
    assert "acme" in err
    code, out, err = await lanes(
        "policy", "explain", "--job-type", "public_research", "--data-class", "Public"
    )
    assert code == 2
    assert "denied.unknown-data-class" in out
    assert "--data-class" in err


async def test_webhooks_without_a_secret_is_bad_input_naming_the_variable() -> None:
    env = {"OPENAI_WEBHOOK_SECRET": "", "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    code, out, err = await lanes("webhooks", "--port", str(free_port()), env=env)
    assert code == 2, err
    assert "OPENAI_WEBHOOK_SECRET" in err
    assert out == ""


async def test_webhooks_new_secret_prints_one_the_emulator_accepts() -> None:
    from responses_emulator import EmulatorConfig

    code, out, err = await lanes("webhooks", "--new-secret")
    assert code == 0, err
    secret = out.strip()
    assert secret.startswith("whsec_")
    assert EmulatorConfig(webhook_url="http://127.0.0.1:8789/webhooks/openai", webhook_secret=secret)


async def test_demo_traces_without_phoenix_says_which_extra_to_install(tmp_path: Path) -> None:
    # No phoenix beside this Python or on PATH: refused before any part of the stack starts.
    from lanes.dev.phoenix import phoenix_cli

    if phoenix_cli() is not None:
        pytest.skip("Phoenix is installed here")
    env = {"PATH": "/usr/bin:/bin"}
    code, out, err = await lanes("demo", "--traces", "--state-dir", str(tmp_path / "demo"), env=env)
    assert code == 2, (out, err)
    assert "--traces" in err
    assert "pip install 'lanes[phoenix]'" in err
    assert not (tmp_path / "demo").exists()


async def test_dev_with_webhooks_ends_a_poll_jobs_wait_by_webhook(tmp_path: Path) -> None:
    from lanes.connect import connect
    from workflows.model_task import ModelTaskInput, ModelTaskWorkflow

    policy = tmp_path / "webhooks.toml"
    policy.write_text(
        (ROOT / "policy" / "default.toml")
        .read_text()
        .replace(
            "[profiles.openai-background-poll]\n", "[profiles.openai-background-poll]\nwebhooks = true\n"
        )
    )
    port, hook_port = free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        *LANES, "dev", "--webhooks", "--no-ui", "--port", str(port), "--emulator-port", str(free_port()),
        "--webhook-port", str(hook_port), "--duration", "1", "--state-dir", str(tmp_path / "dev"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "LANES_POLICY": str(policy)},
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(90):
            while not any("Ctrl-C" in line for line in lines):
                line = (await process.stdout.readline()).decode()
                assert line, "lanes dev ended early"
                lines.append(line)
        assert f"webhooks    http://127.0.0.1:{hook_port}/webhooks/openai " in "".join(lines), lines
        assert "profiles ending by webhook: openai-background-poll" in "".join(lines), lines
        [codec] = [line for line in lines if line.startswith("codec ")]
        key_file = codec.split("key ", 1)[1].split(";", 1)[0]
        client = await connect(Settings(temporal_address=f"127.0.0.1:{port}", encryption_key_file=key_file))
        handle = await client.start_workflow(
            ModelTaskWorkflow.run,
            ModelTaskInput(job_type="coding_analysis", data_class="internal", input="dev webhooks"),
            id=f"dev-webhook-{port}",
            task_queue="lanes",
        )
        async with asyncio.timeout(90):
            result = await handle.result()
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), timeout=60)
    assert (result.status, result.lane) == ("completed", "background")
    # Ended by the emulator's webhook through the receiver, well before the first safety-net poll.
    assert result.by_webhook
    assert result.polls == 0
    assert process.returncode == 0


async def test_status_exits_1_when_no_worker_answers_its_query(settings: Settings) -> None:
    # No worker fixture: nothing polls this test's task queue, so the status query cannot be answered.
    env = stack_env(settings)
    code, out, err = await lanes("submit", "--job-type", "public_research", "--input", "x", env=env)
    assert code == 0, err
    code, out, err = await lanes("status", out.strip(), env=env)
    assert code == 1, out + err
    assert "execution_status  RUNNING" in out
    assert "query_error" in out
    assert "Traceback" not in err
