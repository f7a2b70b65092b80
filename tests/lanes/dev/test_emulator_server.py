"""The emulator's HTTP server: its Starlette app on lanes' bounded uvicorn runner, over real sockets."""

from __future__ import annotations

import asyncio
import logging

import httpx2
import openai
import pytest

from lanes.dev.emulator_server import EmulatorServer, emulator_limits
from lanes.servers.uvicorn_server import ServerLimits
from responses_emulator import Emulator
from responses_emulator.testing import wait_until
from tests.responses_emulator.conftest import FAST


async def wait_until_closed(reader: asyncio.StreamReader) -> None:
    """Read until the server ends the connection (EOF or a reset)."""
    async with asyncio.timeout(30):
        try:
            while await reader.read(4096):
                pass
        except ConnectionResetError:
            pass


async def test_a_request_whose_client_hangs_up_mid_body_is_not_handled(server: EmulatorServer) -> None:
    # A real provider never sees a request whose body did not arrive; the emulator used to handle the
    # part it had read as if it were the whole body.
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    head = (
        b"POST /v1/responses HTTP/1.1\r\nHost: emulator\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    writer.write(head + b'{"model": "gpt-5-mini", "input": "cut')
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: server.connections == 0)
    async with httpx2.AsyncClient(base_url=server.admin_url) as admin:
        # A request after the hang-up: by its answer, the cut one would have been handled too.
        assert (await admin.get("/health")).status_code == 200
        created = await admin.post(
            server.base_url + "/responses", json={"model": "gpt-5-mini", "input": "whole", "background": True}
        )
    assert created.status_code == 200
    creates = [e for e in server.emulator.ledger.entries() if e.path == "/v1/responses"]
    assert [e.status_code for e in creates] == [200]


async def test_a_client_dripping_its_request_head_is_cut_off_while_others_are_served() -> None:
    limits = ServerLimits(header_timeout_s=0.5, keep_alive_s=0.4)
    async with EmulatorServer(Emulator(FAST), limits=limits) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /_emulator/health HTTP/1.1\r\nHost: emulator\r\nX-Slow: ")
        await writer.drain()
        async with httpx2.AsyncClient(base_url=server.admin_url) as admin:
            assert (await admin.get("/health")).status_code == 200
        await wait_until_closed(reader)
        writer.close()


def test_the_emulator_takes_a_load_tests_connections_and_keeps_idle_ones_as_long_as_before() -> None:
    limits = emulator_limits()
    assert limits.max_connections >= 10_000  # the benchmark's thousands of streams and polls
    assert limits.backlog == 2048
    assert limits.keep_alive_s == 30
    # The head deadline never cuts a kept-alive idle connection before uvicorn's keep-alive would.
    assert limits.header_timeout_s > limits.keep_alive_s
    assert limits.max_body_bytes > 6 * 1_000_000  # the largest lanes input, JSON-escaped


async def test_a_deliberate_reset_is_not_logged_as_an_application_error(
    served: openai.AsyncOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    created = await served.responses.create(model="gpt-5-mini", input="x", background=True)
    with caplog.at_level(logging.DEBUG, logger="uvicorn"):
        with pytest.raises(openai.APIConnectionError):
            await served.responses.retrieve(created.id, extra_headers={"X-Emulator-Fault": "reset_mid_body"})
        assert (await served.responses.retrieve(created.id)).id == created.id
    assert [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")] == []


@pytest.mark.parametrize("method", ["PUT", "PATCH", "OPTIONS"])
async def test_every_method_reaches_the_emulator_which_answers_like_the_api(
    server: EmulatorServer, method: str
) -> None:
    async with httpx2.AsyncClient() as http:
        answer = await http.request(method, server.base_url + "/responses")
    assert answer.status_code == 404
    assert answer.json()["error"]["message"] == f"Invalid URL ({method} /v1/responses)"
