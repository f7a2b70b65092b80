"""Issue 20, item 6: the HTTP servers lanes starts bound how slowly and how much a client may send.

Every server (codec server, webhook receiver, emulator, Prometheus endpoint) runs on
``lanes.servers.uvicorn_server.UvicornServer``; these tests hold its limits with real sockets on 127.0.0.1.
Before the fix, 500 clients dripping a request head stayed connected for as long as they dripped (uvicorn
restarts its keep-alive timer on every byte and has no head timeout), a stalled body held its request for
ever, and a client that stopped reading held its response. The limits here are short so that the tests
wait for the server to act (a socket closing, a status line), not for long timeouts.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable

import httpx2
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lanes.dev.stack import free_port
from lanes.servers.uvicorn_server import ServerLimits, UvicornServer, bind
from lanes.worker.metrics import prometheus_reader

SLOW_CLIENTS = 500
LIMITS = ServerLimits(
    header_timeout_s=4.0,
    body_timeout_s=1.0,
    body_deadline_s=3.0,
    max_body_bytes=64 * 1024,
    write_timeout_s=1.0,
    keep_alive_s=30.0,  # longer than the head deadline: the deadline, not keep-alive, must end a drip
)


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def echo(request: Request) -> Response:
    return JSONResponse({"bytes": len(await request.body())})


async def big(request: Request) -> Response:
    return Response(b"x" * (64 * 1024 * 1024), media_type="application/octet-stream")


class TestServer(UvicornServer):
    __test__ = False

    def _listen(self) -> socket.socket:
        return bind("127.0.0.1", 0, backlog=self.limits.backlog)

    @property
    def port(self) -> int:
        assert self._socket is not None
        return int(self._socket.getsockname()[1])

    @property
    def connections(self) -> int:
        assert self._server is not None
        return len(self._server.server_state.connections)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[TestServer]:
    app = Starlette(
        routes=[Route("/", ok), Route("/echo", echo, methods=["POST"]), Route("/big", big)],
    )
    async with TestServer(app, limits=LIMITS) as running:
        yield running


async def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll observed state until ``predicate`` holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def closed_by_server(reader: asyncio.StreamReader) -> float:
    """Read until the server closes the connection; return when it did (monotonic)."""
    try:
        while await reader.read(65536):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    return time.monotonic()


async def test_item_6_slow_drip_clients_are_cut_off_while_a_normal_request_succeeds(
    server: TestServer,
) -> None:
    head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 10_000 + b"\r\n\r\n"
    opened = time.monotonic()
    connections = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(SLOW_CLIENTS)]
    closes = [asyncio.create_task(closed_by_server(reader)) for reader, _ in connections]
    dripped = [0] * SLOW_CLIENTS

    async def drip() -> None:
        # One byte per client every 50 ms: far slower than any real client, fast enough to reset a timer
        # that restarts on every byte.
        while not all(c.done() for c in closes):
            for i, (_, writer) in enumerate(connections):
                if not closes[i].done() and not writer.is_closing():
                    writer.write(head[dripped[i] : dripped[i] + 1])
                    dripped[i] += 1
            await asyncio.sleep(0.05)

    dripping = asyncio.create_task(drip())
    try:
        await until(lambda: server.connections >= SLOW_CLIENTS, 30, "the server to accept every slow client")
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            response = await http.get("/")
        held = sum(not c.done() for c in closes)
        assert response.status_code == 200
        assert response.json() == {"ok": True}
        assert held == SLOW_CLIENTS, "the slow clients were cut off before the normal request ran"

        ended = await asyncio.wait_for(asyncio.gather(*closes), timeout=60)
    finally:
        dripping.cancel()
        for _, writer in connections:
            writer.close()
    # Each was cut off by the head deadline (not earlier), though it was still sending bytes.
    assert min(ended) - opened >= LIMITS.header_timeout_s - 0.5
    assert all(0 < n < len(head) for n in dripped)
    await until(lambda: server.connections == 0, 10, "the server to drop the slow connections")


async def test_item_6_a_kept_alive_connection_must_send_its_next_head_in_time(server: TestServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
        await reader.readuntil(b'{"ok":true}')
        writer.write(b"GET / HT")  # the next request's head, never finished
        started = time.monotonic()
        ended = await asyncio.wait_for(closed_by_server(reader), timeout=30)
        assert ended - started < LIMITS.keep_alive_s  # the head deadline, not uvicorn's keep-alive
    finally:
        writer.close()


async def test_item_6_a_stalled_body_gets_408_and_the_connection_closes(server: TestServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
        status = await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout=30)
        assert status.startswith(b"HTTP/1.1 408"), status
        rest = await asyncio.wait_for(reader.read(), timeout=30)  # then EOF: the server closed
        assert b'{"error": "request body not received in time"}' in rest
    finally:
        writer.close()


async def test_item_6_a_dripped_body_is_cut_off_at_its_deadline(server: TestServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n")
        started = time.monotonic()
        response = asyncio.create_task(reader.readuntil(b"\r\n"))
        while not response.done():  # one byte each 100 ms: never a gap of body_timeout_s
            writer.write(b"x")
            await asyncio.wait([response], timeout=0.1)
        assert response.result().startswith(b"HTTP/1.1 408")
        assert time.monotonic() - started >= LIMITS.body_deadline_s - 0.5
    finally:
        writer.close()


async def test_item_6_a_body_over_the_limit_gets_413_which_the_client_can_read(server: TestServer) -> None:
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=30) as http:
        refused = await http.post("/echo", content=b"x" * (LIMITS.max_body_bytes + 1))
        assert refused.status_code == 413
        assert refused.json() == {"error": f"request body larger than {LIMITS.max_body_bytes} bytes"}
        accepted = await http.post("/echo", content=b"x" * 1000)
        assert accepted.json() == {"bytes": 1000}


async def test_item_6_a_client_that_stops_reading_is_disconnected(server: TestServer) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    try:
        await asyncio.get_running_loop().sock_sendall(sock, b"GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await until(lambda: server.connections == 1, 10, "the request to arrive")
        # The client reads nothing: the server gives up write_timeout_s after the buffers fill.
        await until(lambda: server.connections == 0, 30, "the server to drop the non-reading client")
    finally:
        sock.close()


async def test_item_6_the_prometheus_endpoint_holds_slow_clients_without_a_thread_each() -> None:
    """``prometheus_client.start_http_server`` started a thread per connection and never timed one out."""
    port = free_port()
    prometheus_reader(f"127.0.0.1:{port}", limits=LIMITS)
    threads = threading.active_count()
    slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
    closes = [asyncio.create_task(closed_by_server(reader)) for reader, _ in slow]
    try:
        for _, writer in slow:
            writer.write(b"GET /metr")
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            scraped = await http.get("/metrics")
        assert scraped.status_code == 200
        assert threading.active_count() <= threads + 2
        await asyncio.wait_for(asyncio.gather(*closes), timeout=60)  # cut off by the head deadline
    finally:
        for _, writer in slow:
            writer.close()
    # The endpoint's daemon thread is left to the end of the session: shutdown_telemetry() would also end
    # the session's tracing.
