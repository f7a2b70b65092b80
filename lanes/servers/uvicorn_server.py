"""One way lanes serves HTTP: an ASGI app run by uvicorn in the current event loop, with limits.

The codec server, the webhook receiver, the Responses emulator and the worker's Prometheus endpoint all run
inside a process that does other work (``lanes dev``, a worker, the tests, their own commands), so none
lets uvicorn own the loop or the signals: each starts it as a task, returns once it accepts connections,
and stops it with a bounded grace.

Every one of them also faces clients it does not trust (a browser, the internet for the receiver, any
local process), and uvicorn alone bounds neither how long a client may take to send a request's headers
(it has no such timeout: a connection that drips one byte at a time stays open for ever) nor how long a
request body may stall, nor how long the server waits for a client that stops reading its response.
:class:`ServerLimits` names every bound, with defaults that suit lanes' small JSON requests, and
:class:`UvicornServer` applies them all:

* **header timeout**: a connection must have sent a complete request head within ``header_timeout_s`` of
  being accepted (or of the previous response, on a kept-alive connection), however slowly it sends
  bytes; otherwise it is closed. uvicorn's own keep-alive timer restarts on every byte, so it cannot do
  this; :class:`BoundedH11Protocol` does, in uvicorn's h11 protocol.
* **body timeouts and size**: the body must keep coming (no gap longer than ``body_timeout_s``), be
  complete within ``body_deadline_s`` and stay under ``max_body_bytes``; otherwise the request is
  answered ``408`` (and the connection closed) or ``413`` (JSON ``{"error": ...}``). This wraps the
  app's ``receive`` (:class:`RequestBodyGuard`), so every app gets it whatever it reads its body with.
* **write timeout**: a client that stops reading a response for ``write_timeout_s`` is disconnected.
* **connections, head size, backlog, keep-alive**: uvicorn's ``limit_concurrency`` (requests beyond it
  get ``503``), h11's largest request head (``400`` past it), the listen backlog and
  uvicorn's keep-alive timeout.

``tests/security/test_server_limits.py`` holds a normal request to them while 500 slow clients are held.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServerLimits:
    """The bounds every lanes HTTP server applies to its clients (see the module docstring)."""

    header_timeout_s: float = 10.0
    """Longest time from accepting a connection (or finishing a response on it) to a complete request
    head; a slow-drip client is disconnected after it."""

    body_timeout_s: float = 10.0
    """Longest gap while a request body is being received before the request is answered ``408``."""

    body_deadline_s: float = 60.0
    """Longest time a whole request body may take, however steadily it drips."""

    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body any app receives; past it the request is answered ``413``. An app may bound
    its bodies tighter (the codec server, the webhook receiver)."""

    write_timeout_s: float = 30.0
    """Longest time a response may wait for a client that does not read it."""

    keep_alive_s: float = 5.0
    """How long an idle kept-alive connection stays open (uvicorn's ``timeout_keep_alive``)."""

    max_connections: int = 1000
    """Open connections (or running requests) beyond which new requests get ``503`` (uvicorn's
    ``limit_concurrency``). Slow connections are dropped by the timeouts above long before it matters."""

    max_header_bytes: int = 16 * 1024
    """Largest request head (request line and headers); larger ones get ``400`` (h11's
    ``max_incomplete_event_size``)."""

    backlog: int = 1024
    """Listen backlog of the socket (the kernel caps it at ``net.core.somaxconn``)."""

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"ServerLimits.{name} must be positive, got {value!r}")


DEFAULT_LIMITS = ServerLimits()


def bind(host: str, port: int, *, backlog: int = DEFAULT_LIMITS.backlog) -> socket.socket:
    """A listening socket, bound before the server starts so that its URL is known (port 0: any free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class BoundedConfig(uvicorn.Config):
    """uvicorn's configuration plus lanes' :class:`ServerLimits`, which :class:`BoundedH11Protocol` reads."""

    def __init__(self, app: Any, *, limits: ServerLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a write timeout.

    The deadline is armed when the connection is accepted and again when a response completes; it is
    disarmed when h11 has parsed the next request's head (uvicorn then starts a new request cycle). If it
    fires first, the connection is aborted: nothing is owed to a client that has not sent a request.
    It also ends a connection whose client keeps trickling a body the server already answered.
    """

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._limits = config.limits if isinstance(config, BoundedConfig) else DEFAULT_LIMITS
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_cycle: object = None
        self._write_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline_cycle = self.cycle
        self._deadline = self.loop.call_later(self._limits.header_timeout_s, self._head_too_late)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_late(self) -> None:
        self._deadline = None
        if self.cycle is self._deadline_cycle and not self.transport.is_closing():
            self.transport.abort()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection and start its request-head deadline."""
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        """Feed h11; once it has parsed a request head, the deadline is met."""
        super().data_received(data)
        if self._deadline is not None and self.cycle is not self._deadline_cycle:
            self._disarm()

    def on_response_complete(self) -> None:
        """Re-arm the deadline for the next request (before uvicorn handles any pipelined one)."""
        if not self.transport.is_closing():
            self._arm()
        super().on_response_complete()
        if self.cycle is not self._deadline_cycle or self.transport.is_closing():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timers with the connection."""
        self._disarm()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The client is not reading: give it ``write_timeout_s`` to start again."""
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self._limits.write_timeout_s, self.transport.abort)

    def resume_writing(self) -> None:
        """The client reads again."""
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None


class RequestBodyGuard:
    """ASGI middleware bounding how slowly and how much of a request body an app receives.

    It wraps ``receive``: while the body is incomplete, each wait is bounded by ``body_timeout_s`` and by
    what is left of ``body_deadline_s``, and the bytes are counted against ``max_body_bytes``. Past a
    bound it answers ``408`` (``Connection: close``) or ``413`` itself, with a JSON ``error``, if the app has
    not started a response, tells the app the client is gone (``http.disconnect``), and drops whatever
    the app sends afterwards. Once the body is complete, ``receive`` is passed through untouched (apps
    wait on it for a disconnect while they stream a response).
    """

    def __init__(self, app: ASGIApp, limits: ServerLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection scope through the guard."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _GuardedCycle(self.limits, receive, send).run(self.app, scope)


class _GuardedCycle:
    def __init__(self, limits: ServerLimits, receive: Receive, send: Send) -> None:
        self.limits = limits
        self._receive = receive
        self._send = send
        self.started = False
        self.refused = False
        self.body_complete = False
        self.received = 0
        self.deadline: float | None = None

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        await app(scope, self.receive, self.send)

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        if self.body_complete:
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self.deadline is None:
            self.deadline = loop.time() + self.limits.body_deadline_s
        wait = min(self.limits.body_timeout_s, self.deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                message = await self._receive()
        except TimeoutError:
            await self._refuse(408, "request body not received in time")
            return {"type": "http.disconnect"}
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limits.max_body_bytes:
                await self._refuse(413, f"request body larger than {self.limits.max_body_bytes} bytes")
                return {"type": "http.disconnect"}
            if not message.get("more_body", False):
                self.body_complete = True
        else:
            self.body_complete = True
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)

    async def _refuse(self, status: int, error: str) -> None:
        self.refused = True
        if self.started:
            return
        body = json.dumps({"error": error}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 408:
            # A stalled client will not finish its body; one that sends too much may: uvicorn reads and drops
            # the rest so that it can read the 413, and BoundedH11Protocol's deadline ends it if it goes on.
            headers.append((b"connection", b"close"))
        await self._send({"type": "http.response.start", "status": status, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})


class UvicornServer:
    """Serves ``app`` with uvicorn inside the current event loop, within ``limits``; use ``async with``.

    Subclasses say where to listen (:meth:`_listen`); the socket is closed when the server stops.

    Args:
        app: An ASGI application.
        limits: The bounds on clients (:class:`ServerLimits`); the defaults suit lanes' servers.
    """

    def __init__(self, app: Any, *, limits: ServerLimits = DEFAULT_LIMITS) -> None:
        self.app = app
        self.limits = limits
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
        limits = self.limits
        config = BoundedConfig(
            RequestBodyGuard(self.app, limits),
            limits=limits,
            lifespan="off",
            http=BoundedH11Protocol,
            loop="none",
            log_level="warning",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=limits.keep_alive_s,
            limit_concurrency=limits.max_connections,
            h11_max_incomplete_event_size=limits.max_header_bytes,
            backlog=limits.backlog,
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

    def request_stop(self) -> None:
        """Ask the server to stop, from any thread; :meth:`wait` returns once it has."""
        if self._server is not None:
            self._server.should_exit = True

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
