import socket
from pathlib import Path

import pytest

from lanes.dev.stack import DevServer, StackError, WorkerProcess, temporal_cli
from lanes.settings import Settings
from policy import default_policy_path


def test_the_temporal_cli_comes_from_the_installed_wheel() -> None:
    assert Path(temporal_cli()).name == "temporal"


@pytest.mark.long(11)
async def test_a_dev_server_that_cannot_start_says_why_and_where_its_log_is(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = DevServer(state_dir=tmp_path, port=taken.getsockname()[1], persistent=False)
        with pytest.raises(StackError) as failure:
            await server.start()
    assert "the Temporal dev server exited" in str(failure.value)
    assert str(tmp_path / "temporal.log") in str(failure.value)


def test_the_dev_server_registers_lanes_search_attributes(tmp_path: Path) -> None:
    command = DevServer(state_dir=tmp_path, persistent=True).command()
    assert "--headless" in command
    assert str(tmp_path / "temporal.db") in command
    for name in ("LanesLane=Keyword", "LanesJobType=Keyword", "LanesDataClass=Keyword"):
        assert name in command


async def test_a_worker_with_a_malformed_policy_stops_at_start_naming_the_file_and_key(
    settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text(
        default_policy_path().read_text().replace('min_data_class = "public"', 'min_data_class = "secret"')
    )
    worker = WorkerProcess(settings.model_copy(update={"policy_path": str(bad)}), log_path=tmp_path / "w.log")
    with pytest.raises(StackError) as failure:
        await worker.start()
    message = str(failure.value)
    assert "the worker exited with 1" in message
    assert f"{bad}: job_types.public_research.min_data_class: 'secret' is not a data class" in message


async def test_the_embedded_stack_encrypts_by_default_and_its_database_holds_no_clear_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lanes.connect import connect
    from lanes.dev.stack import EmbeddedStack
    from lanes.jobs import start_job
    from workflows.model_task import ModelTaskInput

    for name in ("LANES_ENCRYPTION_KEYS", "LANES_ENCRYPTION_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    canary = "canary-embedded-7f3a9c"
    state = tmp_path / "dev"
    async with EmbeddedStack(state_dir=state, persistent=True) as stack:
        settings = stack.settings
        assert settings.encryption_key_file is not None
        client = await connect(settings)
        handle = await start_job(
            client,
            ModelTaskInput(job_type="support_analysis", data_class="confidential", input=canary),
            workflow_id=f"enc-{tmp_path.name}",
            task_queue=settings.task_queue,
        )
        result = await handle.result()
        assert result.status == "completed"
    key_file = Path(settings.encryption_key_file)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.parent.stat().st_mode & 0o777 == 0o700
    database = (state / "temporal.db").read_bytes()
    assert canary.encode() not in database
    assert result.output_text[:40].encode() not in database


async def test_the_demo_runs_its_script_across_every_lane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lanes.dev.demo import run_demo
    from lanes.dev.state_dir import MARKER, claim_state_dir

    # A directory lanes made for an earlier run: cleared (its contents only) and reused.
    state = claim_state_dir(tmp_path / "demo", made_by="lanes demo")
    (state / "stale.log").write_text("the last run's")
    assert await run_demo(state_dir=state) == 0
    assert not (state / "stale.log").exists()
    assert (state / MARKER).is_file()
    out = capsys.readouterr().out
    for lane in ("background", "stateless", "denied"):
        assert f" {lane} " in out
    assert "demo passed" in out
