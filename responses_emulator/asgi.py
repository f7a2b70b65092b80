"""ASGI adapter: serves :meth:`Emulator.handle` over real HTTP.

Besides translating ASGI messages to ``httpx2`` objects and back, it does the two things only a
network server can: it notices a client that hangs up on a stream (so the stream stops generating
events nobody reads), and it turns an :class:`EmulatedDisconnect` into a TCP connection closed in the
middle of a body, which is what the SDK sees when a real connection drops.

A client that hangs up while its request is being handled (e.g. a worker killed while its create's
reply is held) does not cancel the handling: uvicorn lets it finish and discards the answer, so the
emulator's record and ledger are complete, as a real provider's would be.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httpx2

from responses_emulator.emulator import Emulator
from responses_emulator.faults import EmulatedDisconnect

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


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


class EmulatorASGI:
    """ASGI 3 application wrapping an :class:`Emulator`.

    Args:
        emulator: The emulator answering every request.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one ASGI connection scope (``http``; ``lifespan`` is acknowledged)."""
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = await _request(scope, receive)
        try:
            response = await self.emulator.handle(request)
        except EmulatedDisconnect:
            # A reply held at the create gate when the server stops: start an answer and drop the
            # connection, so the client sees the reply lost mid-body instead of a made-up 500.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            raise DeliberateReset from None
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [(k.lower(), v) for k, v in response.headers.raw],
            }
        )
        try:
            content = response.content
        except httpx2.ResponseNotRead:
            pass
        else:
            await send({"type": "http.response.body", "body": content, "more_body": False})
            return
        body = response.aiter_raw()
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            await _pump_until_disconnect(body, receive, send)
        else:
            await _pump(body, send)


async def _pump(body: Any, send: Send) -> None:
    try:
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except EmulatedDisconnect:
        raise DeliberateReset from None
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _pump_until_disconnect(body: Any, receive: Receive, send: Send) -> None:
    """Stream ``body`` but stop as soon as the client goes away."""
    pump = asyncio.ensure_future(_pump(body, send))
    watch = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        pump.cancel()
        await asyncio.gather(watch, pump, return_exceptions=True)
    if not pump.cancelled() and (error := pump.exception()) is not None:
        raise error


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _request(scope: Scope, receive: Receive) -> httpx2.Request:
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = bool(message.get("more_body", False))
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    host = next((v for k, v in headers if k == "host"), "emulator.local")
    query = scope.get("query_string", b"").decode("latin-1")
    url = f"http://{host}{scope.get('root_path', '')}{scope['path']}" + (f"?{query}" if query else "")
    return httpx2.Request(scope["method"], url, headers=headers, content=b"".join(chunks))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
