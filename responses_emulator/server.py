"""Serving the emulator over loopback HTTP with uvicorn.

Tests that must prove the real SDK works over a real socket (connection reuse, streamed bodies,
dropped connections) run an :class:`EmulatorServer` in their own event loop; the CLI runs
:func:`serve`, which blocks until interrupted.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from types import TracebackType
from typing import TYPE_CHECKING

from responses_emulator.asgi import EmulatorASGI, ResetLogFilter
from responses_emulator.clock import Clock, SystemClock
from responses_emulator.config import EmulatorConfig
from responses_emulator.emulator import Emulator

if TYPE_CHECKING:
    import uvicorn

_SHUTDOWN_GRACE_S = 1


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _uvicorn(emulator: Emulator) -> uvicorn.Server:
    # Imported here: uvicorn is in the dev-stack extra, and the CLI (which registers the emulator's
    # command) must work in a worker image without it.
    import uvicorn

    for name in ("uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ResetLogFilter) for f in logger.filters):
            logger.addFilter(ResetLogFilter())
    config = uvicorn.Config(
        EmulatorASGI(emulator),
        lifespan="off",
        http="h11",
        loop="none",
        log_level="warning",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=_SHUTDOWN_GRACE_S,
        timeout_keep_alive=30,
        backlog=2048,
    )
    return uvicorn.Server(config)


class EmulatorServer:
    """Runs an :class:`Emulator` on a loopback port inside the current event loop.

    Use as ``async with EmulatorServer(emulator) as server:`` and point the SDK at
    ``server.base_url``. Port 0 picks a free port, readable from ``server.port`` once entered. On exit
    open streams are cut and the server is stopped within about a second.

    Args:
        emulator: The emulator to serve.
        host: Interface to bind; loopback by default.
        port: TCP port, 0 for any free port.
    """

    def __init__(self, emulator: Emulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self._host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

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
        if self._server is None:
            return 0
        return len(self._server.server_state.connections)

    @property
    def admin_url(self) -> str:
        """Prefix of the admin endpoints (``/ledger``, ``/health``)."""
        return f"http://{self._host}:{self.port}/_emulator"

    async def start(self) -> None:
        """Bind, start uvicorn as a task of the current loop, and wait until it accepts connections.

        Raises:
            RuntimeError: If uvicorn exits before it starts.
        """
        self._socket = _bind(self._host, self._requested_port)
        self._server = _uvicorn(self.emulator)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Cut open streams, stop webhook deliveries and stop the server."""
        if self._server is None or self._task is None:
            return
        self.emulator.end_streams()
        await self.emulator.aclose()
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=_SHUTDOWN_GRACE_S + 2)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        finally:
            if self._socket is not None:
                self._socket.close()
            self._server = None
            self._task = None

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
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    print(f"responses emulator listening on http://{host}:{bound}/v1", file=sys.stderr, flush=True)
    server = _uvicorn(emulator)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
