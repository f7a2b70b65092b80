"""Serving the webhook receiver with uvicorn: in the current event loop (tests) or until interrupted.

The receiver must be reachable by the provider, so unlike the codec server it may bind any interface:
what protects it is the signature check, not the network.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from collections.abc import AsyncIterator

from lanes.connect import connect, openai_client
from lanes.servers.uvicorn_server import UvicornServer, bind
from lanes.servers.webhooks.receiver import DEFAULT_PATH, WebhookReceiver
from lanes.servers.webhooks.verification import DEFAULT_TOLERANCE_S, WebhookVerifier, check_secret
from lanes.settings import Settings
from lanes.telemetry import configure_logging

DEFAULT_PORT = 8789
"""The port ``lanes webhooks`` listens on unless told otherwise (the emulator's is 8788)."""


class WebhookServer(UvicornServer):
    """Runs a :class:`WebhookReceiver` on a bound socket inside the current event loop.

    Args:
        receiver: The app to serve.
        sock: A socket from :func:`lanes.servers.uvicorn_server.bind`; closed when the server stops.
        path: The receiver's delivery route, for :attr:`url`.
    """

    def __init__(self, receiver: WebhookReceiver, sock: socket.socket, *, path: str = DEFAULT_PATH) -> None:
        super().__init__(receiver)
        self.receiver = receiver
        self._bound = sock
        self._path = "/" + path.strip("/")

    @property
    def url(self) -> str:
        """The delivery URL, e.g. ``http://127.0.0.1:8789/webhooks/openai``."""
        host, port = self._bound.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}{self._path}"

    def _listen(self) -> socket.socket:
        return self._bound


@contextlib.asynccontextmanager
async def running_receiver(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    path: str = DEFAULT_PATH,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> AsyncIterator[WebhookServer]:
    """The receiver, serving in the current event loop for the block (``lanes webhooks``, ``lanes dev``).

    Raises:
        ValueError: ``OPENAI_WEBHOOK_SECRET`` is unset, malformed or under 24 bytes of key material (the
            message says how to fix it).
        lanes.connect.TemporalUnreachableError: Temporal does not answer.
        lanes.connect.ProviderNotConfiguredError: No OpenAI key or base URL to read responses with.
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
            yield server


async def serve_webhooks(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    path: str = DEFAULT_PATH,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Serve the receiver until interrupted (the ``lanes webhooks`` command).

    Prints ``webhook receiver listening on http://host:port/webhooks/openai`` to stderr once bound, and
    configures logging as a worker does (``LANES_LOG_LEVEL``, default INFO; the payload-logging libraries
    never below INFO), so that each answer's line reaches stderr: the receiver is its own process.

    Raises:
        ValueError: ``OPENAI_WEBHOOK_SECRET`` is unset, malformed or under 24 bytes of key material (the
            message says how to fix it).
        lanes.connect.TemporalUnreachableError: Temporal does not answer.
        lanes.connect.ProviderNotConfiguredError: No OpenAI key or base URL to read responses with.
    """
    configure_logging(settings.log_level)
    async with running_receiver(settings, host=host, port=port, path=path, tolerance_s=tolerance_s) as server:
        print(f"webhook receiver listening on {server.url}", file=sys.stderr, flush=True)
        await server.wait()
