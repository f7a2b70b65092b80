"""The provider client's pool has room for every stream the worker's slots allow.

The OpenAI SDK's pool holds 1,000 connections. A worker with more stream slots than that used to leave
the surplus streams (and every check and create behind them) waiting for a connection while nothing was
busy: jobs that looked stuck. The test opens more requests at once than the SDK's default allows, over
real sockets to a loopback server that never answers, and waits until the server has accepted them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource

import httpx2
import openai
import pytest

from lanes.connect import openai_client, provider_connections
from lanes.settings import Settings

STREAMS = 1100
"""Stream slots of the worker under test: more than the SDK's default pool."""


def test_the_pool_counts_every_slot_that_may_hold_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANES_WORKER_MAX_CONCURRENT_STREAMS", "3000")
    monkeypatch.setenv("LANES_WORKER_MAX_CONCURRENT_POLLS", "200")
    monkeypatch.setenv("LANES_WORKER_MAX_CONCURRENT_ACTIVITIES", "50")
    assert provider_connections(Settings()) == 3250


async def test_more_streams_than_the_sdk_default_pool_open_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * STREAMS + 200  # both ends of every connection live in this process
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} open files, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    accepted: list[asyncio.StreamWriter] = []
    all_in = asyncio.Event()
    target = STREAMS + 50  # past the SDK's 1,000, within this worker's streams + polls + activities

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        if len(accepted) >= target:
            all_in.set()
        await reader.read()  # never answers; returns when the client closes

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("LANES_WORKER_MAX_CONCURRENT_STREAMS", str(STREAMS))
    provider = openai_client(Settings())
    assert openai.DEFAULT_CONNECTION_LIMITS.max_connections == 1000
    requests = [
        asyncio.create_task(provider.responses.retrieve(f"resp_{i}", timeout=httpx2.Timeout(300.0)))
        for i in range(target)
    ]
    try:
        # Observed state: every request has its own connection at the server. With the SDK's pool, the
        # 1,001st would wait for one until the timeout.
        await asyncio.wait_for(all_in.wait(), timeout=240)
        assert len(accepted) >= target
    finally:
        for task in requests:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*requests, return_exceptions=True)
        await provider.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
