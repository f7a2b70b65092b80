"""The ``lanes emulator`` subcommand's flags map onto EmulatorConfig."""

import argparse

import pytest

from responses_emulator.command import config_from_args, register, run
from responses_emulator.config import DEFAULT_MODELS


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lanes")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["emulator", *argv])


def test_defaults():
    args = _parse()
    assert args.host == "127.0.0.1"
    assert args.port == 8788
    assert args.func is run
    config = config_from_args(args)
    assert config.duration_s == 3.0
    assert config.background_store_false == "reject"
    assert args.clock == "system"


def test_flags():
    args = _parse(
        "--port",
        "0",
        "--duration",
        "9",
        "--queued",
        "2",
        "--seed",
        "7",
        "--rate-429",
        "0.1",
        "--rate-500",
        "0.2",
        "--rate-503",
        "0.3",
        "--latency-ms",
        "15",
        "--background-store-false",
        "accept",
        "--retention",
        "60",
        "--resume-window",
        "30",
        "--clock",
        "shifted",
    )
    assert args.clock == "shifted"
    config = config_from_args(args)
    assert (config.duration_s, config.queued_s, config.seed) == (9.0, 2.0, 7)
    assert (config.rate_429, config.rate_500, config.rate_503, config.latency_ms) == (0.1, 0.2, 0.3, 15.0)
    assert config.background_store_false == "accept"
    assert (config.retention_s, config.resume_window_s) == (60.0, 30.0)


@pytest.mark.parametrize(
    ("argv", "models"),
    [
        ((), DEFAULT_MODELS),
        (("--models", "gpt-5-mini,house-model"), ("gpt-5-mini", "house-model")),
        (("--models", ""), ()),
    ],
)
def test_models_flag(argv, models):
    assert config_from_args(_parse(*argv)).models == models
