"""An ASGI app served by uvicorn as a task of the current event loop, on a socket bound first.

The codec server and the webhook receiver both run inside a process that does other work (``lanes dev``,
the tests, their own commands), so neither lets uvicorn own the loop or the signals: each starts it as a
task, returns once it accepts connections, and stops it with a bounded grace.
"""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType
from typing import Any, Self

import uvicorn


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the server starts so that its URL is known (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class UvicornServer:
    """Serves ``app`` with uvicorn inside the current event loop; use ``async with``.

    Subclasses say where to listen (:meth:`_listen`); the socket is closed when the server stops.

    Args:
        app: An ASGI application.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def _listen(self) -> socket.socket:
        """The socket to serve on, called by :meth:`start`."""
        raise NotImplementedError

    async def start(self) -> None:
        """Start uvicorn as a task of the current loop; return once it accepts connections.

        Raises:
            RuntimeError: If uvicorn exits before it starts.
        """
        self._socket = self._listen()
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            http="h11",
            loop="none",
            log_level="warning",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.01)

    async def wait(self) -> None:
        """Return when the server stops (uvicorn exits on SIGINT/SIGTERM)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop the server and close its socket."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=3)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        finally:
            if self._socket is not None:
                self._socket.close()
            self._server = None
            self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
