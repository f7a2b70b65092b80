"""The ``lanes emulator`` subcommand: run the emulator as a standalone local server.

Developers point ``OPENAI_BASE_URL`` at it to run lanes end to end without a key, and the load
benchmark runs it in a separate process so that client and server do not share one CPU.
"""

from __future__ import annotations

import argparse

from responses_emulator.clock import ShiftedClock, SystemClock
from responses_emulator.config import EmulatorConfig
from responses_emulator.server import serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator flags to ``parser`` (shared by ``lanes emulator`` and ``python -m``)."""
    defaults = EmulatorConfig()
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8788, help="TCP port, 0 for any (default: %(default)s)")
    parser.add_argument(
        "--duration", type=float, default=defaults.duration_s, help="background seconds, queued to done"
    )
    parser.add_argument("--queued", type=float, default=defaults.queued_s, help="seconds spent queued")
    parser.add_argument(
        "--foreground-duration", type=float, default=defaults.foreground_duration_s, help="foreground seconds"
    )
    parser.add_argument(
        "--output-tokens", type=int, default=defaults.output_tokens, help="tokens per response"
    )
    parser.add_argument("--token-rate", type=float, default=None, help="tokens/s while in_progress")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of text, ids and random faults")
    parser.add_argument(
        "--resume-window", type=float, default=defaults.resume_window_s, help="stream resume window, s"
    )
    parser.add_argument(
        "--retention", type=float, default=defaults.retention_s, help="background retention, s"
    )
    parser.add_argument(
        "--background-store-false",
        choices=["reject", "accept"],
        default=defaults.background_store_false,
        help="answer to background=true, store=false (default: %(default)s)",
    )
    parser.add_argument("--rate-429", type=float, default=0.0, help="probability of a random 429")
    parser.add_argument("--rate-500", type=float, default=0.0, help="probability of a random 500")
    parser.add_argument("--rate-503", type=float, default=0.0, help="probability of a random 503")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="latency added to every answer")
    parser.add_argument("--retry-after", type=int, default=defaults.retry_after_s, help="Retry-After seconds")
    parser.add_argument(
        "--models",
        default=None,
        help="comma-separated model ids to accept; '' accepts any (default: every model the SDK names)",
    )
    parser.add_argument(
        "--clock",
        choices=["system", "shifted"],
        default="system",
        help="shifted: wall time that POST /_emulator/clock/advance moves on (default: %(default)s)",
    )


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Build the configuration the parsed flags describe.

    Returns:
        The validated configuration.
    """
    models = EmulatorConfig().models if args.models is None else tuple(m for m in args.models.split(",") if m)
    return EmulatorConfig(
        models=models,
        duration_s=args.duration,
        queued_s=args.queued,
        foreground_duration_s=args.foreground_duration,
        output_tokens=args.output_tokens,
        token_rate=args.token_rate,
        seed=args.seed,
        resume_window_s=args.resume_window,
        retention_s=args.retention,
        background_store_false=args.background_store_false,
        rate_429=args.rate_429,
        rate_500=args.rate_500,
        rate_503=args.rate_503,
        latency_ms=args.latency_ms,
        retry_after_s=args.retry_after,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted.

    Returns:
        The process exit code.
    """
    clock = ShiftedClock() if args.clock == "shifted" else SystemClock()
    serve(config_from_args(args), host=args.host, port=args.port, clock=clock)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``emulator`` subcommand to the ``lanes`` CLI."""
    parser = subparsers.add_parser(
        "emulator",
        help="run a local emulator of the OpenAI Responses API",
        description="Serve a fault-injecting emulator of the OpenAI Responses API on loopback.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
