"""The emulator's Starlette app on lanes' bounded uvicorn runner.

Apart from :mod:`lanes.dev.emulator_server` because uvicorn and Starlette (the ``dev-stack`` extra) are
imported here at the top: the server module imports this one only when a server starts, so the CLI that
registers ``lanes emulator`` starts without them.
"""

from __future__ import annotations

import socket

from lanes.servers.uvicorn_server import ServerLimits, UvicornServer
from responses_emulator.asgi import emulator_app
from responses_emulator.emulator import Emulator


class EmulatorHTTP(UvicornServer):
    """:func:`~responses_emulator.asgi.emulator_app` on a socket bound beforehand (so its port is known).

    Args:
        emulator: The emulator to serve.
        sock: A listening socket (:func:`lanes.servers.uvicorn_server.bind`); closed when the server stops.
        limits: The bounds on clients.
    """

    def __init__(self, emulator: Emulator, sock: socket.socket, *, limits: ServerLimits) -> None:
        super().__init__(emulator_app(emulator), limits=limits)
        self._bound = sock

    def _listen(self) -> socket.socket:
        return self._bound

    @property
    def connections(self) -> int:
        """Open client connections (uvicorn's own count)."""
        return len(self._server.server_state.connections) if self._server is not None else 0
