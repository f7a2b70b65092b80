"""Serving the emulator over loopback HTTP: its Starlette app on lanes' uvicorn runner.

Tests that must prove the real SDK works over a real socket (connection reuse, streamed bodies,
dropped connections) run an :class:`EmulatorServer` in their own event loop; the CLI runs
:func:`serve`, which blocks until interrupted.

The app (``responses_emulator/asgi.py``) runs on :class:`lanes.servers.uvicorn_server.UvicornServer`, the
runner of every lanes server, with :data:`EMULATOR_LIMITS`: the emulator is a load-test target as well as
a test double, so its bounds are sized for the benchmark's thousands of concurrent streams and polls
rather than for a small JSON API, and its idle connections live as long as before (30 s).

Starlette and uvicorn are in the ``dev-stack`` extra, and the CLI (which registers the emulator's command)
must start without them, so they are imported when a server starts, not when this module is imported.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from types import TracebackType
from typing import TYPE_CHECKING

from responses_emulator.clock import Clock, SystemClock
from responses_emulator.config import EmulatorConfig
from responses_emulator.emulator import Emulator

if TYPE_CHECKING:
    from lanes.dev.emulator_http import EmulatorHTTP
    from lanes.servers.uvicorn_server import ServerLimits


def emulator_limits() -> ServerLimits:
    """The bounds the emulator's server applies to its clients (see :data:`EMULATOR_LIMITS`)."""
    from lanes.servers.uvicorn_server import ServerLimits

    return ServerLimits(
        # Idle kept-alive connections close after 30 s, as before: longer than any client's pool keeps
        # them (httpx's 5 s), so the client always closes first and never reuses a connection the server
        # is closing. The request-head deadline is longer still, so it never cuts an idle connection the
        # keep-alive timer would have kept; it only ends a client that drips a request head.
        keep_alive_s=30.0,
        header_timeout_s=60.0,
        body_timeout_s=30.0,
        body_deadline_s=120.0,
        # The largest lanes input (1,000,000 characters, JSON-escaped) with room to spare.
        max_body_bytes=32 * 1024 * 1024,
        # A loaded worker may leave a stream unread for a while; a client gone for a minute is gone.
        write_timeout_s=60.0,
        # The benchmark holds up to 2,000 streams and 10,000 poll-mode jobs through pools of up to a few
        # thousand connections per worker; beyond this a client gets 503 (as a real provider sheds load)
        # instead of the process running out of file descriptors.
        max_connections=16_384,
        backlog=2048,
    )


class EmulatorServer:
    """Runs an :class:`Emulator` on a loopback port inside the current event loop.

    Use as ``async with EmulatorServer(emulator) as server:`` and point the SDK at
    ``server.base_url``. Port 0 picks a free port, readable from ``server.port`` once entered. On exit
    open streams are cut and the server is stopped within about a second.

    Args:
        emulator: The emulator to serve.
        host: Interface to bind; loopback by default.
        port: TCP port, 0 for any free port.
        limits: Bounds on clients; :func:`emulator_limits` by default.
    """

    def __init__(
        self,
        emulator: Emulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ServerLimits | None = None,
    ) -> None:
        self.emulator = emulator
        self._host = host
        self._requested_port = port
        self._limits = limits
        self._socket: socket.socket | None = None
        self._http: EmulatorHTTP | None = None

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: Before the server is started.
        """
        if self._socket is None:
            raise RuntimeError("the emulator server is not running")
        return int(self._socket.getsockname()[1])

    @property
    def base_url(self) -> str:
        """The SDK ``base_url``, e.g. ``http://127.0.0.1:8788/v1``."""
        return f"http://{self._host}:{self.port}/v1"

    @property
    def connections(self) -> int:
        """Open client connections, so a test can observe that a client it killed has hung up."""
        return self._http.connections if self._http is not None else 0

    @property
    def admin_url(self) -> str:
        """Prefix of the admin endpoints (``/ledger``, ``/health``)."""
        return f"http://{self._host}:{self.port}/_emulator"

    async def start(self) -> None:
        """Bind, start uvicorn as a task of the current loop, and wait until it accepts connections.

        Raises:
            RuntimeError: If uvicorn exits before it starts.
        """
        from lanes.dev.emulator_http import EmulatorHTTP
        from lanes.servers.uvicorn_server import bind
        from responses_emulator.asgi import install_reset_log_filter

        limits = self._limits or emulator_limits()
        install_reset_log_filter()
        self._socket = bind(self._host, self._requested_port, backlog=limits.backlog)
        self._http = EmulatorHTTP(self.emulator, self._socket, limits=limits)
        try:
            await self._http.start()
        except BaseException:
            self._socket.close()
            self._socket = None
            self._http = None
            raise

    async def wait(self) -> None:
        """Return when the server stops (uvicorn exits on SIGINT/SIGTERM)."""
        if self._http is not None:
            await self._http.wait()

    async def stop(self) -> None:
        """Cut open streams, stop webhook deliveries and stop the server."""
        if self._http is None:
            return
        self.emulator.end_streams()
        await self.emulator.aclose()
        try:
            await self._http.stop()  # closes the socket
        finally:
            self._http = None
            self._socket = None

    async def __aenter__(self) -> EmulatorServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def serve(config: EmulatorConfig, *, host: str, port: int, clock: Clock | None = None) -> None:
    """Serve an emulator with a real-time clock until interrupted (the ``lanes emulator`` command).

    Logs ``responses emulator listening on http://host:port/v1`` to stderr once bound.

    Args:
        config: The emulator's settings.
        host: Interface to bind.
        port: TCP port, 0 for any free port.
        clock: A real-time clock; ``SystemClock`` by default, a ``ShiftedClock`` to let tests in other
            processes fast-forward it through ``POST /_emulator/clock/advance``.
    """
    emulator = Emulator(config, clock=clock if clock is not None else SystemClock())
    asyncio.run(_serve(emulator, host, port))


async def _serve(emulator: Emulator, host: str, port: int) -> None:
    async with EmulatorServer(emulator, host=host, port=port) as server:
        print(f"responses emulator listening on {server.base_url}", file=sys.stderr, flush=True)
        await server.wait()
