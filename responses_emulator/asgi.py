"""The emulator as a Starlette app: every request goes to :meth:`Emulator.handle`.

:meth:`Emulator.handle` is an ``httpx2`` handler (``httpx2.MockTransport`` runs it in-process), so the
app is one catch-all route that turns Starlette's request into an ``httpx2.Request`` and the answer back.
Starlette reads the body (a client that hangs up before sending all of it is not served: a real server
never sees that request), and its :class:`~starlette.responses.StreamingResponse` stops a stream as soon
as the client goes away, so a stream nobody reads stops generating events.

Two things only a network server can do remain here: an :class:`EmulatedDisconnect` raised while the
answer is written (``drop_stream_after``, ``reset_mid_body``, a held create reply when the server stops)
becomes a :class:`DeliberateReset` that makes uvicorn close the TCP connection in the middle of the body,
which is what the SDK sees when a real connection drops; :class:`ResetLogFilter` keeps uvicorn from
logging it as an application error.

A client that hangs up while its request is being handled (e.g. a worker killed while its create's
reply is held) does not cancel the handling: nothing reads the connection until the answer is ready, so
the emulator's record and ledger are complete, as a real provider's would be, and the answer is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx2
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from responses_emulator.emulator import Emulator
from responses_emulator.faults import EmulatedDisconnect


class DeliberateReset(Exception):
    """Raised to the ASGI server so that it closes the connection mid-body (and is not logged)."""


class ResetLogFilter(logging.Filter):
    """Drops uvicorn's "Exception in ASGI application" records caused by a :class:`DeliberateReset`."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record except those carrying a deliberate reset.

        Returns:
            Whether to log the record.
        """
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DeliberateReset)


def install_reset_log_filter() -> None:
    """Add :class:`ResetLogFilter` to uvicorn's loggers, once per process."""
    for name in ("uvicorn.error", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ResetLogFilter) for f in logger.filters):
            logger.addFilter(ResetLogFilter())


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")
"""Every method the route takes, so that the emulator, not Starlette, answers an unknown endpoint (404)."""


def emulator_app(emulator: Emulator) -> Starlette:
    """The Starlette app serving ``emulator``: one route for every method and path.

    Args:
        emulator: The emulator answering every request (its own router knows the API's paths, the admin
            endpoints under ``/_emulator`` and the 404s of the real API for the rest).
    """

    async def endpoint(request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it; uvicorn drops it
        try:
            answer = await emulator.handle(_httpx_request(request, body))
        except EmulatedDisconnect:
            # A reply held at the create gate when the server stops: start an answer and drop the
            # connection, so the client sees the reply lost mid-body instead of a made-up 500.
            held = StreamingResponse(_reset(), status_code=200)
            held.raw_headers = [(b"content-type", b"application/json")]
            return held
        return _starlette_response(answer)

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)])


def _httpx_request(request: Request, body: bytes) -> httpx2.Request:
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    return httpx2.Request(request.method, str(request.url), headers=headers, content=body)


def _starlette_response(answer: httpx2.Response) -> Response:
    """The emulator's answer as Starlette's, with exactly its status and headers."""
    headers = [(k.lower(), v) for k, v in answer.headers.raw]
    response: Response
    try:
        content = answer.content
    except httpx2.ResponseNotRead:
        response = StreamingResponse(_body(answer), status_code=answer.status_code)
    else:
        response = Response(content, status_code=answer.status_code)
    response.raw_headers = headers
    return response


async def _body(answer: httpx2.Response) -> AsyncIterator[bytes]:
    """The streamed body, closed here however the stream ends.

    A client that hangs up stops Starlette's iteration between two chunks. Closing the inner iterator
    here, in order, leaves nothing for the garbage collector to finalise later, where closing a
    half-consumed ``aiter_raw`` raced its outer generator ("async generator already executing") in
    whatever test ran at that moment.
    """
    chunks = answer.aiter_raw()
    try:
        async for chunk in chunks:
            yield chunk
    except EmulatedDisconnect:
        raise DeliberateReset from None
    finally:
        await chunks.aclose()


async def _reset() -> AsyncIterator[bytes]:
    raise DeliberateReset
    yield b""  # pragma: no cover (makes this an async generator)
