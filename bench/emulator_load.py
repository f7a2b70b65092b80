"""Load benchmark of the Responses API emulator.

Starts ``python -m lanes emulator`` in its own process (so client and server do not share a
CPU), creates N background responses through raw ``httpx2`` requests with bounded concurrency,
then holds M concurrent streams open until each ends at its terminal event, and prints requests/s
and the server's resident memory (from ``/proc/<pid>/status``). Only loopback traffic; bounded in
count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import httpx2


def _rss_mib(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _creates(http: httpx2.AsyncClient, count: int, concurrency: int) -> tuple[float, int]:
    gate = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        async with gate:
            answer = await http.post(
                "/responses",
                json={"model": "gpt-5-mini", "input": f"job {i}", "background": True, "store": True},
            )
            if answer.status_code != 200 or answer.json()["status"] != "queued":
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started, failures


async def _streams(http: httpx2.AsyncClient, count: int) -> tuple[float, int, int]:
    completed = 0
    events = 0

    async def one(i: int) -> None:
        nonlocal completed, events
        body = {"model": "gpt-5-mini", "input": f"stream {i}", "background": True, "stream": True}
        async with http.stream("POST", "/responses", json=body) as answer:
            async for line in answer.aiter_lines():
                if line.startswith("event: "):
                    events += 1
                    if line == "event: response.completed":
                        completed += 1

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started, completed, events


async def _run(args: argparse.Namespace, base_url: str, pid: int) -> dict[str, float]:
    limits = httpx2.Limits(
        max_connections=max(args.concurrency, args.streams) + 10, max_keepalive_connections=None
    )
    timeout = httpx2.Timeout(120.0)
    async with httpx2.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as http:
        create_s, failures = await _creates(http, args.responses, args.concurrency)
        health = (await http.get(base_url.removesuffix("/v1") + "/_emulator/health")).json()
        rss_after_creates, _ = _rss_mib(pid)
        stream_s, completed, events = await _streams(http, args.streams)
        rss, peak = _rss_mib(pid)
    return {
        "responses": args.responses,
        "create_failures": failures,
        "create_seconds": round(create_s, 2),
        "creates_per_second": round(args.responses / create_s, 1),
        "responses_held": health["responses"],
        "server_rss_mib_after_creates": round(rss_after_creates, 1),
        "streams": args.streams,
        "streams_completed": completed,
        "stream_events": events,
        "stream_seconds": round(stream_s, 2),
        "stream_events_per_second": round(events / stream_s, 1),
        "server_rss_mib": round(rss, 1),
        "server_peak_rss_mib": round(peak, 1),
    }


def measure(args: argparse.Namespace) -> dict[str, float] | None:
    """Run the load against a fresh emulator process; ``None`` if it did not start."""
    _raise_fd_limit()
    server = subprocess.Popen(
        [sys.executable, "-m", "lanes", "emulator", "--port", "0", "--duration", str(args.duration)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        line = server.stderr.readline().strip()
        base_url = line.rsplit(" ", 1)[-1]
        if not base_url.startswith("http://"):
            print(f"emulator did not start: {line!r}", file=sys.stderr)
            return None
        time.sleep(0.5)
        results = asyncio.run(_run(args, base_url, server.pid))
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["client_peak_rss_mib"] = round(client_peak, 1)
    return results


def parser() -> argparse.ArgumentParser:
    """The command line, also used by ``python -m bench`` to build its reduced workload."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responses", type=int, default=5000, help="background responses to create")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams to hold open")
    parser.add_argument("--concurrency", type=int, default=100, help="in-flight creates")
    parser.add_argument("--duration", type=float, default=5.0, help="simulated seconds per response")
    return parser


def main() -> int:
    results = measure(parser().parse_args())
    if results is None:
        return 1
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
