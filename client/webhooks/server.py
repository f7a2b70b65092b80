"""Serving the webhook receiver with uvicorn: in the current event loop (tests) or until interrupted.

The receiver must be reachable by the provider, so unlike the codec server it may bind any interface:
what protects it is the signature check, not the network.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from types import TracebackType

import uvicorn

from client.connect import connect, openai_client
from client.settings import Settings
from client.webhooks.receiver import DEFAULT_PATH, WebhookReceiver
from client.webhooks.verification import DEFAULT_TOLERANCE_S, WebhookVerifier, check_secret

DEFAULT_PORT = 8789
"""The port ``lanes webhooks`` listens on unless told otherwise (the emulator's is 8788)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the server starts so that its URL is known (port 0: any free one).

    Tests bind first, configure the emulator's webhook URL with the port, then start the receiver.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class WebhookServer:
    """Runs a :class:`WebhookReceiver` on a bound socket inside the current event loop.

    Args:
        receiver: The app to serve.
        sock: A socket from :func:`bind`; closed when the server stops.
        path: The receiver's delivery route, for :attr:`url`.
    """

    def __init__(self, receiver: WebhookReceiver, sock: socket.socket, *, path: str = DEFAULT_PATH) -> None:
        self.receiver = receiver
        self._socket = sock
        self._path = "/" + path.strip("/")
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The delivery URL, e.g. ``http://127.0.0.1:8789/webhooks/openai``."""
        host, port = self._socket.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}{self._path}"

    async def start(self) -> None:
        """Start uvicorn as a task of the current loop; return once it accepts connections.

        Raises:
            RuntimeError: If uvicorn exits before it starts.
        """
        config = uvicorn.Config(
            self.receiver,
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
            self._socket.close()
            self._server = None
            self._task = None

    async def __aenter__(self) -> WebhookServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve_webhooks(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    path: str = DEFAULT_PATH,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Serve the receiver until interrupted (the ``lanes webhooks`` command).

    Prints ``webhook receiver listening on http://host:port/webhooks/openai`` to stderr once bound.

    Raises:
        ValueError: ``OPENAI_WEBHOOK_SECRET`` is unset or malformed (the message says how to fix it).
        client.connect.TemporalUnreachableError: Temporal does not answer.
        client.connect.ProviderNotConfiguredError: No OpenAI key or base URL to read responses with.
    """
    if settings.openai_webhook_secret is None:
        raise ValueError(
            "OPENAI_WEBHOOK_SECRET is not set: set it to the webhook endpoint's signing secret (whsec_...); "
            "for the emulator, create one with `lanes webhooks --new-secret` and pass the same value to "
            "`lanes emulator --webhook-secret`"
        )
    secret = check_secret(settings.openai_webhook_secret.get_secret_value())
    temporal = await connect(settings)
    async with openai_client(settings) as provider:
        verifier = WebhookVerifier(provider, secret, tolerance_s=tolerance_s)
        receiver = WebhookReceiver(temporal, provider, verifier, path=path)
        async with WebhookServer(receiver, bind(host, port), path=path) as server:
            print(f"webhook receiver listening on {server.url}", file=sys.stderr, flush=True)
            await server.wait()
