"""Provider requests by endpoint and status, counted at the OpenAI client's HTTP transport.

``lanes/connect.py::openai_client`` gives the SDK an HTTP client whose transport is wrapped in
:class:`MeteredTransport`, so every request any activity makes (creates, polls, streams, cancels,
deletes, each retry by Temporal) is counted without a line in the activities:

    lanes.provider.requests{endpoint="POST /v1/responses", status="200"}
    lanes.provider.requests{endpoint="GET /v1/responses/{id}", status="404"}
    lanes.provider.requests{endpoint="POST /v1/responses", status="error"}     # no HTTP answer
    lanes.provider.requests{endpoint="GET /v1/responses/{id}", status="cancelled"}  # caller gave up

Response ids and other path parameters become ``{id}`` (labels must stay few), and nothing of a body,
query string or header is read.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl

import httpx2
from opentelemetry import metrics

REQUESTS = metrics.get_meter("lanes").create_counter(
    "lanes.provider.requests", unit="{request}", description="HTTP requests to the model provider"
)

_WORD = re.compile(r"[a-z_]+")
"""A path segment that is a fixed name of the API (``responses``, ``cancel``), not a parameter."""


def endpoint(request: httpx2.Request) -> str:
    """``METHOD /path`` with every parameter segment (ids, versions with digits) replaced by ``{id}``."""
    segments = [s if _WORD.fullmatch(s) or s == "v1" else "{id}" for s in request.url.path.split("/") if s]
    return f"{request.method} /{'/'.join(segments)}"


class MeteredTransport(httpx2.AsyncBaseTransport):
    """Wraps a transport and counts each request by endpoint and HTTP status (``error`` without one).

    Args:
        inner: The transport that sends the requests.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """See base class."""
        labels = {"endpoint": endpoint(request)}
        try:
            response = await self._inner.handle_async_request(request)
        except asyncio.CancelledError:
            REQUESTS.add(1, {**labels, "status": "cancelled"})
            raise
        except Exception:
            REQUESTS.add(1, {**labels, "status": "error"})
            raise
        REQUESTS.add(1, {**labels, "status": str(response.status_code)})
        return response

    async def aclose(self) -> None:
        """See base class."""
        await self._inner.aclose()


def connection_limits(max_connections: int | None = None) -> httpx2.Limits:
    """The OpenAI SDK's connection limits, with room for ``max_connections`` open at once.

    The SDK's pool holds 1,000 connections; a worker following more streams than that would make the
    surplus wait for a connection (their jobs look stuck while nothing is busy). Never fewer than the
    SDK's default.
    """
    import openai

    default = openai.DEFAULT_CONNECTION_LIMITS
    wanted = max(default.max_connections or 0, max_connections or 0)
    return httpx2.Limits(
        max_connections=wanted,
        max_keepalive_connections=default.max_keepalive_connections,
        keepalive_expiry=default.keepalive_expiry,
    )


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """The default TLS context of httpx (its CA bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built once.

    Building a context loads every CA certificate, tens of milliseconds of CPU; a worker builds a provider
    client per endpoint and queue, and a test suite hundreds. One context serves them all: an
    ``SSLContext`` is safe to share between connections and threads, and nothing here changes it later.
    """
    return httpx2.create_ssl_context()


def metered_http_client(max_connections: int | None = None) -> httpx2.AsyncClient:
    """The OpenAI SDK's default HTTP client (its timeout and connection limits), with a metered transport.

    Args:
        max_connections: Connections the process may hold open at once (see :func:`connection_limits`).
    """
    transport = MeteredTransport(
        httpx2.AsyncHTTPTransport(verify=default_ssl_context(), limits=connection_limits(max_connections))
    )
    import openai

    return openai.DefaultAsyncHttpxClient(transport=transport)
