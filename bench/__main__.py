"""``python -m bench``: the whole benchmark, one section, or a redraw of the last result.

python -m bench [--quick] [--seed N]            every section; the table; latest.json and latest.png
python -m bench capacity --mode poll --jobs 10000 [--levels 100,1000,...] [--window 15] [--probes 10]
python -m bench table | plot                    re-print or redraw bench/results/latest.json
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import capacity, goals, harness, plot
from bench.contenders import Contender
from bench.machine import machine, versions
from bench.results import BenchResult
from bench.stack import ROOT, BenchStack, raise_fd_limit
from bench.table import render
from lanes.connect import connect

MODES = {"poll": Contender.POLL, "stream": Contender.STREAM, "webhook": Contender.WEBHOOK}


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"comma-separated whole numbers, e.g. 100,1000; got {text!r}"
        ) from None
    if not levels or any(level < 1 for level in levels) or levels != sorted(levels):
        raise argparse.ArgumentTypeError(f"increasing numbers of jobs, each at least 1; got {text!r}")
    return levels


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=0, help="the emulator's seed (recorded in the result)")
    common.add_argument(
        "--results", type=Path, default=harness.RESULTS_DIR, help="directory of the result files"
    )
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0], parents=[common]
    )
    parser.add_argument("--quick", action="store_true", help="reduced workload, about three minutes")
    sub = parser.add_subparsers(dest="command")
    cap = sub.add_parser("capacity", help="the capacity section alone, at any size", parents=[common])
    cap.add_argument("--mode", choices=sorted(MODES), default="poll", help="how lanes follows the response")
    cap.add_argument("--jobs", type=int, default=1000, help="the largest number of in-flight jobs to try")
    cap.add_argument(
        "--levels", type=_levels, help="in-flight levels to step through (default: 100, 250, 500, ...)"
    )
    cap.add_argument("--window", type=float, default=15.0, help="seconds measured at each level")
    cap.add_argument("--probes", type=int, default=10, help="short probe jobs per level")
    cap.add_argument(
        "--no-steady",
        dest="steady",
        action="store_false",
        help="poll mode: skip measuring the top level again at steady state (about five minutes)",
    )
    sub.add_parser("table", help="print the table of the last result", parents=[common])
    sub.add_parser("plot", help="redraw latest.png from the last result", parents=[common])
    return parser


async def _capacity(args: argparse.Namespace) -> int:
    mode = MODES[args.mode]
    result = BenchResult(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        quick=False,
        seed=args.seed,
        machine=machine(),
        versions=versions(),
        parameters={
            "section": "capacity",
            "mode": args.mode,
            "jobs": args.jobs,
            "window_s": args.window,
            "probes": args.probes,
        },
    )
    levels = args.levels or capacity.default_levels(args.jobs)
    raise_fd_limit()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    async with BenchStack(ROOT / ".lanes" / "bench" / stamp, seed=args.seed) as stack:
        if mode in stack.left_out:
            print(f"--mode {args.mode}: {stack.left_out[mode]}", file=sys.stderr)
            return 2
        client = await connect(stack.settings)
        result.capacity = [
            await capacity.run_capacity(
                client,
                stack,
                mode=mode,
                levels=levels,
                window_s=args.window,
                probes=args.probes,
                steady=args.steady,
            )
        ]
    result.goals = [g for g in goals.evaluate(result) if g.goal.startswith("capacity")]
    result.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    path = args.results / f"capacity-{args.mode}.json"
    result.write(path)
    print(render(result), end="")
    print(f"\nwrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "capacity":
        if args.jobs < 1:
            print("--jobs: at least 1 in-flight job", file=sys.stderr)
            return 2
        if args.window <= 0 or args.probes < 1:
            print("--window must be above 0 seconds and --probes at least 1", file=sys.stderr)
            return 2
        return asyncio.run(_capacity(args))
    latest = args.results / "latest.json"
    if args.command in ("table", "plot"):
        if not latest.exists():
            print(f"no result at {latest}: run `make bench` (or python -m bench) first", file=sys.stderr)
            return 2
        result = BenchResult.read(latest)
        if args.command == "plot":
            plot.draw(result, args.results / "latest.png")
            print(f"wrote {args.results / 'latest.png'}")
        else:
            print(render(result), end="")
        return 0
    plan = harness.QUICK if args.quick else harness.FULL
    result = asyncio.run(harness.run(plan, quick=args.quick, seed=args.seed, results_dir=args.results))
    harness.print_result(result, args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
