import socket
from pathlib import Path

import pytest

from cli.stack import DevServer, StackError, WorkerProcess, temporal_cli
from client.settings import Settings
from policy import default_policy_path


def test_the_temporal_cli_comes_from_the_installed_wheel() -> None:
    assert Path(temporal_cli()).name == "temporal"


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
