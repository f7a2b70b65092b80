"""The ``lanes emulator`` command's flags are derived from EmulatorConfig's fields and validated by it."""

from typing import Any

import pytest
from typer.testing import CliRunner

from lanes.cli.main import app
from lanes.dev import emulator_command as command
from responses_emulator import EmulatorConfig, ShiftedClock, SystemClock


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: dict[str, Any] = {}

    def serve(config: EmulatorConfig, *, host: str, port: int, clock: Any) -> None:
        calls.update(config=config, host=host, port=port, clock=clock)

    monkeypatch.setattr(command, "serve", serve)
    return calls


def test_defaults(served: dict[str, Any]):
    result = CliRunner().invoke(app, ["emulator"])
    assert result.exit_code == 0, result.output
    assert served["host"] == "127.0.0.1"
    assert served["port"] == 8788
    assert served["config"] == EmulatorConfig()


def test_flags(served: dict[str, Any]):
    result = CliRunner().invoke(
        app,
        [
            "emulator",
            "--port", "0", "--duration", "9", "--queued", "2", "--seed", "7", "--rate-429", "0.1",
            "--rate-500", "0.2", "--rate-503", "0.3", "--latency-ms", "15",
            "--background-store-false", "accept", "--retention", "60", "--resume-window", "30",
            "--retry-after", "4", "--no-require-stream-on-create",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = served["config"]
    assert served["port"] == 0
    assert (config.duration_s, config.queued_s, config.seed) == (9.0, 2.0, 7)
    assert (config.rate_429, config.rate_500, config.rate_503, config.latency_ms) == (0.1, 0.2, 0.3, 15.0)
    assert config.background_store_false == "accept"
    assert (config.retention_s, config.resume_window_s, config.retry_after_s) == (60.0, 30.0, 4)
    assert config.require_stream_on_create is False


def test_every_config_field_has_a_flag():
    result = CliRunner().invoke(app, ["emulator", "--help"], env={"COLUMNS": "200"})
    for field in EmulatorConfig.model_fields:
        assert command.flag_name(field) in result.output


def test_an_out_of_range_value_names_the_flag_and_exits_2(served: dict[str, Any]):
    result = CliRunner().invoke(app, ["emulator", "--rate-429", "1.5"])
    assert result.exit_code == 2
    assert "--rate-429" in result.output
    assert "less than or equal to 1" in result.output
    assert not served


def test_clock_flag(served: dict[str, Any]):
    assert CliRunner().invoke(app, ["emulator"]).exit_code == 0
    assert isinstance(served["clock"], SystemClock)
    assert CliRunner().invoke(app, ["emulator", "--clock", "shifted"]).exit_code == 0
    assert isinstance(served["clock"], ShiftedClock)


@pytest.mark.parametrize(
    ("argv", "models"),
    [
        ((), EmulatorConfig().models),
        (("--models", "gpt-5-mini,house-model"), ("gpt-5-mini", "house-model")),
        (("--models", ""), ()),
    ],
)
def test_models_flag(served: dict[str, Any], argv: tuple[str, ...], models: tuple[str, ...]):
    result = CliRunner().invoke(app, ["emulator", *argv])
    assert result.exit_code == 0, result.output
    assert served["config"].models == models
